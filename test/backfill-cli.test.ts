import t from 'tap';
import { run } from '../src/cli/commands/backfill.js';
import { run as gaps } from '../src/cli/commands/gaps.js';
import { Daemon } from '../src/daemon.js';
import { readLedger } from '../src/ledger/report.js';
import { silentLogger } from '../src/log.js';
import { startSimulator, type BinanceSimulator } from '../src/simulator/index.js';
import { checkExactlyOnce } from './helpers/backfill.js';
import { tempDir, until, writeTestConfig, testConfig } from './helpers/stack.js';

// `feedkeeper backfill`: a daemon without backfill leaves gaps with missed ranges; the command,
// offline, fetches them and marks them recovered; JSON lines when not on a terminal.

const NAMES = ['btcusdt@trade', 'btcusdt@aggTrade'];

t.test('feedkeeper backfill works through the unrecovered ranges offline', async (t) => {
  const dir = tempDir(t);
  const sim = (await startSimulator({ eventsPerSecond: 40, tickMs: 20 })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const over = { symbols: ['BTCUSDT'], streams: ['trade', 'aggTrade'], connection: { backoff: { initialMs: 100, maxMs: 500 }, probeIntervalMs: 200 } };
  const config = testConfig(dir, sim, over);
  const file = writeTestConfig(dir, sim, over);
  const d = new Daemon(config, { logger: silentLogger(), configFiles: [] });
  await d.start();
  t.ok(await until(() => NAMES.every((n) => d.router.stream(n)!.received > 5), 10_000));
  sim.maintenance(800);
  t.ok(await until(() => NAMES.every((n) => d.router.stream(n)!.gapOpen), 5000, 10));
  t.ok(await until(() => NAMES.every((n) => !d.router.stream(n)!.gapOpen), 10_000));
  await d.stop('test');
  const open = (await readLedger(config.ledger.path)).filter((e) => (e.missed?.count ?? 0) > 0);
  t.ok(open.length >= 2 && open.every((e) => e.recovered == null), `${open.length} ranges not recovered by a daemon without backfill`);

  let out = '';
  const code = await run(['--config', file, '--stream', 'btcusdt@*'], { stdout: (s) => (out += s), isTTY: false, env: {} });
  t.equal(code, 0, 'exit 0');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, open.length + 1, 'one JSON line per range and a summary');
  t.match(lines[lines.length - 1], { done: true, ranges: open.length, partial: 0, failed: 0 });
  const after = await readLedger(config.ledger.path);
  t.ok(after.filter((e) => (e.missed?.count ?? 0) > 0).every((e) => e.recovered?.complete === true), 'every range is marked recovered');
  checkExactlyOnce(t, sim, config.recorder.dir, NAMES);

  out = '';
  t.equal(await run(['--config', file], { stdout: (s) => (out += s), isTTY: false, env: {} }), 0, 'a second run');
  t.match(JSON.parse(out.trim()), { done: true, ranges: 0 }, 'has nothing left to do');

  let report = '';
  t.equal(await gaps(['--config', file], { stdout: (s) => (report += s), env: {} }), 0);
  t.match(report, /Recovered over REST/, 'feedkeeper gaps shows the recovery');
  t.match(report, /, recovered\)/, 'and marks each recovered gap');
  let json = '';
  await gaps(['--config', file, '--json'], { stdout: (s) => (json += s), env: {} });
  const body = JSON.parse(json) as { recovery: { recovered: { gaps: number; messages: number }; unrecovered: { gaps: number } } };
  t.equal(body.recovery.recovered.gaps, open.length, 'JSON: recovered gaps apart');
  t.equal(body.recovery.recovered.messages, open.reduce((n, e) => n + e.missed!.count!, 0), 'JSON: recovered messages');
  t.equal(body.recovery.unrecovered.gaps, 0, 'JSON: none unrecovered');
});
