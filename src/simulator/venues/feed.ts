import type { Duplex } from 'node:stream';
import { textFrame } from '../frame.js';
import { IdLog } from '../id-log.js';
import { systemClock } from '../../clock.js';
import type { SimTime } from '../time.js';

/**
 * One stream's market, written by the dialect: it moves one push forward at a time and renders that
 * push as the venue sends it. The feed decides when and to whom.
 */
export interface Tape {
  /**
   * Moves the market one push forward. Reports each ID the push covers through `id` (trade IDs,
   * book update IDs; nothing for tickers and candles), at most `maxIds` of them (skip() asks for
   * exactly the IDs it still has to swallow).
   */
  advance(now: number, maxIds: number, id: (n: number) => void): void;
  /** The last push, as a subscriber that already had a push gets it. */
  frame(): string;
  /** The last push as a subscriber's first (a book snapshot); absent: the same as frame(). */
  firstFrame?(): string;
}

/** What the feed needs of a connection. */
export interface Subscriber {
  readonly socket: Duplex;
  canReceive(): boolean;
  slowConsumer(bufferedBytes: number): void;
  /** Feed bookkeeping: the tick in which this socket was corked. */
  corkedTick: number;
  /** The exchange's time of the last push written (OKX counts it as traffic). */
  lastPushAt: number;
}

export interface VenueFeedOptions {
  eventsPerSecond: number;
  tickMs: number;
  clock: () => number;
  /** The exchange's time: ticks and idle streams are measured against it. */
  time: SimTime;
  idHistoryLimit: number;
  advanceWhileIdle: boolean;
  maxBufferedBytes: number;
  /** The dialect's tape for a canonical stream id the dialect accepted. */
  newTape(stream: string): Tape;
}

/** At most this much elapsed time is made up for in one tick after the event loop was blocked. */
const MAX_TICK_GAP_MS = 1000;
/** At most this many pushes are made up for when an idle stream gets a subscriber again. */
const MAX_IDLE_EVENTS = 1_000_000;

class StreamState {
  readonly subs = new Set<Subscriber>();
  /** Subscribed, no push received yet: gets firstFrame(). */
  readonly fresh = new Set<Subscriber>();
  /** Fractional pushes due; a random phase so that streams do not all fire in the same tick. */
  acc = Math.random();
  generated = 0;
  /** IDs (or, for streams without IDs, pushes) still to generate without sending. */
  skip = 0;
  /** The exchange's time when the last subscriber left; -1 while subscribed or before the first. */
  idleSince = -1;
  readonly ids: IdLog;
  readonly skipped: IdLog;
  private skipping = false;
  private counted = 0;
  /** Bound once: the tape reports IDs through it on every push. */
  private readonly record = (id: number): void => {
    this.ids.push(id);
    this.counted++;
    if (this.skipping) this.skipped.push(id);
  };

  constructor(
    readonly tape: Tape,
    idHistoryLimit: number,
  ) {
    this.ids = new IdLog(idHistoryLimit);
    this.skipped = new IdLog(idHistoryLimit);
  }

  /**
   * One push forward; true when it is to be sent, false when skip() swallowed it. Pushes made up for
   * an idle stream (`idle`) leave skip() alone: as in the Binance feed, it waits for a listener.
   */
  advance(now: number, idle = false): boolean {
    this.skipping = !idle && this.skip > 0;
    this.counted = 0;
    this.tape.advance(now, this.skipping ? this.skip : Number.POSITIVE_INFINITY, this.record);
    this.generated++;
    if (!this.skipping) return true;
    this.skip = Math.max(0, this.skip - Math.max(1, this.counted));
    return false;
  }
}

/**
 * Market-data generation and broadcast for the Bybit and OKX dialects, on the Binance feed's model
 * (src/simulator/feed.ts): one timer for the whole server, only subscribed streams generate, each push
 * is rendered and framed once and the same bytes go to every subscriber. A subscriber's first push may
 * differ (books start with a snapshot: facts sheet, Bybit "book" and OKX "book channels"), so that
 * variant is framed once more for the new subscribers of that push.
 */
export class VenueFeed {
  private readonly streams = new Map<string, StreamState>();
  private readonly active = new Set<StreamState>();
  private readonly corked: Subscriber[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastTick = 0;
  private tickNo = 0;
  private pausedAt = -1;

  constructor(private readonly opts: VenueFeedOptions) {}

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

  attach(sub: Subscriber, stream: string): void {
    const s = this.state(stream);
    if (s.subs.size === 0) this.activate(s);
    s.subs.add(sub);
    s.fresh.add(sub);
  }

  detach(sub: Subscriber, stream: string): void {
    const s = this.streams.get(stream);
    if (s === undefined || !s.subs.delete(sub)) return;
    s.fresh.delete(sub);
    if (s.subs.size > 0) return;
    this.active.delete(s);
    s.idleSince = this.opts.time.now();
  }

  /** The stream's tape, created if the stream never ran (for faults aimed at a stream's next push). */
  tape(stream: string): Tape {
    return this.state(stream).tape;
  }

  skip(stream: string, n: number): void {
    this.state(stream).skip += n;
  }

  sentIds(stream: string): number[] {
    return this.streams.get(stream)?.ids.toArray() ?? [];
  }

  skippedIds(stream: string): number[] {
    return this.streams.get(stream)?.skipped.toArray() ?? [];
  }

  generated(stream: string): number {
    return this.streams.get(stream)?.generated ?? 0;
  }

  private state(stream: string): StreamState {
    let s = this.streams.get(stream);
    if (s === undefined) {
      s = new StreamState(this.opts.newTape(stream), this.opts.idHistoryLimit);
      this.streams.set(stream, s);
    }
    return s;
  }

  /** The market does not wait for a client to come back: the pushes missed while idle are generated. */
  private activate(s: StreamState): void {
    if (s.idleSince >= 0 && this.opts.advanceWhileIdle) {
      const until = this.pausedAt >= 0 ? this.pausedAt : this.opts.time.now();
      const n = Math.min(MAX_IDLE_EVENTS, Math.floor((this.opts.eventsPerSecond * (until - s.idleSince)) / 1000));
      const now = this.opts.clock();
      for (let i = 0; i < n; i++) s.advance(now, true);
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
        if (s.advance(now)) this.broadcast(s, mono);
      }
    }
    this.flush();
  }

  private broadcast(s: StreamState, mono: number): void {
    let frame: Buffer | undefined;
    let first: Buffer | undefined;
    for (const sub of s.subs) {
      if (!sub.canReceive()) continue;
      let bytes: Buffer;
      if (s.fresh.size > 0 && s.fresh.delete(sub) && s.tape.firstFrame !== undefined) {
        bytes = first ??= textFrame(s.tape.firstFrame());
      } else {
        bytes = frame ??= textFrame(s.tape.frame());
      }
      if (sub.corkedTick !== this.tickNo) {
        sub.corkedTick = this.tickNo;
        sub.socket.cork();
        this.corked.push(sub);
      }
      sub.socket.write(bytes);
      sub.lastPushAt = mono;
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
