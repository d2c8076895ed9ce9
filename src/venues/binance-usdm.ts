import { binanceStreamName, binanceStreamType, isBinanceSymbol } from './binance-common.js';
import type { Venue } from './types.js';

/**
 * Binance USD-M futures. 10 incoming messages/s, server ping every 3 min with a 10 min pong deadline,
 * 24 h lifetime. Streams per connection: the docs disagree (1024 vs 200), so we default to 200.
 * Depth events link by `pu` (previous `u`), not by U = u + 1.
 * Market streams moved to the /market and /public routes on 2026-04-23; the combined endpoint path
 * stays configurable through endpoints.stream.
 */
export const binanceUsdm: Venue = {
  name: 'binance-usdm',
  endpoints: {
    stream: 'wss://fstream.binance.com',
    rest: 'https://fapi.binance.com',
  },
  limits: {
    streamsPerConnection: 200,
    connectionAttempts: 300,
    connectionAttemptWindowMs: 300_000,
    messagesPerSecond: 10,
    maxLifetimeMs: 86_400_000,
    serverPingIntervalMs: 180_000,
    pongTimeoutMs: 600_000,
  },
  combinedPath: '/stream',
  systemStatusPath: null,
  streamType: (type) =>
    binanceStreamType(type, { depthLinkedBy: 'pu', depthSpeeds: ['100ms', '250ms', '500ms', '0ms'], hasAvgPrice: false, has1sKline: false }),
  streamName: binanceStreamName,
  isSymbol: isBinanceSymbol,
};
