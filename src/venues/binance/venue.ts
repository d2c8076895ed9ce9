import type { Venue, VenueLimits } from '../types.js';
import { readBinanceStream, readBinanceStreamSpan } from './frame.js';
import { BinanceProtocol, binanceCloseCause } from './protocol.js';
import { binanceStreamName, binanceStreamType, binanceTypeOf, type BinanceStreamOptions } from './streams.js';

/** What sets one Binance venue apart; the rest (frames, protocol, names, heartbeat) they share. */
export interface BinanceVenueSpec extends Pick<Venue, 'name' | 'endpoints' | 'systemStatusPath' | 'isSymbol' | 'symbolExample' | 'instruments'> {
  limits: Omit<VenueLimits, 'connectionAttempts' | 'connectionAttemptWindowMs' | 'streamsPerSubscribe' | 'subscribesPerHour'>;
  streams: BinanceStreamOptions;
  extra?: Pick<Venue, 'parseSystemStatus' | 'maintenanceWindows' | 'wsApiUrl'>;
}

/**
 * A Binance market-stream venue: the combined envelope (`/stream?streams=`), JSON-RPC SUBSCRIBE,
 * server pings, `serverShutdown`; 300 connection attempts per 5 min per IP and 200 streams per
 * SUBSCRIBE on every Binance venue (facts sheet, "Spot market streams").
 */
export function binanceVenue(spec: BinanceVenueSpec): Venue {
  return {
    name: spec.name,
    endpoints: spec.endpoints,
    limits: { connectionAttempts: 300, connectionAttemptWindowMs: 300_000, streamsPerSubscribe: 200, subscribesPerHour: 0, ...spec.limits },
    combinedPath: '/stream',
    systemStatusPath: spec.systemStatusPath,
    instruments: spec.instruments,
    ...spec.extra,
    streamType: (type) => binanceStreamType(type, spec.streams),
    streamName: binanceStreamName,
    typeOf: binanceTypeOf,
    isSymbol: spec.isSymbol,
    symbolExample: spec.symbolExample,
    readStream: readBinanceStream,
    readStreamSpan: readBinanceStreamSpan,
    recordingShape: 'envelope',
    clientPing: null,
    protocol: (opts) => new BinanceProtocol(opts),
    closeCause: binanceCloseCause,
  };
}
