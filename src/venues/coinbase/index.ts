/**
 * Coinbase Advanced Trade public market data. Sources, as tagged in the venue facts sheet: [C1]
 * https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-overview, [C2]
 * …/websocket-channels, [C3] …/websocket-rate-limits, [C4] the AsyncAPI spec, [C5] the Exchange
 * ws-feed (the 5 s subscribe rule), [I-C1] https://github.com/ccxt/ccxt/issues/23597 (the large
 * level2 snapshot), [I-C2] https://github.com/JKorf/Coinbase.Net/issues/19 (level2 products per
 * connection). docs/venues.md ("Coinbase Advanced Trade") sums up the choices below.
 */
import type { Venue } from '../types.js';
import { readCoinbaseStream } from './frame.js';
import { CoinbaseProtocol, coinbaseCloseCause } from './protocol.js';
import { COINBASE_ROUTE, coinbaseStreamName, coinbaseStreamType, coinbaseTypeOf, isCoinbaseSymbol } from './streams.js';

export const coinbase: Venue = {
  name: 'coinbase',
  endpoints: { stream: 'wss://advanced-trade-ws.coinbase.com', rest: 'https://api.coinbase.com' },
  limits: {
    // Undocumented; "too many L2 streams requested in a single session" came at 32 level2 products
    // while 16 worked [I-C2]. 16 streams per connection keeps level2 at 16 whatever the mix, and a
    // connection's subscribe at most 4 channel messages + heartbeats.
    streamsPerConnection: 16,
    // Connections: 8/s per IP on one copy of the rate-limit page, 750/s on another [C3][C3b]: the lower.
    connectionAttempts: 8,
    connectionAttemptWindowMs: 1000,
    // Unauthenticated messages: 8/s per IP [C3]. 4 per connection lets two connections subscribe at
    // once; the session's limiter keeps one slot a second for pongs, so a connection's 5 subscribe
    // messages leave in about 1.1 s, well inside the 5 s the server waits for a subscribe [C5].
    messagesPerSecond: 4,
    // Products per subscribe message: one channel per message [C1]; 16 = the connection's cap.
    streamsPerSubscribe: 16,
    subscribesPerHour: 0,
    maxLifetimeMs: 0,
    // The heartbeats channel (always subscribed) pushes every second [C2].
    serverPingIntervalMs: 1000,
    // Channels close after 60-90 s without updates unless heartbeats is subscribed [C2].
    pongTimeoutMs: 60_000,
  },
  combinedPath: COINBASE_ROUTE,
  systemStatusPath: null,
  streamType: coinbaseStreamType,
  streamName: coinbaseStreamName,
  typeOf: coinbaseTypeOf,
  isSymbol: isCoinbaseSymbol,
  symbolExample: 'BTC-USD',
  readStream: readCoinbaseStream,
  recordingShape: 'wrap',
  // No client ping is documented; the heartbeats channel is the keepalive.
  clientPing: null,
  protocol: (opts) => new CoinbaseProtocol(opts),
  closeCause: coinbaseCloseCause,
};
