import t, { type Test } from 'tap';
import type { GapEntry } from '../src/ledger/types.js';
import { checkRun } from '../src/rehearse/check.js';
import { formatInvariant } from '../src/rehearse/invariant.js';
import { startStack, until, type Stack } from './helpers/stack.js';

// The gap ledger against a real exchange (the simulator) and a real daemon: each gap the exchange
// causes is in the ledger with the right cause and tag, and the invariant holds: for every trade,
// aggTrade and depth stream, recorded + missed = sent, with no overlap and no duplicate.

const symbols = (n: number): string[] => Array.from({ length: n }, (_, i) => `M${String(i).padStart(3, '0')}USDT`);
const ALL_KINDS = ['trade', 'aggTrade', 'bookTicker', 'depth@100ms'];

/** Stop the daemon (so the recording is complete), then check the invariant. */
async function stopAndCheck(t: Test, s: Stack): Promise<GapEntry[]> {
  await s.daemon.stop('test');
  const run = await checkRun(s.config, s.sim);
  t.ok(run.invariant.ok, formatInvariant(run.invariant));
  t.equal(run.skippedLines, 0, 'every recorded line parses');
  return run.entries;
}

/** The gaps other than the `shutdown` ones the final stop opens. */
const faults = (entries: GapEntry[]): GapEntry[] => entries.filter((g) => g.cause !== 'shutdown');

function perStream(entries: GapEntry[]): Map<string, GapEntry[]> {
  const m = new Map<string, GapEntry[]>();
  for (const g of entries) m.set(g.stream, [...(m.get(g.stream) ?? []), g]);
  return m;
}

t.test('a maintenance window: 160 streams, one gap each, cause maintenance, tagged, exact ranges', async (t) => {
  const reason = 'Binance Spot API infrastructure upgrade (rehearsed)';
  const now = Date.now();
  const s = await startStack(t, {
    sim: { eventsPerSecond: 10, tickMs: 50 },
    config: {
      symbols: symbols(40),
      streams: ALL_KINDS,
      maintenance: { windows: [{ start: new Date(now - 1000).toISOString(), end: new Date(now + 60_000).toISOString(), reason }] },
      connection: { backoff: { initialMs: 100, maxMs: 1000 } },
    },
  });
  const names = [...s.daemon.router.names];
  t.equal(names.length, 160);
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received > 2), 10_000), 'every stream delivers');
  s.sim.maintenance(2000);
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10), 'every stream goes dark');
  t.ok(await until(() => names.every((n) => !s.daemon.router.stream(n)!.gapOpen), 10_000), 'every stream is back');
  t.ok(s.sim.upgradeAttempts.some((a) => a.status === 503), 'upgrades were refused with 503 meanwhile');
  const back = new Map(names.map((n) => [n, s.daemon.router.stream(n)!.received]));
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received >= back.get(n)! + 2), 5000), 'and keeps delivering');
  const gaps = faults(await stopAndCheck(t, s));
  const per = perStream(gaps);
  t.equal(per.size, 160, 'every stream has a gap');
  t.ok([...per.values()].every((g) => g.length === 1), 'exactly one each');
  t.same(new Set(gaps.map((g) => `${g.cause} ${g.code} ${g.maintenance}`)), new Set([`maintenance 1001 ${reason}`]), 'cause maintenance, the close code, the window');
  t.ok(gaps.every((g) => g.end !== null && g.end - g.start >= 1500), 'closed, after the exchange came back');
  t.ok(gaps.every((g) => /^server_close: closed by the server: 1001/.test(g.detail ?? '')), 'what physically happened, in detail', { detail: gaps[0]!.detail });
  for (const g of gaps) {
    const type = g.stream.slice(g.stream.indexOf('@') + 1);
    if (type === 'bookTicker') t.equal(g.missed, null, `${g.stream}: no missed range (u jumps)`);
    else if (type === 'depth@100ms') t.match(g.missed, { field: 'U/u', count: null });
    else if (!(g.missed !== null && g.missed.count! > 0)) t.fail(`${g.stream}: a missed count`, { missed: g.missed });
  }
  t.same(s.sim.violations, []);
});

