/**
 * KuCoin spot public market data (classic API). Sources, as tagged in the venue facts sheet:
 * [K1] https://www.kucoin.com/docs-new/websocket-api/base-info/introduction (token, connect,
 * subscribe, heartbeat), [K2] https://www.kucoin.com/docs-new/rate-limit (limits), [K4] the
 * channel pages, [K5] the classic docs (github.com/Kucoin/kucoin-api-docs). docs/venues.md sums up
 * the choices.
 */
import type { Venue } from '../types.js';
import { readKucoinStream } from './frame.js';
import { KucoinProtocol, kucoinClientPing, kucoinCloseCause } from './protocol.js';
import { KUCOIN_ROUTE, isKucoinSymbol, kucoinStreamName, kucoinStreamType, kucoinTypeOf } from './streams.js';

/** `GET /api/v1/status` → `{"data":{"status":"open"|"close"|"cancelonly","msg":…}}` [K5]. */
export function kucoinStatus(body: string): { status: 0 | 1; msg: string } | null {
  let m: unknown;
  try {
    m = JSON.parse(body);
  } catch {
    return null;
  }
  const d = (m as { data?: { status?: unknown; msg?: unknown } } | null)?.data;
  if (d === undefined || d === null || typeof d.status !== 'string') return null;
  const msg = typeof d.msg === 'string' ? d.msg : '';
  // cancelonly stops new orders, not market data: only `close` is maintenance.
  if (d.status === 'open' || d.status === 'cancelonly') return { status: 0, msg: msg || d.status };
  if (d.status === 'close') return { status: 1, msg: msg || d.status };
  return null;
}

export const kucoinSpot: Venue = {
  name: 'kucoin-spot',
  // The WebSocket endpoint comes from each bullet reply ("use the returned endpoint (may change)"
  // [K1][K5]); this one, the docs', is only the default of endpoints.stream, which KuCoin never dials.
  endpoints: { stream: 'wss://ws-api-spot.kucoin.com', rest: 'https://api.kucoin.com' },
  limits: {
    // "400 topics per connection (spot)" [K2]; the 2023 docs said 300 [K5].
    streamsPerConnection: 400,
    // "30 connections/min" [K2].
    connectionAttempts: 30,
    connectionAttemptWindowMs: 60_000,
    // "100 client messages/10 s" [K2]: 10 per second never goes over it.
    messagesPerSecond: 10,
    // "100 topics per batch" [K2]; error 509 past it [I-K3].
    streamsPerSubscribe: 100,
    subscribesPerHour: 0,
    // Tokens last 24 h and "connections are expected to drop after 24 h" [K1]: no announced cut
    // to rotate ahead of; the next attempt fetches a new token.
    maxLifetimeMs: 0,
    // The client pings every pingInterval (18 s) and the pong comes back.
    serverPingIntervalMs: 18_000,
    // pingInterval + pingTimeout (10 s): no pong by then = dead [K1].
    pongTimeoutMs: 28_000,
  },
  combinedPath: KUCOIN_ROUTE,
  systemStatusPath: '/api/v1/status',
  parseSystemStatus: kucoinStatus,
  streamType: kucoinStreamType,
  streamName: kucoinStreamName,
  typeOf: kucoinTypeOf,
  isSymbol: isKucoinSymbol,
  symbolExample: 'BTC-USDT',
  readStream: readKucoinStream,
  recordingShape: 'wrap',
  clientPing: kucoinClientPing,
  protocol: (opts) => new KucoinProtocol(opts),
  closeCause: kucoinCloseCause,
};
