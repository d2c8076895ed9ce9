import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon.js';
import { silentLogger } from '../src/log.js';
import { restartKeys } from '../src/reload.js';
import { startSimulator } from '../src/simulator/index.js';
import { ledgerEntries, tempDir, until, writeTestConfig } from './helpers/stack.js';

// Reload (docs/operations.md, "Reload"): the config files read again; symbols and streams applied
// on the live connections; restart-only keys refused; an invalid config changes nothing.

const FAST = { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };
const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `T${String(from + i).padStart(4, '0')}USDT`);

t.test('restartKeys: symbols and streams are live, everything else needs a restart', async (t) => {
  const a = loadConfig({ files: [], env: {} });
  t.same(restartKeys(a, loadConfig({ files: [], env: { FEEDKEEPER_SYMBOLS: 'BTCUSDT', FEEDKEEPER_STREAMS: 'aggTrade' } })), []);
  t.same(restartKeys(a, loadConfig({ files: [], env: { FEEDKEEPER_RECORDER_DIR: '/tmp/x', FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION: '10' } })), ['limits.streamsPerConnection', 'recorder.dir']);
  t.same(restartKeys(a, loadConfig({ files: [], env: { FEEDKEEPER_VENUE: 'binance-usdm' } })), ['feeds']);
});

t.test('a config edit adding 50 and removing 50 of 200 symbols: applied live, untouched streams gap-free, no limit broken; invalid and restart-only edits change nothing', async (t) => {
  const dir = tempDir(t);
  const sim = await startSimulator({ eventsPerSecond: 2 });
  t.teardown(() => sim.close());
  const over = (symbols: string[], extra: Record<string, unknown> = {}) => ({ symbols, streams: ['trade'], connection: FAST, ...extra });
  const file = writeTestConfig(dir, sim, over(range(1, 200)));
  const daemon = new Daemon(loadConfig({ files: [file], env: {} }), { logger: silentLogger(), configFiles: [file], env: {} });
  t.teardown(() => daemon.stop('test over'));
  await daemon.start();
  const feed = daemon.feeds[0]!;
  const delivering = (s: string): boolean => (feed.router.stream(`${s.toLowerCase()}@trade`)?.received ?? 0) > 0;
  t.ok(await until(() => range(1, 200).every(delivering), 15_000), 'all 200 deliver');
  const connections = sim.totalConnections;

  writeTestConfig(dir, sim, over(range(51, 250)));
  const outcome = await daemon.reload('sighup');
  t.match(outcome, { result: 'applied', changes: [{ venue: 'binance-spot', symbolsAdded: 50, symbolsRemoved: 50, streamsAdded: 50, streamsRemoved: 50 }] });
  t.ok(await until(() => range(201, 250).every(delivering), 10_000), 'the 50 new symbols deliver');
  t.notOk(sim.connections().some((c) => [...c.streams].some((s) => s === 't0001usdt@trade' || s === 't0050usdt@trade')), 'the 50 removed are unsubscribed');
  t.equal(sim.totalConnections, connections, 'no connection opened or reconnected');
  t.same(sim.violations, [], 'no limit broken');

  // Invalid: nothing changes, the key is named.
  writeTestConfig(dir, sim, over(['NOT A SYMBOL']));
  const invalid = await daemon.reload('http');
  t.match(invalid, { result: 'invalid', key: 'symbols' });
  t.equal(feed.symbols.length, 200);
  t.ok(feed.symbols.includes('T0250USDT'));
  // Restart-only: refused, named, nothing changes.
  writeTestConfig(dir, sim, over(range(1, 10), { recorder: { dir: join(dir, 'elsewhere') } }));
  t.match(await daemon.reload('http'), { result: 'refused', restartKeys: ['recorder.dir'] });
  t.equal(feed.symbols.length, 200);
  // The same config again: nothing to do.
  writeTestConfig(dir, sim, over(range(51, 250)));
  t.match(await daemon.reload('http'), { result: 'unchanged' });

  await daemon.ledger.flush();
  const gaps = (await ledgerEntries(loadConfig({ files: [file], env: {} }))).filter((e) => e.cause !== 'shutdown');
  t.same(gaps.map((g) => `${g.stream} ${g.cause}`), [], 'no untouched stream saw a gap');
  const text = await daemon.metrics.registry.metrics();
  t.match(text, /feedkeeper_reloads_total\{result="applied"\} 1/);
  t.match(text, /feedkeeper_reloads_total\{result="invalid"\} 1/);
  t.match(text, /feedkeeper_reloads_total\{result="refused"\} 1/);

  // POST /admin/reload answers the same; GET is refused.
  const url = `${daemon.http!.url}/admin/reload`;
  const res = await fetch(url, { method: 'POST' });
  t.equal(res.status, 200);
  t.match(await res.json(), { result: 'unchanged' });
  const get = await fetch(url);
  t.equal(get.status, 405);
  t.equal(get.headers.get('allow'), 'POST');
});

