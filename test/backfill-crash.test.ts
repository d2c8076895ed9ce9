import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { readLedger } from '../src/ledger/report.js';
import type { GapEntry } from '../src/ledger/types.js';
import { startSimulator, type BinanceSimulator } from '../src/simulator/index.js';
import { checkExactlyOnce, recordedIds } from './helpers/backfill.js';
import { marketGoesOn, tempDir, testConfig, until, writeTestConfig } from './helpers/stack.js';

// REST backfill across real crashes of the CLI daemon (node --import tsx src/cli/main.ts run):
// SIGKILL and a restart a while later (the daemon_down ranges are backfilled, every ID once), and
// SIGKILL in the middle of a backfill (the next run finishes it).

// Spawning the CLI from sources is slow on a loaded machine.
t.setTimeout(300_000);

const SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
const STREAMS = ['trade', 'aggTrade'];
const NAMES = SYMBOLS.flatMap((s) => STREAMS.map((k) => `${s.toLowerCase()}@${k}`));
const FAST = { connection: { backoff: { initialMs: 100, maxMs: 500 }, probeIntervalMs: 200 } };

t.test('SIGKILL, restart a while later: the daemon_down ranges are backfilled the same way', async (t) => {
  const dir = tempDir(t);
  const sim = (await startSimulator({ eventsPerSecond: 40, tickMs: 20 })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const file = writeTestConfig(dir, sim, { symbols: SYMBOLS, streams: STREAMS, ...FAST, metrics: { enabled: false }, backfill: { enabled: true } });
  const config = testConfig(dir, sim, { symbols: SYMBOLS, streams: STREAMS, ...FAST, metrics: { enabled: false }, backfill: { enabled: true } });
  const run = (): { child: ChildProcess; exited: Promise<unknown> } => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEEDKEEPER_')) env[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', file], { stdio: 'ignore', env });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return { child, exited: new Promise((r) => child.once('exit', r)) };
  };
  const a = run();
  t.ok(await until(() => NAMES.every((n) => (recordedIds(config.recorder.dir).get(n)?.ids.length ?? 0) > 10), 60_000, 100), 'the first run records');
  a.child.kill('SIGKILL');
  await a.exited;
  // "A minute later", compressed: the market goes on while nobody listens.
  await marketGoesOn(sim, 1500);
  const b = run();
  const done = async (): Promise<boolean> => {
    const down = (await readLedger(config.ledger.path).catch(() => [] as GapEntry[])).filter((e) => e.cause === 'daemon_down' && (e.missed?.count ?? 0) > 0);
    return down.length >= NAMES.length && down.every((e) => e.recovered?.complete === true);
  };
  t.ok(await until(done, 60_000, 100), 'every daemon_down range is backfilled');
  b.child.kill('SIGTERM');
  await b.exited;
  const down = (await readLedger(config.ledger.path)).filter((e) => e.cause === 'daemon_down' && (e.missed?.count ?? 0) > 0);
  t.ok(down.every((e) => e.recovered!.count === e.missed!.count), `${down.reduce((n, e) => n + e.recovered!.count, 0)} messages recovered over ${down.length} ranges`);
  checkExactlyOnce(t, sim, config.recorder.dir, NAMES);
  t.same(sim.restAnswers.filter((x) => x.status === 429 || x.status === 418), [], 'the simulator never answered 429 or 418');
});

t.test('SIGKILL in the middle of a backfill: the next run finishes it, no ID twice', async (t) => {
  const dir = tempDir(t);
  const sim = (await startSimulator({ eventsPerSecond: 40, tickMs: 20 })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const base = { symbols: SYMBOLS, streams: STREAMS, ...FAST, metrics: { enabled: false } };
  // A share so small that one range at a time goes through (historicalTrades weighs 25; the bucket holds 5 s).
  const slow = writeTestConfig(join(dir, 'slow'), sim, { ...base, recorder: { dir: join(dir, 'rec') }, ledger: { path: join(dir, 'ledger.ndjson'), statePath: join(dir, 'state.json') }, backfill: { enabled: true, maxWeightPerMinute: 300 } });
  const fast = writeTestConfig(join(dir, 'fast'), sim, { ...base, recorder: { dir: join(dir, 'rec') }, ledger: { path: join(dir, 'ledger.ndjson'), statePath: join(dir, 'state.json') }, backfill: { enabled: true } });
  const config = testConfig(join(dir, 'check'), sim, { ...base, recorder: { dir: join(dir, 'rec') }, ledger: { path: join(dir, 'ledger.ndjson'), statePath: join(dir, 'state.json') } });
  const run = (file: string): { child: ChildProcess; exited: Promise<unknown> } => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEEDKEEPER_')) env[k] = v;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', file], { stdio: 'ignore', env });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return { child, exited: new Promise((r) => child.once('exit', r)) };
  };
  const a = run(slow);
  t.ok(await until(() => NAMES.every((n) => (recordedIds(config.recorder.dir).get(n)?.ids.length ?? 0) > 10), 60_000, 100), 'the first run records');
  sim.maintenance(1000);
  const some = async (): Promise<boolean> => {
    const l = await readLedger(config.ledger.path).catch(() => [] as GapEntry[]);
    const ranges = l.filter((e) => e.end !== null && (e.missed?.count ?? 0) > 0);
    return ranges.length >= NAMES.length && ranges.some((e) => e.recovered != null) && ranges.some((e) => e.recovered == null);
  };
  t.ok(await until(some, 60_000, 20), 'some ranges recovered, some not yet');
  a.child.kill('SIGKILL');
  await a.exited;
  const b = run(fast);
  const all = async (): Promise<boolean> => {
    const l = await readLedger(config.ledger.path).catch(() => [] as GapEntry[]);
    return l.filter((e) => e.end !== null && (e.missed?.count ?? 0) > 0).every((e) => e.recovered?.complete === true);
  };
  t.ok(await until(all, 60_000, 100), 'the next run recovers every range, those left and its own daemon_down ones');
  b.child.kill('SIGTERM');
  await b.exited;
  checkExactlyOnce(t, sim, config.recorder.dir, NAMES);
});
