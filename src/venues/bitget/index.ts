/**
 * Bitget v2 public market data: spot (`instType` SPOT) and USDT-M perpetuals (USDT-FUTURES) on one
 * URL. Sources, as tagged in the venue facts sheet: [G1] https://www.bitget.com/api-doc/common/websocket-intro,
 * [G2] https://www.bitget.com/api-doc/common/changelog (2024-11-22 connection limits), [G3] the
 * Depth-Channel page, [G4] the Trades-Channel page. docs/venues.md sums up the choices.
 */
import type { Venue } from '../types.js';
import { readBitgetStream } from './frame.js';
import { BitgetProtocol, bitgetClientPing, bitgetCloseCause } from './protocol.js';
import { BITGET_ROUTE, bitgetStreamName, bitgetStreamType, bitgetTypeOf, isBitgetSymbol } from './streams.js';

const SUBSCRIBES_PER_HOUR = 240;

function bitgetVenue(name: string, instType: string): Venue {
  return {
    name,
    endpoints: { stream: 'wss://ws.bitget.com', rest: 'https://api.bitget.com' },
    limits: {
      // "≤1,000 channels per connection, <50 advised" [G1]: the advice.
      streamsPerConnection: 50,
      // "300 connection requests/IP/5 min" [G2], for the IP: spot and futures take half each.
      connectionAttempts: 150,
      connectionAttemptWindowMs: 300_000,
      // "10 messages/s incl. ping" [G1]; over it, a disconnect.
      messagesPerSecond: 10,
      // Not documented as a count; 50 args stay under the 4096-byte request cap (protocol.ts).
      streamsPerSubscribe: 50,
      // "240 subscribe requests/h/connection" [G2].
      subscribesPerHour: SUBSCRIBES_PER_HOUR,
      // "forced disconnect every 24 h" [G2], unannounced: rotated make-before-break ahead of it.
      maxLifetimeMs: 86_400_000,
      // The client pings every 30 s and the pong comes back.
      serverPingIntervalMs: 30_000,
      // "no ping for 2 min → server disconnects" [G1].
      pongTimeoutMs: 120_000,
    },
    combinedPath: BITGET_ROUTE,
    systemStatusPath: null,
    streamType: bitgetStreamType,
    streamName: bitgetStreamName,
    typeOf: bitgetTypeOf,
    isSymbol: isBitgetSymbol,
    symbolExample: 'BTCUSDT',
    readStream: readBitgetStream,
    recordingShape: 'wrap',
    clientPing: bitgetClientPing,
    protocol: (opts) => new BitgetProtocol(opts, instType, SUBSCRIBES_PER_HOUR),
    closeCause: bitgetCloseCause,
  };
}

export const bitgetSpot: Venue = bitgetVenue('bitget-spot', 'SPOT');
export const bitgetUsdtFutures: Venue = bitgetVenue('bitget-usdt-futures', 'USDT-FUTURES');
