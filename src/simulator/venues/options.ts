import type { SimulatorOptions, Violation } from '../types.js';
import { systemClock } from '../../clock.js';
import { SimTime } from '../time.js';

export type VenueDialectName = 'bybit-spot' | 'bybit-linear' | 'okx' | 'kucoin-spot' | 'gate-spot' | 'coinbase' | 'bitget-spot' | 'bitget-usdt-futures';

/** startVenueSimulator() options: the Binance simulator's, plus what only these venues have. */
export interface VenueSimulatorOptions extends SimulatorOptions {
  venue: VenueDialectName;
  /** Symbols (Bybit `BTCUSDT`) or instIds (OKX `BTC-USDT`) the venue lists. Default: a dozen majors. */
  instruments?: string[];
  /** OKX: subscribe/unsubscribe requests per connection per rolling hour (facts sheet, OKX "limits"). Default 480. */
  subscribesPerHour?: number;
  /**
   * OKX: `books` starts with a snapshot. false: updates only, as OKX announced for Aug 2026 (facts sheet,
   * OKX "pending change"). Default true.
   */
  booksSnapshot?: boolean;
  /** KuCoin: how long a bullet-public token stays valid (facts sheet, KuCoin "connect": 24 h). */
  tokenTtlMs?: number;
  /**
   * Bitget `books`: whether pushes carry `pseq`, and a CRC32 `checksum`, 0 or none (facts sheet, "Still
   * uncertain"); `bigSeq`: seq above 2^53. Default { pseq: true, checksum: 'crc', bigSeq: false }.
   */
  bitgetBooks?: Partial<BitgetBooksStyle>;
}

/** How the Bitget dialect writes `books` pushes (src/simulator/venues/bitget-tapes.ts). */
export interface BitgetBooksStyle {
  pseq: boolean;
  checksum: 'crc' | 'zero' | 'absent';
  bigSeq: boolean;
}

/** Options after defaults were applied. */
export interface VenueSettings {
  venue: VenueDialectName;
  host: string;
  port: number;
  instruments: readonly string[] | undefined;
  eventsPerSecond: number;
  tickMs: number;
  streamsPerConnection: number;
  messagesPerSecond: number;
  connectionAttempts: number;
  connectionAttemptWindowMs: number;
  /** Bybit: longest wait for the client's next `ping` op. OKX: longest silence both ways. */
  keepaliveMs: number;
  maxLifetimeMs: number;
  subscribesPerHour: number;
  booksSnapshot: boolean;
  /** KuCoin: the bullet reply's pingInterval (SimulatorOptions.pingIntervalMs; default 18 s). */
  pingIntervalMs: number;
  tokenTtlMs: number;
  bitgetBooks: BitgetBooksStyle;
  clock: () => number;
  /** The exchange's time (../time.ts): windows, deadlines and idle streams; advance() moves it. */
  time: SimTime;
  shutdownGraceMs: number;
  maxBufferedBytes: number;
  idHistoryLimit: number;
  advanceWhileIdle: boolean;
  onViolation: ((v: Violation) => void) | undefined;
}

/** Node timers cap at 2^31-1 ms (~24.8 days): the simulator's "never". */
export const NEVER_MS = 2 ** 31 - 1;

/**
 * Each venue's documented figures ([B2]-style tags: the sources of ../shared/venues-facts.md). Bybit [B2]: 500 new connections per 5 min per IP. OKX [O1]: 3
 * connection requests per second per IP; the server hangs up after 30 s with neither data nor a client
 * message. Bybit's own cut is 10 min without ping and data [B1], but the daemon's contract is a ping
 * every 20 s, so the simulator cuts after 60 s without a ping to catch a client that stopped pinging.
 * Neither venue documents a per-connection message rate for public streams: 10 per second is the
 * simulator's assumption.
 */
const VENUE_DEFAULTS: Record<VenueDialectName, { connectionAttempts: number; windowMs: number; keepaliveMs: number }> = {
  'bybit-spot': { connectionAttempts: 500, windowMs: 5 * 60_000, keepaliveMs: 60_000 },
  'bybit-linear': { connectionAttempts: 500, windowMs: 5 * 60_000, keepaliveMs: 60_000 },
  okx: { connectionAttempts: 3, windowMs: 1000, keepaliveMs: 30_000 },
  // KuCoin [K2]: 30 connections per minute; cut after pingInterval + pingTimeout without a ping [K1].
  'kucoin-spot': { connectionAttempts: 30, windowMs: 60_000, keepaliveMs: 28_000 },
  // Bitget [G1][G2]: 300 connection requests per 5 min per IP; cut after 2 min without a ping.
  'bitget-spot': { connectionAttempts: 300, windowMs: 5 * 60_000, keepaliveMs: 120_000 },
  'bitget-usdt-futures': { connectionAttempts: 300, windowMs: 5 * 60_000, keepaliveMs: 120_000 },
  // Gate documents no limits [T2]: the venue's own 60 per minute; cut after ~1 min with nothing from the client [I-T3].
  'gate-spot': { connectionAttempts: 60, windowMs: 60_000, keepaliveMs: 60_000 },
  // Coinbase [C3]: 8 connections per second per IP (the lower of two figures); quiet channels close after 60-90 s [C2].
  coinbase: { connectionAttempts: 8, windowMs: 1000, keepaliveMs: 60_000 },
};