t.test('SIGHUP to a running daemon re-reads its config: a symbol added delivers, the log says so', async (t) => {
  const dir = tempDir(t);
  const sim = await startSimulator({ eventsPerSecond: 5 });
  t.teardown(() => sim.close());
  const base = (symbols: string[]) => ({ symbols, streams: ['trade'], connection: FAST, log: { level: 'info' } });
  const file = writeTestConfig(dir, sim, base(['BTCUSDT']));
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  t.ok(await until(() => sim.connections().some((c) => c.streams.has('btcusdt@trade')), 10_000), 'running');
  writeTestConfig(dir, sim, base(['BTCUSDT', 'ETHUSDT']));
  child.kill('SIGHUP');
  t.ok(await until(() => lines.some((l) => l.event === 'config_reloaded'), 10_000), 'config_reloaded logged');
  t.match(lines.find((l) => l.event === 'config_reloaded'), { source: 'sighup', result: 'applied' });
  t.ok(lines.some((l) => l.event === 'files_reopened'), 'and the files reopened first');
  t.ok(await until(() => sim.connections().some((c) => c.streams.has('ethusdt@trade')), 10_000), 'ETHUSDT subscribed on the live connection');
  t.equal(sim.totalConnections, 1);
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0);
  const causes = readFileSync(join(dir, 'ledger.ndjson'), 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { cause: string }).cause);
  t.same(causes.filter((c) => c !== 'shutdown'), [], 'no gap but the shutdown ones');
});

t.test('a reload whose SUBSCRIBE the exchange refuses: said (reload_apply_failed), never thrown; the daemon runs on', async (t) => {
  const dir = tempDir(t);
  // The exchange takes 2 streams per connection; the daemon believes 10 fit.
  const sim = await startSimulator({ eventsPerSecond: 5, limits: { streamsPerConnection: 2 } });
  t.teardown(() => sim.close());
  const over = (symbols: string[]) => ({ symbols, streams: ['trade'], limits: { streamsPerConnection: 10 }, connection: FAST });
  const file = writeTestConfig(dir, sim, over(['BTCUSDT']));
  const lines: Array<Record<string, unknown>> = [];
  const { createLogger } = await import('../src/log.js');
  const logger = createLogger('info', { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const daemon = new Daemon(loadConfig({ files: [file], env: {} }), { logger, configFiles: [file], env: {} });
  t.teardown(() => daemon.stop('test over'));
  await daemon.start();
  t.ok(await until(() => (daemon.feeds[0]!.router.stream('btcusdt@trade')?.received ?? 0) > 0, 5000));
  writeTestConfig(dir, sim, over(['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT']));
  const outcome = await daemon.reload('sighup');
  t.match(outcome, { result: 'applied', error: /refused/ });
  t.ok(lines.some((l) => l.event === 'reload_apply_failed'), 'logged');
  t.equal(daemon.feeds[0]!.symbols.length, 4, 'the change stands');
  const res = await fetch(`${daemon.http!.url}/readyz`);
  t.ok(res.status === 200 || res.status === 503, 'the daemon answers');
  t.ok((daemon.feeds[0]!.router.stream('btcusdt@trade')?.received ?? 0) > 0);
});
