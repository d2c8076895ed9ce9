import type { Duplex } from 'node:stream';
import type { VenueName } from '../venues/index.js';
import { textFrame } from './frame.js';
import { SimBook } from './book.js';
import { TradeHistory, type HistoryLimits } from './history.js';
import { IdLog } from './id-log.js';
import { familyFor, newTape, type Family, type Tape } from './payloads.js';
import type { StreamSpec } from './streams.js';
import { systemClock } from '../clock.js';
import type { SimTime } from './time.js';

/** What the feed needs of a connection to deliver events to it. */
export interface Subscriber {
  readonly id: number;
  readonly combined: boolean;
  /** timeUnit=MICROSECOND was requested. */
  readonly micro: boolean;
  readonly socket: Duplex;
  /** Open for data (not stalled, not closing). */
  canReceive(): boolean;
  /** The socket holds more unsent bytes than the exchange tolerates. */
  slowConsumer(bufferedBytes: number): void;
  /** Feed bookkeeping: the tick in which this socket was corked. */
  corkedTick: number;
}

export interface FeedOptions {
  venue: VenueName;
  eventsPerSecond: number;
  tickMs: number;
  clock: () => number;
  /** The exchange's time: ticks and idle streams are measured against it. */
  time: SimTime;
  idHistoryLimit: number;
  advanceWhileIdle: boolean;
  maxBufferedBytes: number;
  /** What REST serves of trade and aggTrade streams (src/simulator/history.ts). Default: none kept. */
  history?: HistoryLimits;
}

/** At most this much elapsed time is made up for in one tick after the event loop was blocked. */
const MAX_TICK_GAP_MS = 1000;
/** At most this many events are made up for when an idle stream gets a subscriber again. */
const MAX_IDLE_EVENTS = 1_000_000;

class StreamState {
  readonly subs = new Set<Subscriber>();
  /** Fractional events due; starts at a random phase so that streams do not all fire in the same tick. */
  acc = Math.random();
  generated = 0;
  skip = 0;
  /** The exchange's time when the last subscriber left; -1 while subscribed or before the first subscriber. */
  idleSince = -1;
  readonly ids: IdLog | null;
  readonly skipped: IdLog | null;
  /** trade/aggTrade: every event generated, for REST (src/simulator/history.ts). */
  history: TradeHistory | null = null;
  /** Diff depth: the book its events are diffs of (src/simulator/book.ts). */
  book: SimBook | null = null;
  /** `{"stream":"<name>","data":` */
  readonly prefix: string;

  constructor(
    readonly spec: StreamSpec,
    readonly family: Family,
    readonly tape: Tape,
    idHistoryLimit: number,
  ) {
    this.prefix = `{"stream":"${spec.name}","data":`;
    this.ids = family.idField === null ? null : new IdLog(idHistoryLimit);
    this.skipped = family.idField === null ? null : new IdLog(idHistoryLimit);
  }
}

/**
 * Market-data generation and broadcast. One timer for the whole server; only streams that somebody
 * subscribes to generate. Each event is encoded and framed once per variant (raw/combined, ms/µs)
 * actually needed, and the same bytes are written to every subscriber, so that two connections on the
 * same stream receive identical frames. Sockets are corked for the tick and checked for backpressure
 * after it.
 */
