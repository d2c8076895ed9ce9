import { systemClock, type Clock, type Timer } from '../clock.js';

/**
 * Catches a silent stall: a connection that receives no frame of any kind (data, ping, pong) for
 * `staleAfterMs` is dead even if TCP says otherwise. One timer per connection armed at the deadline;
 * the hot path only stores a timestamp (touch), and the timer re-arms itself when it finds the
 * connection was touched since, so it fires exactly at lastFrame + staleAfterMs.
 */
export class StaleWatchdog {
  private last: number;
  private timer: Timer | undefined;

  constructor(
    private readonly staleAfterMs: number,
    private readonly onStale: (silentMs: number) => void,
    private readonly clock: Clock = systemClock,
  ) {
    this.last = clock.now();
  }

  start(): void {
    this.last = this.clock.now();
    this.arm(this.staleAfterMs);
  }

  touch(now: number): void {
    this.last = now;
  }

  get lastFrameAt(): number {
    return this.last;
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.check(), Math.max(1, ms));
  }

  private check(): void {
    const silent = this.clock.now() - this.last;
    if (silent >= this.staleAfterMs) {
      this.timer = undefined;
      this.onStale(silent);
    } else {
      this.arm(this.staleAfterMs - silent);
    }
  }
}
