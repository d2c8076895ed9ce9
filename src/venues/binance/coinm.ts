import type { Venue } from '../types.js';
import { readBinanceStream } from './frame.js';
import { BinanceProtocol, binanceCloseCause } from './protocol.js';
import { binanceStreamName, binanceStreamType, binanceTypeOf, isCoinmSymbol } from './streams.js';

/**
 * Binance COIN-M futures (dstream). Facts sheet, "Binance COIN-M futures": 10 incoming messages/s,
 * at most 200 streams per connection, 24 h lifetime, server ping every 3 min with a 10 min pong
 * deadline, the same `pu` depth rule as USD-M. No /public–/market route split is documented for
 * COIN-M, so every stream goes on `/stream`. The connection-attempt rate is not stated on the COIN-M
 * page: we take the Binance-wide 300 per 5 min. Symbols are contracts: `BTCUSD_PERP`,
 * `BTCUSD_200626` (stream names lower-case them: `btcusd_perp@aggTrade`).
 */
export const binanceCoinm: Venue = {
  name: 'binance-coinm',
  endpoints: {
    stream: 'wss://dstream.binance.com',
    rest: 'https://dapi.binance.com',
  },
  limits: {
    streamsPerConnection: 200,
    connectionAttempts: 300,
    connectionAttemptWindowMs: 300_000,
    messagesPerSecond: 10,
    streamsPerSubscribe: 200,
    subscribesPerHour: 0,
    maxLifetimeMs: 86_400_000,
    serverPingIntervalMs: 180_000,
    pongTimeoutMs: 600_000,
  },
  combinedPath: '/stream',
  systemStatusPath: null,
  // COIN-M user data uses a listen key (/dapi/v1/listenKey), like USD-M.
  wsApiUrl: 'wss://ws-dapi.binance.com/ws-dapi/v1',
  streamType: (type) =>
    binanceStreamType(type, {
      depthLinkedBy: 'pu',
      depthSpeeds: ['100ms', '250ms', '500ms', '0ms'],
      hasAvgPrice: false,
      has1sKline: false,
      routes: { book: '/stream', market: '/stream' },
    }),
  streamName: binanceStreamName,
  typeOf: binanceTypeOf,
  isSymbol: isCoinmSymbol,
  symbolExample: 'BTCUSD_PERP',
  readStream: readBinanceStream,
  recordingShape: 'envelope',
  clientPing: null,
  protocol: (opts) => new BinanceProtocol(opts),
  closeCause: binanceCloseCause,
};
