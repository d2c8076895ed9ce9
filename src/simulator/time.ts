import { performance } from 'node:perf_hooks';

/**
 * The simulator's own elapsed time (ms, monotonic): what its windows and durations are measured
 * against (connection attempts per window, messages per second, maintenance, token lifetimes,
 * keepalive deadlines, streams advancing while nobody listens). performance.now() plus whatever
 * advance() added: a test moves the exchange's time ahead (Simulator.advance()) instead of
 * sleeping. Its timers (server pings, lifetime cuts, grace periods, the feed's tick) stay real;
 * event times (E, T) come from the wall clock (SimulatorOptions.clock).
 */
export class SimTime {
  private offset = 0;

  readonly now = (): number => performance.now() + this.offset;

  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`advance: ms must be a finite number >= 0, got ${ms}`);
    this.offset += ms;
  }
}
