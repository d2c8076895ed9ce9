import { binanceStreamName, binanceStreamType, isBinanceSymbol } from './binance-common.js';
import type { Venue } from './types.js';

/**
 * Binance spot. Limits: binance-spot-api-docs web-socket-streams.md ("WebSocket Limits"):
 * 1024 streams per connection, 5 incoming messages/s, 300 connection attempts per 5 min per IP
 * (changelog 2023-02-17: a rate, not a concurrency cap), 24 h lifetime, ping every 20 s with a
 * 1 min pong deadline (since 2025-02).
 */
export const binanceSpot: Venue = {
  name: 'binance-spot',
  endpoints: {
    stream: 'wss://stream.binance.com:9443',
    rest: 'https://api.binance.com',
  },
  limits: {
    streamsPerConnection: 1024,
    connectionAttempts: 300,
    connectionAttemptWindowMs: 300_000,
    messagesPerSecond: 5,
    maxLifetimeMs: 86_400_000,
    serverPingIntervalMs: 20_000,
    pongTimeoutMs: 60_000,
  },
  combinedPath: '/stream',
  systemStatusPath: '/sapi/v1/system/status',
  streamType: (type) =>
    binanceStreamType(type, {
      depthLinkedBy: 'U',
      depthSpeeds: ['100ms', '1000ms'],
      hasAvgPrice: true,
      has1sKline: true,
      routes: { book: '/stream', market: '/stream' },
    }),
  streamName: binanceStreamName,
  isSymbol: isBinanceSymbol,
};
