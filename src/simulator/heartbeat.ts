import type { Clock, Timer } from '../clock.js';

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
 * The server side of Binance's keepalive: a ping with a payload every intervalMs; the connection is
 * dead when a ping gets no pong carrying its payload within timeoutMs. A pong answering a later ping
 * also answers the earlier ones; a pong with an unknown payload (unsolicited) answers nothing.
 */
export class ServerHeartbeat {
  private pingTimer: Timer | undefined;
  private deadline: Timer | undefined;
  private readonly pending: Array<{ payload: string; at: number }> = [];
  private lastPayload = '';
  private seq = 0;

  constructor(private readonly opts: HeartbeatOptions) {}

  start(): void {
    this.schedulePing();
  }

  stop(): void {
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
    this.pingTimer = this.opts.clock.setTimeout(() => this.sendPing(), this.opts.intervalMs);
  }

  private sendPing(): void {
    const at = this.opts.clock.now();
    let payload = String(at);
    if (payload === this.lastPayload) payload = `${at}-${++this.seq}`;
    this.lastPayload = payload;
    this.pending.push({ payload, at });
    this.opts.ping(payload);
    if (this.deadline === undefined) this.armDeadline();
    this.schedulePing();
  }

  private armDeadline(): void {
    this.opts.clock.clearTimeout(this.deadline);
    this.deadline = undefined;
    const oldest = this.pending[0];
    if (oldest === undefined) return;
    const due = Math.max(0, oldest.at + this.opts.timeoutMs - this.opts.clock.now());
    this.deadline = this.opts.clock.setTimeout(() => {
      this.deadline = undefined;
      this.stop();
      this.opts.timeout();
    }, due);
  }
}
