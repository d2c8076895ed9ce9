/**
 * What feedkeeper needs to know about one exchange venue. Everything venue-specific (URLs, limits,
 * stream names, sequence rules) lives in one file per venue implementing this interface.
 */

/** How a stream's messages are ordered and whether a skipped ID means a missed message. */
export type SequenceRule =
  /** IDs increase by exactly 1 per message (trade `t`, aggTrade `a`): a jump is a gap. */
  | { kind: 'contiguous'; field: string }
  /** Diff depth: each event covers [U;u]; spot: next U = previous u + 1; futures: next pu = previous u. */
  | { kind: 'range'; field: 'U/u'; linkedBy: 'U' | 'pu' }
  /** Increasing, but jumps are normal (bookTicker `u`, partial depth `lastUpdateId`, event time `E`). */
  | { kind: 'ordered'; field: string }
  /** No order key (user-data events: two may share one `E`): duplicates are told by their bytes. */
  | { kind: 'none' };

export interface StreamType {
  /** As written in config, e.g. `trade`, `depth@100ms`, `kline_1m`. */
  type: string;
  /** Family, e.g. `trade`, `depth`, `depthPartial`, `kline`. */
  family: string;
  sequence: SequenceRule;
  /** The usual longest silence of an active market's stream, for readiness (0 = unknown). */
  expectedIntervalMs: number;
  /**
   * The combined-stream path that serves it, appended to endpoints.stream: `/stream` on spot; on
   * USD-M `/public/stream` (depth, bookTicker) or `/market/stream` (the rest) since 2026-04-23. A
   * stream subscribed on the wrong route is accepted and then delivers nothing, silently.
   */
  route: string;
}

export interface VenueLimits {
  streamsPerConnection: number;
  connectionAttempts: number;
  connectionAttemptWindowMs: number;
  /** What the client may send on one connection per second (pongs, pings, control messages). */
  messagesPerSecond: number;
  maxLifetimeMs: number;
  serverPingIntervalMs: number;
  pongTimeoutMs: number;
}

export interface Venue {
  name: VenueName;
  endpoints: { stream: string; rest: string };
  limits: VenueLimits;
  /** Path of the combined-stream endpoint when a venue has one for all streams (see StreamType.route). */
  combinedPath: string;
  /** REST path of the maintenance status, or null where the venue has none. */
  systemStatusPath: string | null;
  /** Parse a configured stream type; null when the venue has no such stream. */
  streamType(type: string): StreamType | null;
  /** The stream name on the wire for a symbol and a stream type. */
  streamName(symbol: string, type: string): string;
  /** Is this a well-formed symbol for the venue? */
  isSymbol(symbol: string): boolean;
}

export type VenueName = 'binance-spot' | 'binance-usdm';
