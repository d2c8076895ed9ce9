import { delay, type Clock } from '../clock.js';
import type { RestHost } from '../rest/hosts.js';

/**
 * Paces the backfill's REST calls inside its share of the IP's request weight:
 *
 * - its own spending: a token bucket of `maxWeightPerMinute`, refilled continuously, holding at
 *   most 5 s of it, so a long backfill is a steady trickle rather than a burst at each minute;
 * - everyone's: the weight the exchange last reported (X-MBX-USED-WEIGHT-1M, all callers of the IP
 *   together, other processes included) plus the next call must stay under `ceiling` (90 % of the
 *   venue's REQUEST_WEIGHT), else it waits for the next minute.
 *
 * Pauses after 429/418 are the host's (src/rest/hosts.ts), shared with every REST caller.
 */
export class WeightPacer {
  private tokens: number;
  private last: number;
  private readonly capacity: number;

  constructor(
    private readonly maxWeightPerMinute: number,
    private readonly ceiling: number,
    private readonly host: RestHost,
    private readonly clock: Clock,
  ) {
    this.capacity = Math.max(1, maxWeightPerMinute / 12);
    this.tokens = this.capacity;
    this.last = clock.now();
  }

  /** Resolves when a call of `weight` may go; rejects when `signal` aborts. */
  async take(weight: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(Math.max(this.capacity, weight), this.tokens + ((now - this.last) * this.maxWeightPerMinute) / 60_000);
      this.last = now;
      let wait = this.host.remaining(now);
      const minute = Math.floor(now / 60_000);
      if (this.host.usedWeightMinute === minute && this.host.usedWeight + weight > this.ceiling) wait = Math.max(wait, (minute + 1) * 60_000 - now);
      if (this.tokens < weight) wait = Math.max(wait, Math.ceil(((weight - this.tokens) * 60_000) / this.maxWeightPerMinute));
      if (wait <= 0) {
        this.tokens -= weight;
        return;
      }
      await delay(wait, signal, this.clock);
    }
  }
}

const shared = new WeakMap<RestHost, WeightPacer>();

/**
 * The one pacer of a REST host in this process: backfill pages and order-book snapshots draw on the
 * same share (the first caller's figures set it).
 */
export function sharedPacer(host: RestHost, maxWeightPerMinute: number, ceiling: number, clock: Clock): WeightPacer {
  let p = shared.get(host);
  if (p === undefined) shared.set(host, (p = new WeightPacer(maxWeightPerMinute, ceiling, host, clock)));
  return p;
}
