import type { Clock as TapClock } from '@tapjs/clock';
import type { Clock, Timer } from '../../src/clock.js';

/**
 * tap's mock clock (`t.clock`, @tapjs/clock) as the Clock src/ takes (src/clock.ts): time moves only
 * when the test calls t.clock.advance(ms), which runs the timers that fall due, at once.
 */
export function mockClock(c: TapClock): Clock {
  return {
    now: () => c.now(),
    setTimeout: (fn, ms) => c.setTimeout(fn, ms) as unknown as Timer,
    clearTimeout: (timer) => {
      if (timer !== undefined) c.clearTimeout(timer as unknown as Parameters<TapClock['clearTimeout']>[0]);
    },
  };
}
