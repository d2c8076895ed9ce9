import t from 'tap';
import { startStack, until } from './helpers/stack.js';

// Back fast after a maintenance window (src/connection/recovery-gate.ts): every connection cut,
// upgrades refused with 503 (no Retry-After) for 8 s, the production backoff (1 s, doubling). With backoffs that keep
// growing the last of 4 connections came back 3.5 s after the window; with one prober at
// connection.probeIntervalMs and the others waiting for it, every stream is back within 2 s, and
// the refused attempts are the prober's, not four growing schedules.

const symbols = Array.from({ length: 16 }, (_, i) => `R${String(i).padStart(2, '0')}USDT`);
const WINDOW_MS = 8000;
const PROBE_MS = 1000;

t.test('after an 8 s window of 503s, every stream is back within 2 s of upgrades being accepted again', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50 },
    config: {
      symbols,
      streams: ['trade', 'aggTrade', 'bookTicker', 'depth@100ms'],
      limits: { streamsPerConnection: 16 },
      connection: { probeIntervalMs: PROBE_MS, backoff: { initialMs: 1000, maxMs: 60_000, multiplier: 2 } },
    },
  });
  const names = [...s.daemon.router.names];
  t.equal(s.daemon.supervisor.workers.length, 4, '4 connections');
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received > 0), 10_000), 'every stream delivers');
  const before = s.sim.upgradeAttempts.length;
  // No Retry-After: nothing tells the daemon when the window ends (with one, it waits just that long).
  s.sim.maintenance(WINDOW_MS, { retryAfterS: 0 });
  const windowEnd = Date.now() + WINDOW_MS;
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10), 'every stream goes dark');
  t.ok(await until(() => names.every((n) => !s.daemon.router.stream(n)!.gapOpen), WINDOW_MS + 10_000, 10), 'every stream is back');
  const backMs = Date.now() - windowEnd;
  t.ok(backMs <= 2000, `the last stream back ${backMs} ms after the window's end (at most 2,000)`);
  const during = s.sim.upgradeAttempts.slice(before);
  const refused = during.filter((a) => a.status === 503).length;
  t.ok(refused >= 2, `upgrades were refused meanwhile (${refused})`);
  // Each connection's first try after the cut may meet a 503; after that only the prober tries.
  t.ok(refused <= 4 + Math.ceil(WINDOW_MS / PROBE_MS) + 1, `${refused} refused attempts: one prober, not four growing schedules`);
  t.notOk(during.some((a) => a.status === 429 || a.status === 418), 'never over the attempt budget');
  t.equal(during.filter((a) => a.status === 101).length, 4, 'exactly one accepted upgrade per connection');
});
