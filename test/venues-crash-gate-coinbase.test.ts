import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { readLedger } from '../src/ledger/report.js';
import { checkRun } from '../src/rehearse/check.js';
import { formatInvariant } from '../src/rehearse/invariant.js';
import { readRecording } from '../src/rehearse/recording.js';
import { startSims, writeFeedsConfig, type FeedSpec } from './helpers/feeds.js';
import { marketGoesOn, until } from './helpers/stack.js';
import { CLI, runDaemon } from './helpers/cli-daemon.js';

// The built CLI with the Gate.io and Coinbase feeds, SIGKILLed mid-flight and restarted: per venue, a
// daemon_down gap per stream, exact where the venue's IDs are contiguous (Gate trades by id_market,
// its book by U/u), a time window where they are not (Coinbase), and the recording + ledger
// invariant holds per venue.

if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });
if (!existsSync(CLI)) throw new Error(`${CLI} missing: build with npx tsc -p .`);

const SPECS: FeedSpec[] = [
  { venue: 'gate-spot', symbols: ['BTC_USDT', 'ETH_USDT'], streams: ['trades', 'order_book_update'], sim: { eventsPerSecond: 20, tickMs: 50 } },
  { venue: 'coinbase', symbols: ['BTC-USD', 'ETH-USD'], streams: ['market_trades', 'level2'], sim: { eventsPerSecond: 20, tickMs: 50 } },
];
const PER_VENUE = 4;


/** Every stream of every feed has at least `n` recorded lines. */
async function recorded(feeds: readonly Config[], n: number): Promise<boolean> {
  for (const f of feeds) {
    const counts = new Map<string, number>();
    for (const m of (await readRecording(f.recorder.dir, f.venue)).messages) counts.set(m.stream, (counts.get(m.stream) ?? 0) + 1);
    if (counts.size !== PER_VENUE || [...counts.values()].some((c) => c < n)) return false;
  }
  return true;
}

t.test('gate-spot and coinbase: SIGKILL, restart, SIGTERM: daemon_down per stream per venue, the invariant holds per venue', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-venues-crash-'));
  const sims = await startSims(SPECS);
  t.teardown(async () => {
    await Promise.all([...sims.values()].map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  const file = writeFeedsConfig(dir, SPECS, sims, { metrics: { enabled: false }, log: { level: 'warn' } });
  const config = loadConfig({ files: [file], env: {} });

  const first = runDaemon(t, file);
  t.ok(await until(() => recorded(config.feeds, 10), 15_000, 100), 'the first run records every stream of every venue');
  const killedAt = Date.now();
  first.child.kill('SIGKILL');
  t.match(await first.exited, { signal: 'SIGKILL' });
  await marketGoesOn(sims.values(), 1500);

  const restartedAt = Date.now();
  const second = runDaemon(t, file);
  const back = await until(async () => {
    const entries = await readLedger(config.ledger.path).catch(() => []);
    return entries.filter((g) => g.cause === 'daemon_down' && g.end !== null).length >= SPECS.length * PER_VENUE;
  }, 15_000, 100);
  t.ok(back, 'every stream of every venue delivers again after the restart');
  t.ok(await until(() => recorded(config.feeds, 15), 10_000, 100), 'and records a few more messages');
  second.child.kill('SIGTERM');
  t.match(await second.exited, { code: 0 }, 'SIGTERM: exit 0');

  for (const feed of config.feeds) {
    const sim = sims.get(feed.venue)!;
    const run = await checkRun(feed, sim);
    t.ok(run.invariant.ok, `${feed.venue}: ${formatInvariant(run.invariant)}`);
    const down = run.entries.filter((g) => g.cause === 'daemon_down' && g.venue === feed.venue && g.durationMs !== 0);
    t.equal(down.length, PER_VENUE, `${feed.venue}: one daemon_down gap per stream`);
    t.ok(down.every((g) => g.end !== null && g.start <= killedAt && g.end >= restartedAt), `${feed.venue}: from the last sign of life to the first message after the restart`);
    t.ok(down.every((g) => g.detail === null), `${feed.venue}: exact (no "inexact" detail)`);
    const counted = down.filter((g) => g.stream.startsWith('trades:'));
    if (feed.venue === 'coinbase') {
      t.ok(down.every((g) => g.missed === null), 'coinbase: time windows only (no per-stream ID is contiguous)');
    } else {
      t.equal(counted.length, 2, `${feed.venue}: two trade streams`);
      t.ok(counted.every((g) => g.missed !== null && g.missed.count! >= 10), `${feed.venue}: the trades sent while down are counted (${counted.map((g) => g.missed?.count).join(', ')})`);
    }
    t.same(sim.violations, [], `${feed.venue}: no limit broken`);
  }
});
