import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { readLedger } from '../src/ledger/report.js';
import { listRecordings } from '../src/recorder/files.js';
import { checkRun } from '../src/rehearse/check.js';
import { formatInvariant } from '../src/rehearse/invariant.js';
import { readRecording } from '../src/rehearse/recording.js';
import { startSimulator } from '../src/simulator/index.js';
import { marketGoesOn, tempDir, testConfig, until } from './helpers/stack.js';
import { CLI, runDaemon } from './helpers/cli-daemon.js';

// The built daemon, recording into 1 s files that it gzips as they close, SIGKILLed while a
// compression is under way (its .gz.tmp on disk), then restarted: the compressed file is redone and
// whole, nothing is read twice, and recording + ledger satisfy the invariant (recorded + missed = sent).

if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });
if (!existsSync(CLI)) throw new Error(`${CLI} missing: build with npx tsc -p .`);

const VENUE = 'binance-spot';
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
const STREAMS = ['trade', 'aggTrade', 'depth@100ms'];
const N = SYMBOLS.length * STREAMS.length;


/** A past hour's file of realistic trade lines (a stream nobody subscribes to), big enough to take a while at level 9. */
function seedText(bytes: number): { text: string; lines: number } {
  const t0 = Date.UTC(2021, 9, 12, 10);
  const parts: string[] = [];
  let size = 0;
  let i = 0;
  let price = 57_000;
  while (size < bytes) {
    i++;
    price += Math.round((Math.random() - 0.5) * 200) / 100;
    const l = `{"recv":${t0 + i},"venue":"${VENUE}","stream":"seedusdt@trade","data":{"e":"trade","E":${t0 + i - 3},"s":"SEEDUSDT","t":${1_000_000_000 + i},"p":"${price.toFixed(2)}","q":"${(Math.random() * 2).toFixed(5)}","T":${t0 + i - 4},"m":${Math.random() < 0.5},"M":true}}\n`;
    parts.push(l);
    size += l.length;
  }
  return { text: parts.join(''), lines: i };
}

t.test('SIGKILL while a closed file is being gzipped: restart redoes it; data and invariant whole', async (t) => {
  const sim = await startSimulator({ eventsPerSecond: 20, tickMs: 50 });
  t.teardown(() => sim.close());
  const dir = tempDir(t);
  const config = testConfig(dir, sim, {
    symbols: SYMBOLS,
    streams: STREAMS,
    metrics: { enabled: false },
    log: { level: 'warn' },
    recorder: { rotateEveryMs: 1000, compress: 'gzip', compressLevel: 9 },
  });
  const file = join(dir, 'config.json');
  const rec = config.recorder.dir;
  const gzFiles = (): string[] =>
    readdirSync(join(rec, VENUE), { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.ndjson.gz'));

  const first = runDaemon(t, file);
  t.ok(
    await until(async () => {
      const counts = new Map<string, number>();
      for (const m of (await readRecording(rec, VENUE)).messages) counts.set(m.stream, (counts.get(m.stream) ?? 0) + 1);
      return counts.size === N && [...counts.values()].every((c) => c >= 10) && gzFiles().length >= 2;
    }, 15_000, 100),
    'the first run records every stream, and its 1 s files are gzipped as they close',
  );

  // A big closed file appears (moved in whole): the next sweep compresses it. Kill once its .gz.tmp is there.
  const seed = seedText(16 << 20);
  const seedDay = join(rec, VENUE, '2021-10-12');
  const seedPath = join(seedDay, `${VENUE}-2021-10-12T10.ndjson`);
  mkdirSync(seedDay, { recursive: true });
  writeFileSync(join(dir, 'seed.tmp'), seed.text);
  renameSync(join(dir, 'seed.tmp'), seedPath);
  const tmpBytes = (): number => {
    try {
      return statSync(`${seedPath}.gz.tmp`).size;
    } catch {
      return 0;
    }
  };
  t.ok(await until(() => tmpBytes() > 0, 10_000, 2), 'the compression of the big file is under way');
  first.child.kill('SIGKILL');
  t.match(await first.exited, { signal: 'SIGKILL' });
  const tmpSize = tmpBytes();
  t.ok(existsSync(seedPath) && !existsSync(`${seedPath}.gz`), `killed mid-compression: the original is whole, a half .gz.tmp (${tmpSize} bytes) and no .gz`);

  // A reader between the crash and the restart: the half file is never taken for a whole one.
  const after = await readRecording(rec, VENUE);
  t.equal(after.messages.filter((m) => m.stream === 'seedusdt@trade').length, seed.lines, 'every seeded line once');

  await marketGoesOn(sim, 1500);
  const second = runDaemon(t, file);
  t.ok(
    await until(async () => {
      const down = (await readLedger(config.ledger.path).catch(() => [])).filter((g) => g.cause === 'daemon_down' && g.end !== null);
      return new Set(down.map((g) => g.stream)).size === N && existsSync(`${seedPath}.gz`) && !existsSync(seedPath);
    }, 30_000, 100),
    'after the restart: every stream back (daemon_down closed), the big file compressed again',
  );
  const gz = gzFiles().length;
  t.ok(await until(() => gzFiles().length >= gz + 1, 10_000, 100), 'the next 1 s file closes and is gzipped');
  second.child.kill('SIGTERM');
  t.equal((await second.exited).code, 0, 'SIGTERM: exit 0');

  t.notOk(existsSync(`${seedPath}.gz.tmp`), 'the half .gz.tmp is gone');
  t.equal(gunzipSync(readFileSync(`${seedPath}.gz`)).toString(), seed.text, 'the redone .gz holds every byte of the original');
  const files = await listRecordings(rec, VENUE);
  t.same(files.filter((f) => f.tmp), [], 'no .gz.tmp anywhere');
  const live = files.filter((f) => f.key !== '2021-10-12T10');
  t.ok(live.slice(0, -1).every((f) => f.gz && !f.plain), `every closed 1 s file is gzipped (${live.length} files), only the last is plain`);

  const run = await checkRun(config, sim);
  t.ok(run.invariant.ok, formatInvariant(run.invariant));
  t.equal(run.invariant.streams.length, N, 'checked: trade, aggTrade and depth of 3 symbols');
  const down = run.entries.filter((g) => g.cause === 'daemon_down');
  t.equal(down.length, N, 'one daemon_down gap per stream');
  t.ok(down.every((g) => g.detail === null), 'exact: recovery read the checkpoint position through the compressed files');
  t.equal(run.skippedLines <= 1, true, `at most the line torn by the kill skipped (${run.skippedLines})`);
});
