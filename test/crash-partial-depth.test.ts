import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { readLedger } from '../src/ledger/report.js';
import { readRecording } from '../src/rehearse/recording.js';
import { startSims, writeFeedsConfig, type FeedSpec } from './helpers/feeds.js';
import { until } from './helpers/stack.js';
import { CLI, runDaemon } from './helpers/cli-daemon.js';

// USD-M partial depth carries `u` where spot partial depth carries lastUpdateId. The built CLI on
// binance-usdm, SIGKILLed before its first periodic checkpoint and restarted: the recovery scan
// reads each stream's last key from the recording with the reader the router uses live, so every
// stream, partial depth included, gets its daemon_down gap. When the scan could not read `u`, the
// partial-depth streams came back with no entry at all for the time the daemon was down.

if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });
if (!existsSync(CLI)) throw new Error(`${CLI} missing: build with npx tsc -p .`);

const SPEC: FeedSpec = { venue: 'binance-usdm', symbols: ['BTCUSDT'], streams: ['aggTrade', 'depth5@100ms', 'depth20@500ms'], sim: { eventsPerSecond: 20, tickMs: 50 } };
const NAMES = ['btcusdt@aggTrade', 'btcusdt@depth5@100ms', 'btcusdt@depth20@500ms'];


t.test('binance-usdm partial depth: SIGKILL, restart: a daemon_down gap for every stream, partial depth included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-crash-partial-'));
  const sims = await startSims([SPEC]);
  t.teardown(async () => {
    await Promise.all([...sims.values()].map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  const file = writeFeedsConfig(dir, [SPEC], sims, { metrics: { enabled: false }, log: { level: 'warn' } });
  const config = loadConfig({ files: [file], env: {} });
  const feed = config.feeds[0]!;

  const recordedAll = async (n: number): Promise<boolean> => {
    const counts = new Map<string, number>();
    for (const m of (await readRecording(feed.recorder.dir, feed.venue)).messages) counts.set(m.stream, (counts.get(m.stream) ?? 0) + 1);
    return NAMES.every((s) => (counts.get(s) ?? 0) >= n);
  };
  const first = runDaemon(t, file);
  // The checkpoint the daemon writes before connecting: no stream has a key yet.
  const statePath = config.ledger.statePath;
  t.ok(await until(() => existsSync(statePath), 15_000, 20), 'the start-up checkpoint');
  const startup = readFileSync(statePath, 'utf8');
  t.same((JSON.parse(startup) as { streams: unknown }).streams, {}, 'no keys in it');
  t.ok(await until(() => recordedAll(5), 15_000, 100), 'the first run records every stream');
  first.child.kill('SIGKILL');
  t.match(await first.exited, { signal: 'SIGKILL' });
  // Killed before its first periodic checkpoint (a crash right after start): the keys are only in
  // the recording. Put the start-up checkpoint back, so that this does not depend on how fast the
  // first run recorded: the scan from its position must find every stream's key.
  writeFileSync(statePath, startup);

  const second = runDaemon(t, file);
  const closed = async (): Promise<string[]> => {
    const entries = await readLedger(config.ledger.path).catch(() => []);
    return entries.filter((g) => g.cause === 'daemon_down' && g.end !== null).map((g) => g.stream);
  };
  // The partial-depth streams deliver every 100 and 500 ms: all three gaps close within seconds,
  // or one never opened.
  const back = await until(async () => {
    const c = await closed();
    return NAMES.every((s) => c.includes(s));
  }, 15_000, 100);
  t.ok(back, `every stream gets a daemon_down gap that closes (closed: ${(await closed()).join(', ')})`);
  second.child.kill('SIGTERM');
  t.match(await second.exited, { code: 0 }, 'SIGTERM: exit 0');

  const down = (await readLedger(config.ledger.path)).filter((g) => g.cause === 'daemon_down');
  t.same(down.map((g) => g.stream).sort(), [...NAMES].sort(), 'one daemon_down gap per stream');
  t.ok(down.every((g) => g.detail === null), 'exact: the checkpoint and the recording were read');
});
