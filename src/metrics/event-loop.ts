import { systemClock, type Clock, type Timer } from '../clock.js';

/**
 * Measures how late the event loop runs a timer, for /healthz. A timer asks to run every
 * `intervalMs`; how much later than asked it actually runs is the loop's lag. A loop blocked for 6 s
 * (a synchronous hot spot, a runaway GC, a pegged CPU) shows up as one 6 s sample.
 *
 * Why not answer "healthy" just because /healthz got answered: a loop that still answers now and
 * then but is seconds behind is dropping pongs and overflowing the recorder. The liveness probe should
 * fail on that, and restarting is the remedy.
 *
 * The verdict looks at the worst lag over the last `windowMs`, so one long pause fails a probe or two
 * and is forgotten, while a loop that is late on every tick stays unhealthy.
 */
export interface EventLoopLagOptions {
  /** Lag above which the process counts as unhealthy. Default 5000 ms. */
  maxLagMs?: number;
  /** How often the measuring timer asks to run. Default 500 ms. */
  intervalMs?: number;
  /** How long a lag sample counts against health. Default 10 000 ms. */
  windowMs?: number;
  clock?: Clock;
}

export type LoopHealth = { healthy: true; lagMs: number } | { healthy: false; lagMs: number; reason: string };

export class EventLoopLagMonitor {
  readonly maxLagMs: number;
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly clock: Clock;
  private timer: Timer | undefined;
  private expectedAt = 0;
  /** Lag samples above zero, oldest first, trimmed to the window. */
  private samples: Array<{ at: number; lagMs: number }> = [];

  constructor(opts: EventLoopLagOptions = {}) {
    this.maxLagMs = opts.maxLagMs ?? 5000;
    this.intervalMs = opts.intervalMs ?? 500;
    this.windowMs = opts.windowMs ?? 10_000;
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.schedule();
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The worst lag in the window, including the tick that is overdue right now. */
  lagMs(): number {
    const now = this.clock.now();
    this.trim(now);
    let worst = this.timer === undefined ? 0 : Math.max(0, now - this.expectedAt);
    for (const s of this.samples) if (s.lagMs > worst) worst = s.lagMs;
    return worst;
  }

  health(): LoopHealth {
    const lagMs = this.lagMs();
    if (lagMs <= this.maxLagMs) return { healthy: true, lagMs };
    return {
      healthy: false,
      lagMs,
      reason: `event loop lag ${Math.round(lagMs)} ms exceeded ${this.maxLagMs} ms within the last ${this.windowMs} ms`,
    };
  }

  private schedule(): void {
    this.expectedAt = this.clock.now() + this.intervalMs;
    const timer = this.clock.setTimeout(() => this.tick(), this.intervalMs);
    // Measuring must never be what keeps the process alive at shutdown.
    timer.unref?.();
    this.timer = timer;
  }

  private tick(): void {
    const now = this.clock.now();
    const lag = now - this.expectedAt;
    if (lag > 0) this.samples.push({ at: now, lagMs: lag });
    this.trim(now);
    this.schedule();
  }

  private trim(now: number): void {
    let drop = 0;
    while (drop < this.samples.length && now - this.samples[drop]!.at > this.windowMs) drop++;
    if (drop > 0) this.samples.splice(0, drop);
  }
}
