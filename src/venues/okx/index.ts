/**
 * OKX v5 public market data: spot (`BTC-USDT`) and derivatives (`BTC-USDT-SWAP`) on one URL.
 * Sources, as tagged in the venue facts sheet: [O1] https://www.okx.com/docs-v5/en/#overview-websocket
 * (connect, connection-count-limit, subscribe, notification), [O2] https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel;
 * docs/venues-bybit-okx.md sums up the choices below.
 */
import { okxStatus } from '../status.js';
import type { Venue } from '../types.js';
import { readOkxStream } from './frame.js';
import { OkxProtocol, okxClientPing, okxCloseCause } from './protocol.js';
import { PUBLIC_ROUTE, isOkxSymbol, okxStreamName, okxStreamType, okxTypeOf } from './streams.js';

const SUBSCRIBES_PER_HOUR = 480;

export const okx: Venue = {
  name: 'okx',
  endpoints: { stream: 'wss://ws.okx.com:8443', rest: 'https://www.okx.com' },
  limits: {
    // No per-connection channel cap is stated, though close codes 4008/4009 show one exists. 100
    // is ours; OKX advises fewer than 30 channels per connection for 50/400-level books [O2], which
    // a connection carrying only `books` should follow (docs/venues-bybit-okx.md).
    streamsPerConnection: 100,
    // "3 requests per second (based on IP)" for connections [O1].
    connectionAttempts: 3,
    connectionAttemptWindowMs: 1000,
    // Not documented. Ours: 10 per second (pings go out at most every 20 s; subscribes are few).
    messagesPerSecond: 10,
    // Args are limited to 64 KB per request, not counted [O1]: 100 channels is about 4 KB.
    streamsPerSubscribe: 100,
    // 480 subscribe/unsubscribe/login requests per connection per hour [O1].
    subscribesPerHour: SUBSCRIBES_PER_HOUR,
    // No lifetime documented; upgrades are announced with 64008 instead.
    maxLifetimeMs: 0,
    // The server never pings; the client pings after 20 s of silence and the pong comes back.
    serverPingIntervalMs: 20_000,
    // Without data for 30 s the server closes (4004) [O1].
    pongTimeoutMs: 30_000,
  },
  combinedPath: PUBLIC_ROUTE,
  systemStatusPath: '/api/v5/system/status',
  parseSystemStatus: okxStatus,
  streamType: okxStreamType,
  streamName: okxStreamName,
  typeOf: okxTypeOf,
  isSymbol: isOkxSymbol,
  symbolExample: 'BTC-USDT',
  readStream: readOkxStream,
  recordingShape: 'wrap',
  clientPing: okxClientPing,
  protocol: (opts) => new OkxProtocol(opts, SUBSCRIBES_PER_HOUR),
  closeCause: okxCloseCause,
};
