import { AbortedError } from '../errors.js';
import { systemClock, type Clock, type Timer } from '../clock.js';

/**
 * The supervisor-wide connection attempt budget: at most `limit` attempts in any sliding window of
 * `windowMs` (Binance spot: 300 per 5 min per IP, a rate of new connections — changelog
 * 2023-02-17). Every worker takes each attempt from here, so a mass disconnect queues up instead of
 * becoming a reconnect storm. Waiters are served first come, first served.
 *
 * The window is widened by a safety margin so that the server, which sees our attempts a little
 * later and with jitter, never counts more than `limit` in its own window.
 */
export class AttemptBudget {
  private readonly stamps: number[] = [];
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void; signal?: AbortSignal; onAbort?: () => void }> = [];
  private timer: Timer | undefined;
  readonly windowMs: number;

  constructor(
    readonly limit: number,
    windowMs: number,
    private readonly clock: Clock = systemClock,
    private readonly onChange: (remaining: number) => void = () => {},
    opts: {
      /** Attempts a previous run made (epoch ms): a restart does not get a fresh budget. */
      previous?: readonly number[];
      /** Called after each attempt with the attempts in the window, to persist them. */
      onAttempt?: (stamps: readonly number[]) => void;
    } = {},
  ) {
    this.windowMs = windowMs + Math.max(500, Math.round(windowMs * 0.01));
    this.onAttempt = opts.onAttempt ?? (() => {});
    const now = clock.now();
    for (const t of [...(opts.previous ?? [])].sort((a, b) => a - b)) {
      if (Number.isFinite(t) && t > now - this.windowMs && t <= now) this.stamps.push(t);
    }
  }

  private readonly onAttempt: (stamps: readonly number[]) => void;

  private pausedUntil = 0;

  /**
   * The exchange answered 429/418 to an upgrade: no worker may try again before `until` (the ban is
   * per IP, so it applies to every connection, not only the one that was refused).
   */
  pauseUntil(until: number): void {
    if (until <= this.pausedUntil) return;
    this.pausedUntil = until;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiters.length > 0) this.schedule();
  }

  /** Attempts asked for and not granted yet (workers queued on the budget). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Attempts still available right now. */
  remaining(): number {
    this.prune();
    return this.limit - this.stamps.length;
  }

  /** Resolves when an attempt may be made, and counts it. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new AbortedError());
    this.prune();
    if (this.waiters.length === 0 && this.stamps.length < this.limit && this.clock.now() >= this.pausedUntil) {
      this.take();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const w: (typeof this.waiters)[number] = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason ?? new AbortedError());
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
      this.schedule();
    });
  }

  /** Milliseconds until the next attempt would be granted (0 = now). */
  waitMs(): number {
    this.prune();
    const now = this.clock.now();
    const pause = Math.max(0, this.pausedUntil - now);
    if (this.stamps.length < this.limit) return pause;
    return Math.max(pause, this.stamps[0]! + this.windowMs - now);
  }

  close(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.waiters.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(new AbortedError('attempt budget closed'));
    }
  }

  private take(): void {
    this.stamps.push(this.clock.now());
    this.onChange(this.limit - this.stamps.length);
    this.onAttempt(this.stamps);
  }

  private prune(): void {
    const cutoff = this.clock.now() - this.windowMs;
    let n = 0;
    while (n < this.stamps.length && this.stamps[n]! <= cutoff) n++;
    if (n > 0) {
      this.stamps.splice(0, n);
      this.onChange(this.limit - this.stamps.length);
    }
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const wait = Math.max(1, this.waitMs());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, wait);
  }

  private drain(): void {
    this.prune();
    if (this.clock.now() < this.pausedUntil) {
      this.schedule();
      return;
    }
    while (this.waiters.length > 0 && this.stamps.length < this.limit) {
      const w = this.waiters.shift()!;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      this.take();
      w.resolve();
    }
    if (this.waiters.length > 0) this.schedule();
  }
}
