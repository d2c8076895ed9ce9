import { isCoinmSymbol } from './streams.js';
import { binanceInstruments } from './instruments.js';
import { binanceVenue } from './venue.js';

/**
 * Binance COIN-M futures (dstream). Facts sheet, "Binance COIN-M futures": 10 incoming messages/s,
 * at most 200 streams per connection, 24 h lifetime, server ping every 3 min with a 10 min pong
 * deadline, the same `pu` depth rule as USD-M. No /public–/market route split is documented for
 * COIN-M, so every stream goes on `/stream`. The connection-attempt rate is not stated on the COIN-M
 * page: we take the Binance-wide 300 per 5 min. Symbols are contracts: `BTCUSD_PERP`,
 * `BTCUSD_200626` (stream names lower-case them: `btcusd_perp@aggTrade`).
 */
export const binanceCoinm = binanceVenue({
  name: 'binance-coinm',
  endpoints: {
    stream: 'wss://dstream.binance.com',
    rest: 'https://dapi.binance.com',
  },
  limits: {
    streamsPerConnection: 200,
    messagesPerSecond: 10,
    maxLifetimeMs: 86_400_000,
    serverPingIntervalMs: 180_000,
    pongTimeoutMs: 600_000,
  },
  instruments: binanceInstruments('/dapi/v1/exchangeInfo', 1),
  systemStatusPath: null,
  streams: {
    depthLinkedBy: 'pu',
    depthSpeeds: ['100ms', '250ms', '500ms', '0ms'],
    hasAvgPrice: false,
    has1sKline: false,
    routes: { book: '/stream', market: '/stream' },
  },
  isSymbol: isCoinmSymbol,
  symbolExample: 'BTCUSD_PERP',
  // COIN-M user data uses a listen key (/dapi/v1/listenKey), like USD-M.
  extra: { wsApiUrl: 'wss://ws-dapi.binance.com/ws-dapi/v1' },
});
