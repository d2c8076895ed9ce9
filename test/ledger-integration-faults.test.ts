import t, { type Test } from 'tap';
import type { GapEntry } from '../src/ledger/types.js';
import { checkRun } from '../src/rehearse/check.js';
import { formatInvariant } from '../src/rehearse/invariant.js';
import { startStack, until, within, type Stack } from './helpers/stack.js';

// Connection faults against the simulator: each gives every stream on the connection one gap with
// the cause of what happened; a switch-over that loses nothing gives none; and in every case
// recorded + missed = sent (the invariant) for trade, aggTrade and depth.

const KINDS = ['trade', 'aggTrade', 'bookTicker', 'depth@100ms'];
const FAST_BACKOFF = { backoff: { initialMs: 100, maxMs: 500 } };

async function stopAndCheck(t: Test, s: Stack): Promise<GapEntry[]> {
  await s.daemon.stop('test');
  const run = await checkRun(s.config, s.sim);
  t.ok(run.invariant.ok, formatInvariant(run.invariant));
  return run.entries.filter((g) => g.cause !== 'shutdown');
}

const names = (s: Stack): string[] => [...s.daemon.router.names];
const delivering = (s: Stack, more = 2) => until(() => names(s).every((n) => s.daemon.router.stream(n)!.received > more), 5000);
/** Every stream received `more` messages after now. */
function deliversMore(s: Stack, more: number): Promise<boolean> {
  const from = new Map(names(s).map((n) => [n, s.daemon.router.stream(n)!.received]));
  return until(() => names(s).every((n) => s.daemon.router.stream(n)!.received >= from.get(n)! + more), 5000);
}
/** Every stream went dark, then every stream delivered again. */
async function darkThenBack(t: Test, s: Stack, ms = 8000): Promise<void> {
  t.ok(await until(() => names(s).every((n) => s.daemon.router.stream(n)!.gapOpen), ms, 5), 'every stream went dark');
  t.ok(await until(() => names(s).every((n) => !s.daemon.router.stream(n)!.gapOpen), ms), 'every stream is back');
}

t.test('close frames and resets: server_close with the code, rate_limited for 1008, network_error for a reset', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: KINDS, connection: FAST_BACKOFF },
  });
  t.ok(await delivering(s));
  const rounds: Array<[string, { code?: number; abrupt?: boolean }]> = [
    ['close 1011', { code: 1011 }],
    ['close 1008 (too many requests)', { code: 1008 }],
    ['TCP reset (no close frame: 1006)', { abrupt: true }],
  ];
  for (const [what, drop] of rounds) {
    t.equal(s.sim.dropAll(drop), 1, what);
    await darkThenBack(t, s);
    t.ok(await deliversMore(s, 2), 'delivering on the new connection');
  }
  const gaps = await stopAndCheck(t, s);
  t.equal(gaps.length, 8 * rounds.length, 'one gap per stream per drop');
  t.ok(gaps.every((g) => g.maintenance === null && g.end !== null), 'all closed, none in maintenance');
  const [close1011, close1008, reset] = [gaps.slice(0, 8), gaps.slice(8, 16), gaps.slice(16)];
  t.same(new Set(close1011.map((g) => `${g.cause} ${g.code}`)), new Set(['server_close 1011']), 'close 1011: server_close, code 1011');
  t.same(new Set(close1008.map((g) => `${g.cause} ${g.code}`)), new Set(['rate_limited 1008']), 'close 1008: rate_limited, code 1008');
  // docs/gap-ledger.md: 1006 (no close frame) is network_error, code null.
  t.same(new Set(reset.map((g) => `${g.cause} ${g.code}`)), new Set(['network_error null']), 'a reset: network_error, code null');
  const sequenced = gaps.filter((g) => /@(trade|aggTrade|depth@100ms)$/.test(g.stream));
  t.ok(sequenced.every((g) => g.missed !== null), 'trade, aggTrade and depth gaps carry the range');
  t.same(s.sim.violations, []);
});

t.test('a stall: stale gaps from the last frame, then a new connection', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: KINDS, connection: { ...FAST_BACKOFF, staleAfterMs: 1000 } },
  });
  t.ok(await delivering(s));
  const lastRecv = () => Math.max(...names(s).map((n) => s.daemon.router.stream(n)!.lastRecv));
  t.equal(s.sim.stall(), 1);
  const stalledAt = Date.now();
  await darkThenBack(t, s, 5000);
  const lastBefore = lastRecv();
  const gaps = await stopAndCheck(t, s);
  t.equal(gaps.length, 8);
  t.ok(gaps.every((g) => g.cause === 'stale' && g.code === null), 'cause stale');
  t.ok(gaps.every((g) => g.start <= stalledAt + 100), 'start: the last frame before the stall, not the detection');
  t.ok(gaps.every((g) => g.end! >= stalledAt + 1000), 'end: after staleAfterMs, on the new connection');
  t.ok(lastBefore > stalledAt + 1000, 'delivering again');
  t.equal(s.sim.totalConnections, 2);
});

t.test('lifetime rotations and serverShutdown switch-overs: no entry, nothing lost, nothing doubled', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50, maxLifetimeMs: 3500, shutdownGraceMs: 1500 },
    config: {
      symbols: ['BTCUSDT', 'ETHUSDT'],
      streams: KINDS,
      connection: { maxLifetimeMs: 3500, rotateBeforeMs: 2000, handshakeTimeoutMs: 1000, switchoverTimeoutMs: 1000 },
    },
  });
  const worker = s.daemon.supervisor.workers[0]!;
  // The switch-overs awaited in the worker's statuses: open on the replacement, the old one replaced.
  const rotated = worker.nextStatus('open', (st) => st.reason === 'lifetime');
  t.ok(await delivering(s));
  t.match(await within(rotated, 5000), { replaced: /#1$/ }, 'a lifetime rotation');
  t.ok(await until(() => s.sim.connections().length === 1, 3000), 'the old connection closed');
  const switched = worker.nextStatus('open', (st) => st.reason === 'server_shutdown');
  t.equal(s.sim.serverShutdown(), 1, 'serverShutdown sent');
  t.match(await within(switched, 3000), { replaced: /#2$/ }, 'switched over at once');
  t.ok(await until(() => s.sim.connections().length === 1, 3000), 'the old connection closed');
  const gaps = await stopAndCheck(t, s);
  t.same(gaps, [], 'no gap entry');
  t.same(s.sim.violations, []);
});

t.test('bookTicker: u jumps are never a gap', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 50, tickMs: 20 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT', 'BNBUSDT'], streams: ['bookTicker'] },
  });
  t.ok(await delivering(s, 50));
  s.sim.skip('btcusdt@bookTicker', 10);
  t.ok(await until(() => s.sim.skippedIds('btcusdt@bookTicker').length === 10, 5000), 'ten updates skipped');
  t.ok(await deliversMore(s, 5), 'and delivered after them');
  const gaps = await stopAndCheck(t, s);
  t.same(gaps, []);
  const sent = s.sim.sentIds('ethusdt@bookTicker');
  t.ok(sent.some((u, i) => i > 0 && u - sent[i - 1]! > 1), 'the exchange did jump');
});