/** Throws RangeError naming the option when a value is out of range. */
export function resolveVenueOptions(opts: VenueSimulatorOptions): VenueSettings {
  if (!Object.hasOwn(VENUE_DEFAULTS, opts.venue)) throw new RangeError(`venue: not a venue dialect: ${String(opts.venue)}`);
  const d = VENUE_DEFAULTS[opts.venue];
  const s: VenueSettings = {
    venue: opts.venue,
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    instruments: opts.instruments,
    eventsPerSecond: opts.eventsPerSecond ?? 2,
    tickMs: opts.tickMs ?? 100,
    streamsPerConnection: opts.limits?.streamsPerConnection ?? Number.POSITIVE_INFINITY,
    messagesPerSecond: opts.limits?.messagesPerSecond ?? 10,
    connectionAttempts: opts.limits?.connectionAttempts ?? d.connectionAttempts,
    connectionAttemptWindowMs: opts.limits?.connectionAttemptWindowMs ?? d.windowMs,
    keepaliveMs: opts.pongTimeoutMs ?? d.keepaliveMs,
    // Neither venue documents a lifetime for public connections [B1][O1].
    maxLifetimeMs: opts.maxLifetimeMs ?? NEVER_MS,
    // OKX 480 [O1], Bitget 240 [G2] per connection per hour.
    subscribesPerHour: opts.subscribesPerHour ?? (opts.venue.startsWith('bitget-') ? 240 : 480),
    booksSnapshot: opts.booksSnapshot ?? true,
    pingIntervalMs: opts.pingIntervalMs ?? 18_000,
    tokenTtlMs: opts.tokenTtlMs ?? 24 * 3_600_000,
    bitgetBooks: { pseq: true, checksum: 'crc', bigSeq: false, ...opts.bitgetBooks },
    clock: opts.clock ?? systemClock.now,
    time: new SimTime(),
    shutdownGraceMs: opts.shutdownGraceMs ?? 2000,
    maxBufferedBytes: opts.maxBufferedBytes ?? 8 * 1024 * 1024,
    idHistoryLimit: opts.idHistoryLimit ?? Number.POSITIVE_INFINITY,
    advanceWhileIdle: opts.advanceWhileIdle ?? true,
    onViolation: opts.onViolation,
  };
  const atLeast = (key: string, v: number, min: number): void => {
    if (!(v >= min)) throw new RangeError(`${key}: must be at least ${min}, got ${v}`);
  };
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65_535) throw new RangeError(`port: not a port number: ${s.port}`);
  atLeast('eventsPerSecond', s.eventsPerSecond, 0);
  atLeast('tickMs', s.tickMs, 1);
  atLeast('limits.streamsPerConnection', s.streamsPerConnection, 1);
  atLeast('limits.messagesPerSecond', s.messagesPerSecond, 1);
  atLeast('limits.connectionAttempts', s.connectionAttempts, 1);
  atLeast('limits.connectionAttemptWindowMs', s.connectionAttemptWindowMs, 1);
  atLeast('pongTimeoutMs', s.keepaliveMs, 1);
  atLeast('maxLifetimeMs', s.maxLifetimeMs, 1);
  atLeast('subscribesPerHour', s.subscribesPerHour, 1);
  atLeast('pingIntervalMs', s.pingIntervalMs, 1);
  atLeast('tokenTtlMs', s.tokenTtlMs, 1);
  atLeast('shutdownGraceMs', s.shutdownGraceMs, 0);
  atLeast('maxBufferedBytes', s.maxBufferedBytes, 1);
  atLeast('idHistoryLimit', s.idHistoryLimit, 0);
  if (s.maxLifetimeMs > NEVER_MS) throw new RangeError(`maxLifetimeMs: at most ${NEVER_MS}`);
  if (s.keepaliveMs > NEVER_MS) throw new RangeError(`pongTimeoutMs: at most ${NEVER_MS}`);
  if (s.instruments !== undefined && s.instruments.length === 0) throw new RangeError('instruments: must not be empty');
  return s;
}
