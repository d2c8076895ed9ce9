import { binanceStreamName, binanceStreamType, isBinanceSymbol } from './binance-common.js';
import type { Venue } from './types.js';

/**
 * Binance USD-M futures. 10 incoming messages/s, server ping every 3 min with a 10 min pong deadline,
 * 24 h lifetime. Streams per connection: the docs disagree (1024 vs 200), so we default to 200.
 * Depth events link by `pu` (previous `u`), not by U = u + 1.
 * Since 2026-04-23 fstream.binance.com routes streams by path: /public for high-frequency book data
 * (depth, bookTicker), /market for the rest (aggTrade, klines, tickers), /private for user data. A
 * connection without the right route receives nothing for the other kind, silently (Binance docs,
 * "USD-M Futures routes streams by path"), so the planner never mixes the two on one connection.
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
    binanceStreamType(type, {
      depthLinkedBy: 'pu',
      depthSpeeds: ['100ms', '250ms', '500ms', '0ms'],
      hasAvgPrice: false,
      has1sKline: false,
      routes: { book: '/public/stream', market: '/market/stream' },
    }),
  streamName: binanceStreamName,
  isSymbol: isBinanceSymbol,
};
