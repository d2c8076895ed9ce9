import { binanceStatus } from '../status.js';
import { isBinanceSymbol } from './streams.js';
import { binanceInstruments } from './instruments.js';
import { binanceVenue } from './venue.js';

/**
 * Binance spot. Limits: binance-spot-api-docs web-socket-streams.md ("WebSocket Limits"):
 * 1024 streams per connection, 5 incoming messages/s, 300 connection attempts per 5 min per IP
 * (changelog 2023-02-17: a rate, not a concurrency cap), 24 h lifetime, ping every 20 s with a
 * 1 min pong deadline (since 2025-02).
 */
export const binanceSpot = binanceVenue({
  name: 'binance-spot',
  endpoints: {
    stream: 'wss://stream.binance.com:9443',
    rest: 'https://api.binance.com',
  },
  limits: {
    streamsPerConnection: 1024,
    messagesPerSecond: 5,
    maxLifetimeMs: 86_400_000,
    serverPingIntervalMs: 20_000,
    pongTimeoutMs: 60_000,
  },
  instruments: binanceInstruments('/api/v3/exchangeInfo', 20),
  systemStatusPath: '/sapi/v1/system/status',
  streams: {
    depthLinkedBy: 'U',
    depthSpeeds: ['100ms', '1000ms'],
    hasAvgPrice: true,
    has1sKline: true,
    bookTickerTime: false,
    routes: { book: '/stream', market: '/stream' },
  },
  isSymbol: isBinanceSymbol,
  symbolExample: 'BTCUSDT',
  extra: {
    parseSystemStatus: binanceStatus,
    maintenanceWindows: [
      {
        start: '2026-07-09T07:00:00Z',
        end: '2026-07-09T08:00:00Z',
        reason: 'Binance Spot API infrastructure upgrade (announced for 2026-07-09 07:00 UTC, up to 1 h)',
      },
    ],
    // Spot user data moved to the WebSocket API when listen keys were removed (2026-02-20).
    wsApiUrl: 'wss://ws-api.binance.com:443/ws-api/v3',
  },
});
