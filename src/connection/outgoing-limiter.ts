import { systemClock, type Clock, type Timer } from '../clock.js';

/**
 * Paces what one connection sends: at most `perSecond` messages in any rolling second — pongs,
 * pings and control messages all count (Binance: "5 incoming messages per second"; breaking it
 * disconnects with 1008 and repeated offenders are banned).
 *
 * One slot per window belongs to pongs: control messages may use at most perSecond - 1 slots, so a
 * pong never waits behind a burst of SUBSCRIBE messages; and pongs use at most one slot per window,
 * so a server pinging faster than once a second (Binance pings every 20 s) never starves the rest.
 * The window is widened by a margin so that the server, seeing our frames with network jitter,
 * never counts more than the limit in its own second.
 */
export class OutgoingLimiter {
  private readonly all: number[] = [];
  private readonly urgentSent: number[] = [];
  private readonly urgent: Array<() => void> = [];
  private readonly normal: Array<() => void> = [];
  private timer: Timer | undefined;
  private closed = false;
  private readonly windowMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock = systemClock,
    windowMs = 1000,
  ) {
    this.windowMs = windowMs + 100;
  }

  /** Queue a send; `urgent` for pongs. The function runs when the rate allows. */
  enqueue(send: () => void, urgent = false): void {
    if (this.closed) return;
    (urgent ? this.urgent : this.normal).push(send);
    this.pump();
  }

  /** Messages waiting. */
  get queued(): number {
    return this.urgent.length + this.normal.length;
  }

  close(): void {
    this.closed = true;
    this.urgent.length = 0;
    this.normal.length = 0;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const cutoff = now - this.windowMs;
    while (this.all.length > 0 && this.all[0]! <= cutoff) this.all.shift();
    while (this.urgentSent.length > 0 && this.urgentSent[0]! <= cutoff) this.urgentSent.shift();
    if (this.urgent.length > 0 && this.urgentSent.length === 0 && this.all.length < this.perSecond) {
      this.all.push(now);
      this.urgentSent.push(now);
      this.urgent.shift()!();
    }
    const normalCap = this.perSecond - 1 + this.urgentSent.length;
    while (this.normal.length > 0 && this.all.length < Math.min(this.perSecond, Math.max(1, normalCap))) {
      this.all.push(now);
      this.normal.shift()!();
    }
    if (this.queued > 0 && this.timer === undefined && this.all.length > 0) {
      const wait = Math.max(1, this.all[0]! + this.windowMs - now);
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
    }
  }
}