export class MarketFeed {
  private readonly streams = new Map<string, StreamState>();
  private readonly active = new Set<StreamState>();
  private readonly corked: Subscriber[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastTick = 0;
  private tickNo = 0;
  private pausedAt = -1;

  constructor(private readonly opts: FeedOptions) {}

  start(): void {
    this.lastTick = this.opts.time.now();
    this.timer = systemClock.setInterval(() => this.tick(), this.opts.tickMs);
  }

  stop(): void {
    systemClock.clearInterval(this.timer);
    this.timer = undefined;
  }

  pause(): void {
    if (this.pausedAt < 0) this.pausedAt = this.opts.time.now();
  }

  resume(): void {
    if (this.pausedAt < 0) return;
    const now = this.opts.time.now();
    // Paused time does not count as idle time either.
    for (const s of this.streams.values()) if (s.idleSince >= 0) s.idleSince += now - this.pausedAt;
    this.pausedAt = -1;
    this.lastTick = now;
  }

  attach(sub: Subscriber, spec: StreamSpec): void {
    const s = this.state(spec);
    if (s.subs.size === 0) this.activate(s);
    s.subs.add(sub);
  }

  detach(sub: Subscriber, name: string): void {
    const s = this.streams.get(name);
    if (s === undefined || !s.subs.delete(sub) || s.subs.size > 0) return;
    this.active.delete(s);
    s.idleSince = this.opts.time.now();
  }

  skip(spec: StreamSpec, n: number): void {
    this.state(spec).skip += n;
  }

  sentIds(name: string): number[] {
    return this.streams.get(name)?.ids?.toArray() ?? [];
  }

  skippedIds(name: string): number[] {
    return this.streams.get(name)?.skipped?.toArray() ?? [];
  }

  generated(name: string): number {
    return this.streams.get(name)?.generated ?? 0;
  }

  /** The book behind a diff-depth stream (its events so far), or null. */
  depthBook(name: string): { book: SimBook; tape: Tape } | null {
    const s = this.streams.get(name);
    return s?.book ? { book: s.book, tape: s.tape } : null;
  }

  /** The REST history of a trade or aggTrade stream, or null (never generated, or another kind). */
  history(name: string): { history: TradeHistory; priceDp: number } | null {
    const s = this.streams.get(name);
    return s?.history ? { history: s.history, priceDp: s.tape.priceDp } : null;
  }

  private state(spec: StreamSpec): StreamState {
    let s = this.streams.get(spec.name);
    if (s === undefined) {
      s = new StreamState(spec, familyFor(this.opts.venue, spec.family), newTape(this.opts.venue, spec), this.opts.idHistoryLimit);
      if (this.opts.history !== undefined && (spec.family === 'trade' || spec.family === 'aggTrade')) s.history = new TradeHistory(this.opts.history, this.opts.clock);
      if (spec.family === 'depth') s.book = new SimBook();
      this.streams.set(spec.name, s);
    }
    return s;
  }

  private activate(s: StreamState): void {
    if (s.idleSince >= 0 && this.opts.advanceWhileIdle) {
      const until = this.pausedAt >= 0 ? this.pausedAt : this.opts.time.now();
      const n = Math.min(MAX_IDLE_EVENTS, Math.floor((this.opts.eventsPerSecond * (until - s.idleSince)) / 1000));
      // Trades while nobody listened happened all the same: REST serves them, at their times.
      const h = s.history;
      const t0 = this.opts.clock() - (this.opts.time.now() - s.idleSince);
      for (let i = 0; i < n; i++) {
        s.family.advance(s.tape);
        s.generated++;
        s.ids?.push(s.tape.seq);
        if (h !== null) {
          s.family.fill(s.tape, Math.floor(t0 + ((i + 1) * 1000) / this.opts.eventsPerSecond));
          h.push(s.tape, s.spec.family === 'aggTrade');
        }
      }
    }
    s.idleSince = -1;
    this.active.add(s);
  }

  private tick(): void {
    const mono = this.opts.time.now();
    const dt = Math.min(mono - this.lastTick, MAX_TICK_GAP_MS);
    this.lastTick = mono;
    if (this.pausedAt >= 0 || this.active.size === 0) return;
    const due = (this.opts.eventsPerSecond * dt) / 1000;
    const now = this.opts.clock();
    this.tickNo++;
    for (const s of this.active) {
      s.acc += due;
      while (s.acc >= 1) {
        s.acc -= 1;
        this.emit(s, now);
      }
    }
    this.flush();
  }

  private emit(s: StreamState, now: number): void {
    const { family, tape } = s;
    family.advance(tape);
    family.fill(tape, now);
    s.book?.step(tape);
    s.generated++;
    s.ids?.push(tape.seq);
    s.history?.push(tape, s.spec.family === 'aggTrade');
    if (s.skip > 0) {
      // Generated, IDs consumed, sent to nobody: a live sequence gap.
      s.skip--;
      s.skipped?.push(tape.seq);
      return;
    }
    let payload: string | undefined;
    let payloadMicro: string | undefined;
    let raw: Buffer | undefined;
    let combined: Buffer | undefined;
    let rawMicro: Buffer | undefined;
    let combinedMicro: Buffer | undefined;
    for (const sub of s.subs) {
      if (!sub.canReceive()) continue;
      let frame: Buffer;
      if (sub.micro) {
        payloadMicro ??= family.encode(tape, 1000);
        frame = sub.combined
          ? (combinedMicro ??= textFrame(s.prefix + payloadMicro + '}'))
          : (rawMicro ??= textFrame(payloadMicro));
      } else {
        payload ??= family.encode(tape, 1);
        frame = sub.combined ? (combined ??= textFrame(s.prefix + payload + '}')) : (raw ??= textFrame(payload));
      }
      if (sub.corkedTick !== this.tickNo) {
        sub.corkedTick = this.tickNo;
        sub.socket.cork();
        this.corked.push(sub);
      }
      sub.socket.write(frame);
    }
  }

  private flush(): void {
    for (const sub of this.corked) {
      sub.socket.uncork();
      const buffered = sub.socket.writableLength;
      if (buffered > this.opts.maxBufferedBytes) sub.slowConsumer(buffered);
    }
    this.corked.length = 0;
  }
}
