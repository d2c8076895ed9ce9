import t from 'tap';
import type { Clock, Timer } from '../src/clock.js';
import { EventLoopLagMonitor } from '../src/metrics/event-loop.js';

/** A clock whose time only moves when told, with one pending timer at most (all the monitor needs). */
function manualClock() {
  let now = 0;
  let pending: { at: number; fn: () => void } | undefined;
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      pending = { at: now + ms, fn };
      return setTimeout(() => {}, 0) as Timer; // a real, inert handle so that unref() exists
    },
    clearTimeout: () => {
      pending = undefined;
    },
  };
  return {
    clock,
    /** Let `ms` pass without running anything: the loop is busy. */
    advance(ms: number) {
      now += ms;
    },
    /** Let `ms` pass while the loop is blocked: the timer runs once, late, at the end. */
    block(ms: number) {
      now += ms;
      const p = pending;
      if (p !== undefined && p.at <= now) {
        pending = undefined;
        p.fn();
      }
    },
  };
}

t.test('a lag above the limit is unhealthy for the window, then forgotten', async (t) => {
  const c = manualClock();
  const m = new EventLoopLagMonitor({ maxLagMs: 5000, intervalMs: 500, windowMs: 10_000, clock: c.clock });
  m.start();
  t.teardown(() => m.stop());
  c.block(500);
  t.same(m.health(), { healthy: true, lagMs: 0 });
  c.block(6500); // timer asked for 500 ms, ran after 6500: 6000 ms late
  const h = m.health();
  t.equal(h.healthy, false);
  t.equal(h.lagMs, 6000);
  t.match(h, { reason: /event loop lag 6000 ms exceeded 5000 ms/ });
  for (let i = 0; i < 21; i++) c.block(500); // just over 10 s of punctual ticks
  t.ok(m.health().healthy, 'the old sample left the window');
});

t.test('an overdue tick counts before it runs', async (t) => {
  const c = manualClock();
  const m = new EventLoopLagMonitor({ maxLagMs: 1000, intervalMs: 500, clock: c.clock });
  m.start();
  t.teardown(() => m.stop());
  c.advance(2000); // still blocked: the tick due at 500 ms has not run
  t.equal(m.lagMs(), 1500);
  t.equal(m.health().healthy, false);
});

t.test('a lag at the limit is still healthy; stopped monitor reports no lag', async (t) => {
  const c = manualClock();
  const m = new EventLoopLagMonitor({ maxLagMs: 1000, intervalMs: 500, clock: c.clock });
  m.start();
  c.block(1500);
  t.same(m.health(), { healthy: true, lagMs: 1000 });
  m.stop();
  t.equal(m.lagMs(), 1000, 'samples in the window still count');
});
