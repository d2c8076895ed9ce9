/**
 * Bybit v5 public market data: spot and USDT/USDC linear contracts. Sources, as tagged in the venue
 * facts sheet: [B1] https://bybit-exchange.github.io/docs/v5/ws/connect (connect, args limits,
 * heartbeat), [B2] https://bybit-exchange.github.io/docs/v5/rate-limit (connection rate);
 * docs/venues-bybit-okx.md sums up the choices below.
 */
import { bybitStatus } from '../status.js';
import type { Venue, VenueLimits } from '../types.js';
import { readBybitStream } from './frame.js';
import { BybitProtocol, bybitClientPing, bybitCloseCause } from './protocol.js';
import { bybitStreamName, bybitStreamType, bybitTypeOf, isBybitLinearSymbol, isBybitSpotSymbol } from './streams.js';

const SPOT_ROUTE = '/v5/public/spot';
const LINEAR_ROUTE = '/v5/public/linear';

/** Spot rejects more than 10 args in one subscribe request (`args size >10`) [B1]. */
const SPOT_ARGS_PER_REQUEST = 10;

const common: Omit<VenueLimits, 'streamsPerSubscribe'> = {
  // No per-connection topic cap is documented for spot or linear. 200 is ours: it keeps a
  // connection's args at about 200 × 25 = 5,000 characters, far under the 21,000-character args
  // limit even if that limit counts every topic on the connection, and far under the >500-topic
  // requests reported to close the connection (failure mode I-B2).
  streamsPerConnection: 200,
  // "Do not build over 500 connections in 5 minutes. This is counted per WebSocket domain" [B2]:
  // spot and linear share stream.bybit.com, so each venue takes half, and running both keeps the
  // domain under 500 (the attempt budget is per venue: docs/venues-bybit-okx.md, "What the core
  // must support").
  connectionAttempts: 250,
  connectionAttemptWindowMs: 300_000,
  // Not documented. Ours: 10 per second, which the pacer needs only for subscribe bursts (pings go
  // out every 20 s).
  messagesPerSecond: 10,
  subscribesPerHour: 0,
  // No lifetime for public connections (`max_active_time` is private-only) [B1].
  maxLifetimeMs: 0,
  // The server never pings; what arrives at the latest on a healthy connection is the pong to our
  // ping, every 20 s.
  serverPingIntervalMs: 20_000,
  // With no ping-pong and no data the server cuts after 10 min [B1].
  pongTimeoutMs: 600_000,
};

function bybitVenue(name: 'bybit-spot' | 'bybit-linear', route: string, streamsPerSubscribe: number, argsPerRequest: number): Venue {
  return {
    name,
    endpoints: { stream: 'wss://stream.bybit.com', rest: 'https://api.bybit.com' },
    limits: { ...common, streamsPerSubscribe },
    combinedPath: route,
    systemStatusPath: '/v5/system/status',
    parseSystemStatus: bybitStatus,
    streamType: (type) => bybitStreamType(type, route),
    streamName: bybitStreamName,
    typeOf: bybitTypeOf,
    isSymbol: name === 'bybit-spot' ? isBybitSpotSymbol : isBybitLinearSymbol,
    symbolExample: 'BTCUSDT',
    readStream: readBybitStream,
    recordingShape: 'wrap',
    clientPing: bybitClientPing,
    protocol: (opts) => new BybitProtocol(opts, argsPerRequest),
    closeCause: bybitCloseCause,
  };
}

export const bybitSpot: Venue = bybitVenue('bybit-spot', SPOT_ROUTE, SPOT_ARGS_PER_REQUEST, SPOT_ARGS_PER_REQUEST);

/**
 * Linear has no args-per-request limit, only the 21,000-character one [B1]; 100 topics (about
 * 2,500 characters) per request is ours, and the protocol also splits by characters.
 */
export const bybitLinear: Venue = bybitVenue('bybit-linear', LINEAR_ROUTE, 100, Number.POSITIVE_INFINITY);
