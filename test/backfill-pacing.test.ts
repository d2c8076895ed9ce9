import t from 'tap';
import { systemClock, type Clock } from '../src/clock.js';
import { WeightPacer } from '../src/recovery/pacer.js';
import { RestHostRegistry } from '../src/rest/hosts.js';

// The backfill's pacing: its own share as a steady trickle (a bucket of 5 s), and the IP's reported
// weight as a ceiling that waits for the next minute.

t.test('the share: 5 s of weight at once, then the configured rate', async (t) => {
  const host = new RestHostRegistry().get('http://127.0.0.1:1');
  const pacer = new WeightPacer(6000, 5400, host, systemClock); // 100 weight/s, bucket 500
  const abort = new AbortController();
  const started = Date.now();
  for (let i = 0; i < 32; i++) await pacer.take(25, abort.signal); // 800: 500 at once, 300 at 100/s
  const ms = Date.now() - started;
  t.ok(ms >= 2800 && ms < 6000, `800 weight took ${ms} ms (500 at once, then 100 per second: ~3000)`);
});

t.test('the IP ceiling: the reported weight waits for the next minute', async (t) => {
  const host = new RestHostRegistry().get('http://127.0.0.1:2');
  // A clock 300 ms before a minute's end.
  const off = 60_000 - (Date.now() % 60_000) - 300;
  const clock: Clock = { now: () => Date.now() + off, setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (x) => clearTimeout(x as ReturnType<typeof setTimeout>) };
  const pacer = new WeightPacer(6000, 5400, host, clock);
  host.recordWeight(5398, clock.now()); // another process on the IP spent almost everything
  const started = Date.now();
  await pacer.take(4, new AbortController().signal);
  const ms = Date.now() - started;
  t.ok(ms >= 250 && ms < 2000, `waited ${ms} ms for the next minute`);
  const again = Date.now();
  await pacer.take(4, new AbortController().signal);
  t.ok(Date.now() - again < 250, 'then goes at once');
});
