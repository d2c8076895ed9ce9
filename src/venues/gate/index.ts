/**
 * Gate.io spot v4 public market data. Sources, as tagged in the venue facts sheet: [T1]
 * https://www.gate.io/docs/developers/apiv4/ws/en/ (server URL, client request, application
 * ping/pong, public trades, changed order book levels), [T2] https://github.com/gateio/gatews/issues/25
 * (staff: no limits), [I-T3] https://github.com/gateio/gatews/issues/34 (cut after ~1 min of
 * silence). docs/venues.md ("Gate.io") sums up the choices below.
 */
import type { Venue } from '../types.js';
import { readGateStream } from './frame.js';
import { GateProtocol, gateClientPing, gateCloseCause } from './protocol.js';
import { GATE_ROUTE, gateStreamName, gateStreamType, gateTypeOf, isGateSymbol } from './streams.js';

export const gateSpot: Venue = {
  name: 'gate-spot',
  endpoints: { stream: 'wss://api.gateio.ws', rest: 'https://api.gateio.ws' },
  limits: {
    // None documented [T1]; staff: "no limits", at most 100 connections per host advised [T2]. 100
    // streams per connection is ours.
    streamsPerConnection: 100,
    // Not documented. Ours: 60 per minute.
    connectionAttempts: 60,
    connectionAttemptWindowMs: 60_000,
    // Not documented. Ours: 20 per second (one ping every 15 s, subscribes at connect).
    messagesPerSecond: 20,
    // spot.order_book_update names one pair per request (`["BTC_USDT","100ms"]`) [T1]: the worst
    // case, which the session's subscribe timeout is sized by. spot.trades and spot.book_ticker
    // requests carry up to 100 pairs (the protocol batches them).
    streamsPerSubscribe: 1,
    subscribesPerHour: 0,
    maxLifetimeMs: 0,
    // The server does not push on a quiet market; the pong to our 15 s spot.ping is what arrives.
    serverPingIntervalMs: 15_000,
    // The server closes a connection silent for about a minute, without a close frame [I-T3].
    pongTimeoutMs: 60_000,
  },
  combinedPath: GATE_ROUTE,
  systemStatusPath: null,
  streamType: gateStreamType,
  streamName: gateStreamName,
  typeOf: gateTypeOf,
  isSymbol: isGateSymbol,
  symbolExample: 'BTC_USDT',
  readStream: readGateStream,
  recordingShape: 'wrap',
  clientPing: gateClientPing,
  protocol: (opts) => new GateProtocol(opts),
  closeCause: gateCloseCause,
};
