/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the delay is uniform in [0, min(max, initial * multiplier^n)], so that connections
 * dropped together do not come back together.
 */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: { initialMs: number; maxMs: number; multiplier: number },
    private readonly random: () => number = Math.random,
  ) {}

  /** The ceiling of the next delay, before jitter. */
  ceiling(): number {
    return Math.min(this.opts.maxMs, this.opts.initialMs * this.opts.multiplier ** this.attempt);
  }

  next(): number {
    const d = Math.round(this.random() * this.ceiling());
    this.attempt++;
    return d;
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
