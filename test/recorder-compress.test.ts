import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Clock } from '../src/clock.js';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { Checkpointer, recoverLastSeen, venueKeyOf } from '../src/ledger/recovery.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { listRecordings, parseRecordingName, periodProblem, recordingPath } from '../src/recorder/files.js';
import { Recorder } from '../src/recorder/recorder.js';
import { readPeriodLines } from '../src/recorder/read.js';
import { readRecording } from '../src/rehearse/recording.js';
import { getVenue } from '../src/venues/index.js';

const VENUE = 'binance-spot';
const H10 = Date.UTC(2021, 9, 12, 10);
const CLI = 'dist/src/cli/main.js';

/** A clock whose time the test sets; real timers. */
function manualClock(at: number): Clock & { at: number } {
  return {
    at,
    now() {
      return this.at;
    },
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (timer) => {
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

function frame(i: number): Buffer {
  return Buffer.from(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1633998512068,"s":"BTCUSDT","t":${i},"p":"57123.45","q":"0.001","m":true,"M":true}}`);
}

function line(i: number, recv: number): string {
  return `{"recv":${recv},${frame(i).toString().slice(1)}\n`;
}

function recorder(dir: string, clock: Clock, over: Partial<ConstructorParameters<typeof Recorder>[0]> = {}): { rec: Recorder; metrics: ReturnType<typeof createMetrics> } {
  const metrics = createMetrics({ defaultMetrics: false });
  const rec = new Recorder({ dir, venue: VENUE, maxBufferBytes: 1 << 20, flushIntervalMs: 10, fsyncIntervalMs: 50, logger: silentLogger(), metrics, clock, compress: 'gzip', ...over });
  return { rec, metrics };
}

async function counter(metrics: ReturnType<typeof createMetrics>, name: string): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

function zcat(path: string): string {
  const r = spawnSync('zcat', [path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`zcat ${path}: ${r.stderr}`);
  return r.stdout;
}

t.test('layout: periods, names that sort by time, one parser for .ndjson, .gz and .gz.tmp', async (t) => {
  const at = H10 + 5 * 60_000 + 7_000 + 123; // 10:05:07.123
  t.equal(recordingPath('/r', VENUE, at), '/r/binance-spot/2021-10-12/binance-spot-2021-10-12T10.ndjson', 'hourly: the names of earlier versions');
  t.equal(recordingPath('/r', VENUE, at, 60_000), '/r/binance-spot/2021-10-12/binance-spot-2021-10-12T1005.ndjson');
  t.equal(recordingPath('/r', VENUE, at, 1000), '/r/binance-spot/2021-10-12/binance-spot-2021-10-12T100507.ndjson');
  t.equal(recordingPath('/r', VENUE, H10, 1000), '/r/binance-spot/2021-10-12/binance-spot-2021-10-12T10.ndjson', 'trailing zero groups dropped');
  t.equal(recordingPath('/r', VENUE, at, 86_400_000), '/r/binance-spot/2021-10-12/binance-spot-2021-10-12T00.ndjson');
  // Mixed periods still sort by time as names.
  const times = [H10 - 1000, H10, H10 + 1000, H10 + 59_000, H10 + 60_000, H10 + 61_000, H10 + 3_600_000];
  const names = times.map((ms) => recordingPath('/r', VENUE, ms, 1000).split('/').pop()!);
  t.same([...names].sort(), names, 'names sort by time');
  t.same(names.map((n) => parseRecordingName(n)!.startMs), times, 'and parse back to their start');
  t.same(parseRecordingName('binance-spot-2021-10-12T10.ndjson.gz'), { venue: VENUE, key: '2021-10-12T10', startMs: H10, kind: 'gz' });
  t.equal(parseRecordingName('binance-spot-2021-10-12T10.ndjson.gz.tmp')!.kind, 'tmp');
  t.equal(parseRecordingName('binance-spot-2021-10-12T10.json'), null);
  for (const ok of [1000, 2000, 60_000, 600_000, 3_600_000, 86_400_000]) t.equal(periodProblem(ok), null, `${ok} is a period`);
  for (const bad of [0, 999, 1500, 7000, 86_400_001, 172_800_000, Number.NaN]) t.ok(periodProblem(bad), `${bad} is not`);
});

t.test('config: recorder.rotateEveryMs, compress, compressLevel; a bad value names its key (exit 2)', async (t) => {
  const dir = t.testdir();
  const file = (over: unknown): string => {
    const p = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(p, JSON.stringify({ recorder: over, log: { level: 'silent' } }));
    return p;
  };
  const d = loadConfig({ files: [file({})], env: {} });
  t.same([d.recorder.rotateEveryMs, d.recorder.compress, d.recorder.compressLevel], [3_600_000, 'gzip', 6], 'defaults: hourly, gzip, level 6');
  t.equal(loadConfig({ files: [file({})], env: { FEEDKEEPER_RECORDER_COMPRESS: 'none', FEEDKEEPER_RECORDER_ROTATE_EVERY_MS: '60000' } }).recorder.compress, 'none');
  for (const [over, key] of [
    [{ rotateEveryMs: 1500 }, 'recorder.rotateEveryMs'],
    [{ rotateEveryMs: '1h' }, 'recorder.rotateEveryMs'],
    [{ compress: 'zstd' }, 'recorder.compress'],
    [{ compressLevel: 10 }, 'recorder.compressLevel'],
  ] as const) {
    let err: unknown = null;
    try {
      loadConfig({ files: [file(over)], env: {} });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError && err.message.includes(key), `${JSON.stringify(over)}: ${key} (${String(err)})`);
  }
  if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });
  const r = spawnSync(process.execPath, [CLI, 'plan', '--config', file({ rotateEveryMs: 7000 })], { encoding: 'utf8' });
  t.equal(r.status, 2, 'exit 2');
  t.match(r.stderr, /recorder\.rotateEveryMs/, 'names the key');
});

t.test('a closed hour file is gzipped at once, the current one never; zcat and every reader see the same lines', async (t) => {
  const dir = t.testdir();
  const clock = manualClock(H10 + 59 * 60_000 + 59_000); // 10:59:59
  const { rec, metrics } = recorder(dir, clock);
  await rec.open();
  const expected: string[] = [];
  for (let i = 1; i <= 200; i++) {
    const recv = clock.at + i; // 10:59:59.001 .. 10:59:59.200
    rec.write(frame(i), recv);
    expected.push(line(i, recv));
  }
  await rec.flush();
  const h10 = recordingPath(dir, VENUE, H10);
  const checkpoint = rec.position();
  t.equal(checkpoint.file, h10);
  await rec.compressor!.idle();
  t.ok(existsSync(h10) && !existsSync(`${h10}.gz`), 'the file being written is not compressed');

  clock.at = H10 + 3_600_000 + 50; // 11:00:00.050
  for (let i = 201; i <= 210; i++) {
    rec.write(frame(i), clock.at);
    expected.push(line(i, clock.at));
  }
  await rec.flush(); // the writer moved to T11 and closed T10
  const at = Date.now();
  await t.resolves(async () => {
    for (;;) {
      if (existsSync(`${h10}.gz`)) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  await rec.compressor!.idle();
  t.ok(Date.now() - at < 60_000, `compressed ${Date.now() - at} ms after the writer left it (well within a minute)`);
  t.notOk(existsSync(h10), 'the original is gone');
  t.notOk(existsSync(`${h10}.gz.tmp`), 'no temporary file left');
  const h11 = recordingPath(dir, VENUE, H10 + 3_600_000);
  t.ok(existsSync(h11) && !existsSync(`${h11}.gz`), 'the current hour stays plain');
  t.equal(zcat(`${h10}.gz`), expected.slice(0, 200).join(''), 'zcat gives the exact bytes');
  for (const l of zcat(`${h10}.gz`).trim().split('\n')) JSON.parse(l); // jq-able: one JSON object per line
  t.equal(await counter(metrics, 'feedkeeper_recorder_compressed_files_total'), 1);
  t.equal(await counter(metrics, 'feedkeeper_recorder_compress_in_bytes_total'), Buffer.byteLength(expected.slice(0, 200).join('')));
  t.ok((await counter(metrics, 'feedkeeper_recorder_compress_out_bytes_total')) < (await counter(metrics, 'feedkeeper_recorder_compress_in_bytes_total')) / 4, 'smaller');

  // Readers: the rehearsal check's, and crash recovery from a checkpoint inside the compressed file.
  const { messages, skipped } = await readRecording(dir, VENUE);
  t.equal(skipped, 0);
  t.same(messages.map((m) => m.data.t), expected.map((_, i) => i + 1), 'readRecording: every line once, in order');
  const statePath = join(dir, 'state.json');
  await new Checkpointer({ statePath }).save({ savedAt: checkpoint.offset, recording: { file: checkpoint.file, offset: Buffer.byteLength(expected.slice(0, 150).join('')) }, streams: { 'btcusdt@trade': { key: 150, recv: 1 } }, clean: false });
  const got = await recoverLastSeen({ statePath, recorderDir: dir, venue: VENUE, keyOf: venueKeyOf(getVenue(VENUE)!) });
  t.equal(got.exact, true, 'exact: the offset of the .ndjson holds in its .gz');
  t.equal(got.linesScanned, 60, 'scanned from the checkpoint offset: 50 lines of T10.gz and 10 of T11');
  t.equal(got.streams.get('btcusdt@trade')?.key, 210);
  await rec.close();
  t.ok(existsSync(h11) && !existsSync(`${h11}.gz`), 'close does not compress the current file (the next run continues it)');
});

/** Files of a past period in `dir`, as a crash at each step of a compression leaves them. */
async function pastPeriod(dir: string, n: number): Promise<{ path: string; text: string }> {
  const path = recordingPath(dir, VENUE, H10);
  await mkdir(dirname(path), { recursive: true });
  let text = '';
  for (let i = 1; i <= n; i++) text += line(i, H10 + i);
  await writeFile(path, text);
  return { path, text };
}

t.test('SIGKILL at each step of a compression: readers see every line once, the next start finishes the job', async (t) => {
  const steps = ['tmp partial', 'tmp whole, not renamed', 'renamed, original not unlinked', 'done'] as const;
  for (const step of steps) {
    const dir = t.testdir();
    const { path, text } = await pastPeriod(dir, 500);
    const gz = gzipSync(text);
    if (step === 'tmp partial') await writeFile(`${path}.gz.tmp`, gz.subarray(0, gz.length >> 1));
    if (step === 'tmp whole, not renamed') await writeFile(`${path}.gz.tmp`, gz);
    if (step === 'renamed, original not unlinked' || step === 'done') await writeFile(`${path}.gz`, gz);
    if (step === 'done') await unlink(path);

    const before = await readRecording(join(dir), VENUE);
    t.same(before.messages.map((m) => m.data.t), Array.from({ length: 500 }, (_, i) => i + 1), `${step}: a reader after the kill sees every line once`);
    const clock = manualClock(H10 + 2 * 3_600_000);
    const { rec } = recorder(dir, clock);
    await rec.open();
    await rec.compressor!.idle();
    await rec.close();
    const names = readdirSync(dirname(path)).sort();
    t.same(names, ['binance-spot-2021-10-12T10.ndjson.gz', 'binance-spot-2021-10-12T12.ndjson'], `${step}: after the restart: the .gz alone (no .tmp, no original)`);
    t.equal(gunzipSync(readFileSync(`${path}.gz`)).toString(), text, `${step}: and it holds every byte`);
  }
});

t.test('the clock stepped back into a compressed period: both files read, then appended as a second gzip member', async (t) => {
  const dir = t.testdir();
  const { path, text } = await pastPeriod(dir, 100);
  await writeFile(`${path}.gz`, gzipSync(text));
  let later = '';
  for (let i = 101; i <= 120; i++) later += line(i, H10 + 1000 + i);
  await writeFile(path, later);
  const ids = Array.from({ length: 120 }, (_, i) => i + 1);
  t.same((await readRecording(dir, VENUE)).messages.map((m) => m.data.t), ids, 'a reader reads the .gz, then the newer lines');
  const clock = manualClock(H10 + 2 * 3_600_000);
  const { rec } = recorder(dir, clock);
  await rec.open();
  await rec.compressor!.idle();
  await rec.close();
  t.notOk(existsSync(path), 'the newer lines went into the .gz');
  t.equal(zcat(`${path}.gz`), text + later, 'zcat reads both members as one file');
  t.same((await readRecording(dir, VENUE)).messages.map((m) => m.data.t), ids, 'each line once');
});

t.test('recorder.compress "none": nothing compressed; a .tmp is never read', async (t) => {
  const dir = t.testdir();
  const { path, text } = await pastPeriod(dir, 10);
  const clock = manualClock(H10 + 2 * 3_600_000);
  const { rec } = recorder(dir, clock, { compress: 'none' });
  t.equal(rec.compressor, null);
  await rec.open();
  await rec.close();
  t.equal(readFileSync(path, 'utf8'), text);
  await writeFile(`${path}.gz.tmp`, 'half');
  const [f] = await listRecordings(dir, VENUE);
  const seen: string[] = [];
  await readPeriodLines(f!, 0, (l) => seen.push(l));
  t.equal(seen.length, 10, 'the plain file only');
});

t.test('one compression at a time in the process, whatever the number of feeds; stop() does not wait for another feed', async (t) => {
  const dir = t.testdir();
  const venues = ['binance-spot', 'okx'];
  const paths: string[] = [];
  let big = '';
  for (let i = 1; big.length < 6 << 20; i++) big += `{"recv":${H10 + i},"venue":"x","stream":"s","data":{"t":${i},"p":"${(Math.random() * 1e5).toFixed(2)}"}}\n`;
  for (const v of venues) {
    const p = recordingPath(dir, v, H10);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, big);
    paths.push(p);
  }
  const { Compressor } = await import('../src/recorder/compress.js');
  const make = (venue: string): InstanceType<typeof Compressor> =>
    new Compressor({ dir, venue, periodMs: 3_600_000, level: 9, busy: () => false, logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }) });
  const [a, b] = venues.map(make) as [InstanceType<typeof Compressor>, InstanceType<typeof Compressor>];
  let both = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      if (paths.every((p) => existsSync(`${p}.gz.tmp`))) both++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  a.start();
  b.start();
  await until(() => paths.some((p) => existsSync(`${p}.gz.tmp`)));
  const waiting = paths.findIndex((p) => !existsSync(`${p}.gz.tmp`));
  const t0 = Date.now();
  await [a, b][waiting]!.stop(); // the one waiting for the slot
  t.ok(Date.now() - t0 < 500, `stop() of the waiting one returned at once (${Date.now() - t0} ms)`);
  await [a, b][1 - waiting]!.idle();
  polling = false;
  await poll;
  t.equal(both, 0, 'never two .gz.tmp at once');
  t.ok(existsSync(`${paths[1 - waiting]}.gz`), 'the running one finished');
  t.ok(existsSync(paths[waiting]!) && !existsSync(`${paths[waiting]}.gz`), 'the stopped one left its file as it was');
  await [a, b][1 - waiting]!.stop();
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}
