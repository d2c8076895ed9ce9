import { isBinanceSymbol } from './streams.js';
import { CONTRACT_INFO, binanceInstruments } from './instruments.js';
import { binanceVenue } from './venue.js';

/**
 * Binance USD-M futures. 10 incoming messages/s, server ping every 3 min with a 10 min pong deadline,
 * 24 h lifetime. Streams per connection: the docs disagree (1024 vs 200), so we default to 200.
 * Depth events link by `pu` (previous `u`), not by U = u + 1.
 * Since 2026-04-23 fstream.binance.com routes streams by path: /public for high-frequency book data
 * (depth, bookTicker), /market for the rest (aggTrade, klines, tickers), /private for user data. A
 * connection without the right route receives nothing for the other kind, silently (Binance docs,
 * "USD-M Futures routes streams by path"), so the planner never mixes the two on one connection.
 */
export const binanceUsdm = binanceVenue({
  name: 'binance-usdm',
  endpoints: {
    stream: 'wss://fstream.binance.com',
    rest: 'https://fapi.binance.com',
  },
  limits: {
    streamsPerConnection: 200,
    messagesPerSecond: 10,
    maxLifetimeMs: 86_400_000,
    serverPingIntervalMs: 180_000,
    pongTimeoutMs: 600_000,
  },
  instruments: binanceInstruments('/fapi/v1/exchangeInfo', 1, CONTRACT_INFO),
  systemStatusPath: null,
  streams: {
    depthLinkedBy: 'pu',
    depthSpeeds: ['100ms', '250ms', '500ms', '0ms'],
    hasAvgPrice: false,
    has1sKline: false,
    routes: { book: '/public/stream', market: '/market/stream' },
  },
  isSymbol: isBinanceSymbol,
  symbolExample: 'BTCUSDT',
  // USD-M user data uses a listen key on the stream host; the WebSocket API is not used for it.
  extra: { wsApiUrl: 'wss://ws-fapi.binance.com/ws-fapi/v1' },
});
