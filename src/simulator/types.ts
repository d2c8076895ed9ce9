import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { VenueName } from '../venues/index.js';

/** Overrides of the venue's limits (src/venues); unset keys keep the venue's figure. */
export interface SimulatorLimits {
  streamsPerConnection?: number;
  messagesPerSecond?: number;
  connectionAttempts?: number;
  connectionAttemptWindowMs?: number;
}

export interface SimulatorOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Payload shapes and default limits follow this venue. Default binance-spot. */
  venue?: VenueName;
  /** Events per second per subscribed stream. Default 2. */
  eventsPerSecond?: number;
  /** Generation tick: one timer for the whole server. Default 100. */
  tickMs?: number;
  limits?: SimulatorLimits;
  /** Server ping interval. Default: the venue's figure (20 s spot, 3 min USD-M). */
  pingIntervalMs?: number;
  /** No pong with a ping's payload within this → close. Default: the venue's figure. */
  pongTimeoutMs?: number;
  /** Every connection is cut after this. Default 24 h. */
  maxLifetimeMs?: number;
  /** Source of event times (E, T) and of the `at` of every record. Default Date.now. */
  clock?: () => number;
  /** serverShutdown(): how long after the event the connection is closed. Default 2000. */
  shutdownGraceMs?: number;
  /** A socket with more than this many bytes waiting to be written is cut (slow consumer). Default 8 MiB. */
  maxBufferedBytes?: number;
  /** IDs remembered per stream for sentIds()/skippedIds() (the most recent ones). Default unlimited. */
  idHistoryLimit?: number;
  /**
   * While a started stream has no subscriber its IDs keep advancing at eventsPerSecond (the market
   * does not wait for a client to reconnect), so a resubscriber sees a real gap. Default true.
   */
  advanceWhileIdle?: boolean;
  /** Binance venues: synthetic symbols (`T0001USDT`...) listed in exchangeInfo beside the usual ones. Default 20. */
  listings?: number;
  onViolation?: (v: Violation) => void;
  /**
   * Binance venues: REQUEST_WEIGHT per IP per window (default 6000 spot, 2400 futures, per 60 000 ms),
   * the ban after a 429 was ignored `banAfterIgnored` times (default 3), and its length (120 000 ms).
   */
  rest?: { weightLimit?: number; windowMs?: number; banMs?: number; banAfterIgnored?: number };
  /**
   * Binance venues: what REST aggTrades/historicalTrades serve per trade or aggTrade stream: at most
   * maxRecords (default 1 000 000), none older than maxAgeMs (default: no age limit).
   */
  tradeHistory?: { maxRecords?: number; maxAgeMs?: number };
}

/**
 * `open`: data flows. `stalled`: nothing is sent, input is ignored, TCP stays open.
 * `shutting-down`: serverShutdown sent, data still flows until the grace period ends.
 * `closing`: a close frame was sent or the socket destroyed. `closed`: gone.
 */
export type ConnectionState = 'open' | 'stalled' | 'shutting-down' | 'closing' | 'closed';

export interface ConnectionInfo {
  readonly id: number;
  /** Request pathname, e.g. `/stream` or `/ws/btcusdt@trade`. */
  readonly path: string;
  /** `market`: /ws and /stream. `custom`: an endpoint added with wsRoute(). */
  readonly kind: 'market' | 'custom';
  /** Live view of the streams subscribed. */
  readonly streams: ReadonlySet<string>;
  /** clock() when the upgrade was accepted. */
  readonly openedAt: number;
  /** Frames received from the client: text, binary, ping and pong. */
  readonly messagesFromClient: number;
  readonly combined: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly state: ConnectionState;
}

export type ViolationRule = 'streams_per_connection' | 'messages_per_second' | 'connection_attempts' | 'pong_timeout';

export interface Violation {
  at: number;
  /** 0 when no connection exists yet (connection attempts). */
  connId: number;
  rule: ViolationRule;
  detail: string;
}

/** Something the exchange did on its own that is not the client's fault (e.g. cutting a slow consumer). */
export interface Note {
  at: number;
  connId: number;
  kind: 'slow_consumer';
  detail: string;
}

export interface UpgradeAttempt {
  at: number;
  /** 101 when accepted, else the HTTP status of the refusal. */
  status: number;
  path: string;
  remoteAddress: string;
}

export interface DropOptions {
  /** Close code. Default 1001. */
  code?: number;
  /** Destroy the TCP socket without a close frame. */
  abrupt?: boolean;
}

export type ConnectionFilter = (c: ConnectionInfo) => boolean;

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

/**
 * Handles an extra WebSocket endpoint. The connection still gets server pings, the lifetime cut,
 * stall/drop/serverShutdown and the message-rate limit; while it is stalled its `message`, `ping` and
 * `pong` events are swallowed and `ws.send` does nothing.
 */
export type WsRouteHandler = (ws: WebSocket, req: IncomingMessage, conn: ConnectionInfo) => void;

export interface Simulator {
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly port: number;

  // ---- faults
  dropAll(opts?: DropOptions): number;
  drop(connId: number, opts?: DropOptions): void;
  stall(filter?: ConnectionFilter): number;
  serverShutdown(filter?: ConnectionFilter, opts?: { graceMs?: number }): number;
  maintenance(ms: number, opts?: { status?: number; retryAfterS?: number; statusLagMs?: number }): void;
  refuseUpgrades(count: number, status: number, retryAfterS?: number): void;
  skip(stream: string, n: number): void;
  /** Binance venues: list a symbol in exchangeInfo / take it out (docs/simulator.md). */
  list?(symbol: string, opts?: { status?: string }): void;
  delist?(symbol: string): boolean;
  /** Binance venues: a stream's subscription lost silently on every connection that has it. */
  dropSubscription?(stream: string): number;
  pause(): void;
  resume(): void;
  /**
   * The exchange's time moves `ms` ahead at once (src/simulator/time.ts), as if that long had
   * passed: attempt and message-rate windows, maintenance, token lifetimes and keepalive deadlines
   * count it; a stream nobody listens to makes up its events when it is subscribed again; a stream
   * being delivered makes up at most 1 s of them in its next tick. Timers (server pings, lifetime
   * cuts, grace periods) and event times (E, T) are not moved. A test's "the market goes on" or
   * "the window has passed" without the sleep.
   */
  advance(ms: number): void;

  // ---- observation
  connections(): ConnectionInfo[];
  readonly totalConnections: number;
  readonly upgradeAttempts: UpgradeAttempt[];
  readonly violations: Violation[];
  readonly notes: Note[];
  sentIds(stream: string): number[];
  skippedIds(stream: string): number[];
  generated(stream: string): number;
  onViolation?: (v: Violation) => void;

  // ---- extension
  route(method: string, pathname: string, handler: RouteHandler): void;
  wsRoute(pathPrefix: string, handler: WsRouteHandler): void;

  close(): Promise<void>;
}