t.test('maintenance seen only by the system status poll: the cause stays physical, the gap is tagged', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 10, tickMs: 50 },
    config: { symbols: symbols(3), streams: ALL_KINDS, maintenance: { statusPollMs: 100, windows: [] }, connection: { backoff: { initialMs: 100, maxMs: 1000 } } },
  });
  const names = [...s.daemon.router.names];
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received > 2), 5000));
  // The status page lags the servers by 300 ms: the disconnects are the daemon's first sign (without
  // the lag a poll answered in the same moment as the close frames won the race about 1 run in 10).
  s.sim.maintenance(1500, { statusLagMs: 300 });
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10));
  t.ok(await until(() => names.every((n) => !s.daemon.router.stream(n)!.gapOpen), 10_000));
  const statusWindows = (): number => s.daemon.calendar.windows().filter((w) => w.source === 'system_status' && w.end !== null).length;
  t.ok(await until(() => statusWindows() === 1, 5000), 'the poll saw status 0 again');
  const gaps = faults(await stopAndCheck(t, s));
  t.equal(gaps.length, 12, 'one gap per stream');
  // The exchange closed the connections before the poll could see status 1: no window was in force
  // at the disconnect, so the cause is what happened; the gap overlaps the window, so it is tagged.
  t.same(new Set(gaps.map((g) => `${g.cause} ${g.code} ${g.maintenance}`)), new Set(['server_close 1001 system_maintenance (GET /sapi/v1/system/status)']));
  t.equal(statusWindows(), 1, 'the status window opened and closed');
});

t.test('IDs skipped on a live connection: one sequence gap per stream with the exact range (trade, aggTrade, depth)', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50 },
    config: { symbols: ['BTCUSDT'], streams: ALL_KINDS },
  });
  const names = [...s.daemon.router.names];
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received > 3), 5000));
  const skips: Array<[string, number]> = [
    ['btcusdt@trade', 5],
    ['btcusdt@aggTrade', 4],
    ['btcusdt@depth@100ms', 3],
    ['btcusdt@bookTicker', 6],
  ];
  for (const [stream, n] of skips) s.sim.skip(stream, n);
  t.ok(await until(() => skips.every(([stream, n]) => s.sim.skippedIds(stream).length === n), 5000), 'the exchange skipped them');
  const seen = Object.fromEntries(names.map((n) => [n, s.daemon.router.stream(n)!.received]));
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received > seen[n]! + 3), 5000), 'and went on');
  const gaps = faults(await stopAndCheck(t, s));
  const by = (stream: string) => gaps.filter((g) => g.stream === stream);

  const tradeSkipped = s.sim.skippedIds('btcusdt@trade');
  t.match(by('btcusdt@trade'), [{ cause: 'sequence', durationMs: 0, missed: { field: 't', from: tradeSkipped[0], to: tradeSkipped[4], count: 5 } }]);
  const aggSkipped = s.sim.skippedIds('btcusdt@aggTrade');
  t.match(by('btcusdt@aggTrade'), [{ cause: 'sequence', missed: { field: 'a', from: aggSkipped[0], to: aggSkipped[3], count: 4 } }]);
  // Depth: the skipped events covered (u before the first skipped; u of the last skipped].
  const depthSent = s.sim.sentIds('btcusdt@depth@100ms');
  const depthSkipped = s.sim.skippedIds('btcusdt@depth@100ms');
  const before = depthSent[depthSent.indexOf(depthSkipped[0]!) - 1]!;
  t.match(by('btcusdt@depth@100ms'), [{ cause: 'sequence', missed: { field: 'U/u', from: before + 1, to: depthSkipped[2], count: null } }]);
  t.same(by('btcusdt@bookTicker'), [], 'bookTicker: skipped updates are not a gap (its u jumps by design)');
  t.equal(gaps.length, 3);
});
