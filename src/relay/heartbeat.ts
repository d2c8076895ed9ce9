import type { Clock, Timer } from '../clock.js';

/**
 * Binance's server side of the keepalive, and its per-connection message limit: the relay applies
 * them to its clients, and the simulator (which models Binance's server) uses the same classes.
 */

export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  /** Send a ping frame carrying `payload`. */
  ping(payload: string): void;
  /** A ping went unanswered for timeoutMs. */
  timeout(): void;
}

/**
 * A ping with a payload every intervalMs; the client is dead when a ping gets no pong carrying its
 * payload within timeoutMs. A pong answering a later ping also answers the earlier ones; a pong with
 * an unknown payload (unsolicited) answers nothing, as on Binance.
 */
export class ServerHeartbeat {
  private pingTimer: Timer | undefined;
  private deadline: Timer | undefined;
  private readonly pending: Array<{ payload: string; at: number }> = [];
  private lastPayload = '';
  private seq = 0;
  private stopped = false;

  constructor(private readonly opts: HeartbeatOptions) {}

  start(): void {
    this.schedulePing();
  }

  stop(): void {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.pingTimer);
    this.opts.clock.clearTimeout(this.deadline);
    this.pingTimer = undefined;
    this.deadline = undefined;
    this.pending.length = 0;
  }

  /** A pong arrived; true when it answered an outstanding ping. */
  pong(payload: string): boolean {
    const i = this.pending.findIndex((p) => p.payload === payload);
    if (i < 0) return false;
    this.pending.splice(0, i + 1);
    this.armDeadline();
    return true;
  }

  private schedulePing(): void {
    if (this.stopped) return;
    this.pingTimer = this.opts.clock.setTimeout(() => this.sendPing(), this.opts.intervalMs);
  }

  private sendPing(): void {
    if (this.stopped) return;
    const at = this.opts.clock.now();
    let payload = String(at);
    if (payload === this.lastPayload) payload = `${at}-${++this.seq}`;
    this.lastPayload = payload;
    // Bounded: a client that never answers is cut at timeoutMs, long before this matters.
    if (this.pending.length >= 64) this.pending.shift();
    this.pending.push({ payload, at });
    this.opts.ping(payload);
    if (this.deadline === undefined) this.armDeadline();
    this.schedulePing();
  }

  private armDeadline(): void {
    this.opts.clock.clearTimeout(this.deadline);
    this.deadline = undefined;
    const oldest = this.pending[0];
    if (oldest === undefined || this.stopped) return;
    const due = Math.max(0, oldest.at + this.opts.timeoutMs - this.opts.clock.now());
    this.deadline = this.opts.clock.setTimeout(() => {
      this.deadline = undefined;
      this.stop();
      this.opts.timeout();
    }, due);
  }
}

/** Rolling-window counter of one client's incoming frames (messages, pings, pongs). */
export class MessageRate {
  private readonly ring: Float64Array;
  private count = 0;
  private head = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs = 1000,
  ) {
    this.ring = new Float64Array(Math.max(1, limit));
  }

  /** Records a frame at `now` (ms, monotonic); true when it is one more than the window allows. */
  hit(now: number): boolean {
    if (this.limit <= 0) return true;
    if (this.count < this.limit) {
      this.ring[(this.head + this.count) % this.limit] = now;
      this.count++;
      return false;
    }
    if (now - this.ring[this.head]! < this.windowMs) return true;
    this.ring[this.head] = now;
    this.head = (this.head + 1) % this.limit;
    return false;
  }
}
