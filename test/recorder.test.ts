import t from 'tap';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { pino } from 'pino';
import type { Clock } from '../src/clock.js';
import type { Logger } from '../src/log.js';
import { createMetrics, type Metrics } from '../src/metrics/registry.js';
import { decimalLength, encodeLine, encodeStreamLine, MAX_RECV_MS } from '../src/recorder/encode.js';
import { Recorder, recordingPath, type RecorderOptions } from '../src/recorder/recorder.js';
import { streamRef } from '../src/pipeline/stream-ref.js';
import { fixtureFrames } from './helpers/fixtures.js';

/**
 * Real combined-stream frames Binance sent (spot, October 2021): recorded by the cryptofeed project,
 * sample_data, XFree86 1.1. The first 18 lines of spot-stream.ndjson plus its first aggTrade and
 * kline_1m frames.
 */
const FRAMES: string[] = [
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998512068,\"s\":\"NKNUSDT\",\"U\":499869750,\"u\":499869752,\"b\":[[\"0.35130000\",\"6195.00000000\"],[\"0.34750000\",\"5548.00000000\"],[\"0.34640000\",\"6222.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998512568,\"s\":\"NKNUSDT\",\"U\":499869753,\"u\":499869754,\"b\":[[\"0.35170000\",\"4265.00000000\"]],\"a\":[[\"0.35290000\",\"10968.00000000\"]]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998512668,\"s\":\"NKNUSDT\",\"U\":499869755,\"u\":499869757,\"b\":[[\"0.35200000\",\"1290.00000000\"],[\"0.34730000\",\"106.00000000\"],[\"0.34690000\",\"14009.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998512868,\"s\":\"NKNUSDT\",\"U\":499869758,\"u\":499869759,\"b\":[[\"0.34920000\",\"19253.00000000\"],[\"0.34810000\",\"9965.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998513068,\"s\":\"NKNUSDT\",\"U\":499869760,\"u\":499869760,\"b\":[],\"a\":[[\"0.35380000\",\"3027.00000000\"]]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998513268,\"s\":\"NKNUSDT\",\"U\":499869761,\"u\":499869764,\"b\":[[\"0.35090000\",\"59.00000000\"]],\"a\":[[\"0.35280000\",\"7231.00000000\"],[\"0.35300000\",\"6500.00000000\"]]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998513369,\"s\":\"NKNUSDT\",\"U\":499869765,\"u\":499869767,\"b\":[[\"0.35120000\",\"6567.00000000\"],[\"0.35080000\",\"8246.00000000\"]],\"a\":[[\"0.35340000\",\"0.00000000\"]]}}",
  "{\"stream\":\"nknusdt@bookTicker\",\"data\":{\"u\":499869768,\"s\":\"NKNUSDT\",\"b\":\"0.35210000\",\"B\":\"672.00000000\",\"a\":\"0.35260000\",\"A\":\"3199.00000000\"}}",
  "{\"stream\":\"nknusdt@bookTicker\",\"data\":{\"u\":499869769,\"s\":\"NKNUSDT\",\"b\":\"0.35210000\",\"B\":\"672.00000000\",\"a\":\"0.35250000\",\"A\":\"1123.00000000\"}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998513469,\"s\":\"NKNUSDT\",\"U\":499869768,\"u\":499869769,\"b\":[],\"a\":[[\"0.35250000\",\"1123.00000000\"]]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998513769,\"s\":\"NKNUSDT\",\"U\":499869770,\"u\":499869770,\"b\":[[\"0.35180000\",\"3631.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998513869,\"s\":\"NKNUSDT\",\"U\":499869771,\"u\":499869771,\"b\":[[\"0.35060000\",\"10465.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998514269,\"s\":\"NKNUSDT\",\"U\":499869772,\"u\":499869772,\"b\":[[\"0.34750000\",\"5402.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"blzeth@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998514469,\"s\":\"BLZETH\",\"U\":281916627,\"u\":281916627,\"b\":[[\"0.00006421\",\"0.00000000\"]],\"a\":[]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998514769,\"s\":\"NKNUSDT\",\"U\":499869773,\"u\":499869775,\"b\":[],\"a\":[[\"0.35330000\",\"7184.00000000\"],[\"0.35370000\",\"4531.00000000\"],[\"0.35430000\",\"0.00000000\"]]}}",
  "{\"stream\":\"nknusdt@bookTicker\",\"data\":{\"u\":499869778,\"s\":\"NKNUSDT\",\"b\":\"0.35210000\",\"B\":\"672.00000000\",\"a\":\"0.35240000\",\"A\":\"3959.00000000\"}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998515069,\"s\":\"NKNUSDT\",\"U\":499869776,\"u\":499869780,\"b\":[[\"0.35180000\",\"2928.00000000\"],[\"0.35150000\",\"4020.00000000\"],[\"0.34830000\",\"5407.00000000\"]],\"a\":[[\"0.35240000\",\"3959.00000000\"],[\"0.35330000\",\"8794.00000000\"]]}}",
  "{\"stream\":\"nknusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1633998515169,\"s\":\"NKNUSDT\",\"U\":499869781,\"u\":499869784,\"b\":[[\"0.35160000\",\"16059.00000000\"],[\"0.34700000\",\"47626.00000000\"]],\"a\":[[\"0.35370000\",\"0.00000000\"],[\"0.35480000\",\"888.00000000\"]]}}",
  "{\"stream\":\"nknusdt@aggTrade\",\"data\":{\"e\":\"aggTrade\",\"E\":1633998523963,\"s\":\"NKNUSDT\",\"a\":15683430,\"p\":\"0.35280000\",\"q\":\"58.00000000\",\"f\":19862790,\"l\":19862790,\"T\":1633998523963,\"m\":false,\"M\":true}}",
  "{\"stream\":\"nknusdt@kline_1m\",\"data\":{\"e\":\"kline\",\"E\":1633998523963,\"s\":\"NKNUSDT\",\"k\":{\"t\":1633998480000,\"T\":1633998539999,\"s\":\"NKNUSDT\",\"i\":\"1m\",\"f\":19862761,\"L\":19862790,\"o\":\"0.35270000\",\"c\":\"0.35280000\",\"h\":\"0.35280000\",\"l\":\"0.35220000\",\"v\":\"25877.00000000\",\"n\":30,\"x\":false,\"q\":\"9116.04600000\",\"V\":\"58.00000000\",\"Q\":\"20.46240000\",\"B\":\"0\"}}}"
];

const VENUE = 'binance-spot';
const H10 = Date.UTC(2021, 9, 12, 10); // 2021-10-12T10:00:00.000Z
const HOUR = 3_600_000;

interface Harness {
  rec: Recorder;
  metrics: Metrics;
  logs: Array<Record<string, unknown>>;
  clock: Clock & { at: number };
  dir: string;
}

function fakeClock(at: number): Clock & { at: number } {
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

function captureLogger(logs: Array<Record<string, unknown>>): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return pino({ level: 'debug' }, sink);
}

function harness(dir: string, opts: Partial<RecorderOptions> & { now?: number } = {}): Harness {
  const logs: Array<Record<string, unknown>> = [];
  const metrics = createMetrics({ defaultMetrics: false });
  const clock = fakeClock(opts.now ?? H10 + 5 * 60_000);
  const rec = new Recorder({
    dir,
    venue: VENUE,
    maxBufferBytes: 1 << 20,
    flushIntervalMs: 10,
    fsyncIntervalMs: 50,
    logger: captureLogger(logs),
    metrics,
    clock,
    ...opts,
  });
  return { rec, metrics, logs, clock, dir };
}

/** A frame whose data carries a sequence number, to check order and exactly-once. */
function seqFrame(i: number): Buffer {
  return Buffer.from(`{"stream":"btcusdt@trade","data":{"e":"trade","E":1633998512068,"s":"BTCUSDT","t":${i},"p":"57123.45","q":"0.001","m":true,"M":true}}`);
}

function expectedLine(frame: string, recv: number): string {
  return `{"recv":${recv},${frame.slice(1)}\n`;
}

async function lines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  if (text !== '' && !text.endsWith('\n')) throw new Error(`${path} does not end with a newline`);
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

/** Every line of every recording under `dir`, files in name (= hour) order. */
async function allLines(dir: string): Promise<string[]> {
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.ndjson')).sort();
  const out: string[] = [];
  for (const f of files) out.push(...(await lines(join(dir, f))));
  return out;
}

function seqOf(line: string): number {
  return (JSON.parse(line) as { data: { t: number } }).data.t;
}

async function counter(m: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Paths the process has open (Linux), to see that a rotated-away file was closed. */
async function openPaths(): Promise<string[]> {
  if (!existsSync('/proc/self/fd')) return [];
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    try {
      out.push(await readlink(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

t.test('recordingPath: one file per UTC hour', async (t) => {
  t.equal(recordingPath('/data', VENUE, H10), `/data/${VENUE}/2021-10-12/${VENUE}-2021-10-12T10.ndjson`);
  t.equal(recordingPath('/data', VENUE, H10 + HOUR - 1), `/data/${VENUE}/2021-10-12/${VENUE}-2021-10-12T10.ndjson`);
  t.equal(recordingPath('/data', VENUE, H10 + HOUR), `/data/${VENUE}/2021-10-12/${VENUE}-2021-10-12T11.ndjson`);
  t.equal(recordingPath('/data', VENUE, Date.UTC(2021, 11, 31, 23, 59, 59, 999)), `/data/${VENUE}/2021-12-31/${VENUE}-2021-12-31T23.ndjson`);
  t.equal(recordingPath('/data', VENUE, Date.UTC(2022, 0, 1)), `/data/${VENUE}/2022-01-01/${VENUE}-2022-01-01T00.ndjson`);
});

t.test('real frames are recorded byte for byte, one JSON line each', async (t) => {
  const frames = [...FRAMES];
  const fixture = fileURLToPath(new URL('./fixtures/binance/spot-stream.ndjson', import.meta.url));
  if (existsSync(fixture)) frames.push(...fixtureFrames('spot-stream').map((f) => f.frame));
  const h = harness(t.testdir());
  await h.rec.open();
  const recvs = frames.map((_, i) => H10 + 300_000 + i * 7);
  t.equal(frames.filter((f, i) => h.rec.write(Buffer.from(f), recvs[i]!)).length, frames.length, 'all accepted');
  await h.rec.close();
  const file = recordingPath(h.dir, VENUE, H10);
  const text = await readFile(file, 'utf8');
  t.equal(text, frames.map((f, i) => expectedLine(f, recvs[i]!)).join(''), 'exact bytes');
  const got = await lines(file);
  t.equal(got.length, frames.length);
  got.forEach((line, i) => {
    const parsed = JSON.parse(line) as { recv: number; stream: string; data: unknown };
    const orig = JSON.parse(frames[i]!) as { stream: string; data: unknown };
    if (Object.keys(parsed).join() !== 'recv,stream,data' || parsed.recv !== recvs[i] || parsed.stream !== orig.stream) t.fail(`line ${i}: ${line.slice(0, 80)}`);
    if (!isDeepStrictEqual(parsed.data, orig.data)) t.fail(`data of line ${i}`);
  });
  t.pass(`${got.length} lines parse back to recv, stream and the original data`);
  t.same(h.rec.stats, { written: frames.length, dropped: 0, bufferedBytes: 0, writeErrors: 0 });
  t.equal(await counter(h.metrics.recorderWritten), frames.length);
  t.equal(await counter(h.metrics.recorderBufferBytes), 0);
});

t.test('recvMs digits: small, 13-digit and fractional values', async (t) => {
  const h = harness(t.testdir(), { now: 0 });
  await h.rec.open();
  const f = FRAMES[7]!;
  for (const ms of [0, 7, 99_999_999, 100_000_000, 1_000_000_009]) t.ok(h.rec.write(Buffer.from(f), ms));
  await h.rec.close();
  const got = await allLines(h.dir);
  t.same(got.map((l) => (JSON.parse(l) as { recv: number }).recv), [0, 7, 99_999_999, 100_000_000, 1_000_000_009]);
  const h2 = harness(t.testdir());
  await h2.rec.open();
  t.ok(h2.rec.write(Buffer.from(f), H10 + 1.75), 'fractional ms are floored');
  await h2.rec.close();
  t.equal((await lines(recordingPath(h2.dir, VENUE, H10)))[0], expectedLine(f, H10 + 1).slice(0, -1));
});

t.test('encodeLine writes every recvMs the way JSON would', async (t) => {
  const frame = Buffer.from('{"s":1}');
  const out = Buffer.alloc(64);
  const values = [0, 1, 9, 10, 99_999_999, 100_000_000, MAX_RECV_MS, MAX_RECV_MS - 1];
  for (let k = 1; k < 16; k++) values.push(10 ** k - 1, 10 ** k, 10 ** k + 1);
  for (let i = 0; i < 20_000; i++) values.push(Math.floor(Math.random() * MAX_RECV_MS), Math.floor(Math.random() * 1e13));
  let bad = 0;
  for (const v of values) {
    const end = encodeLine(out, 3, frame, v, decimalLength(v));
    if (out.toString('latin1', 3, end) !== `{"recv":${JSON.stringify(v)},"s":1}\n` && bad++ < 5) t.fail(`recv ${v}: ${out.toString('latin1', 3, end)}`);
  }
  t.equal(bad, 0, `${values.length} values`);
  // The digits are kept for the next line with the same recvMs (a socket chunk's messages share it):
  // repeats, returns to an earlier value and a change of digit count in between all read right.
  const seq = [5, 5, 123, 123, 5, 1e13, 1e13, 1e13 - 1, 5, 0, 0, 1e12, 1e13];
  const head = Buffer.from(',"venue":"v",');
  for (const v of seq) {
    const end = encodeLine(out, 0, frame, v, decimalLength(v));
    t.equal(out.toString('latin1', 0, end), `{"recv":${v},"s":1}\n`);
    const end2 = encodeStreamLine(out, 1, head, frame, 1, false, v, decimalLength(v));
    t.equal(out.toString('latin1', 1, end2), `{"recv":${v},"venue":"v","s":1}\n`);
  }
  // The envelope prefix is kept per (time, head): lines of two venues' heads and of a wrapping
  // head (start 0, per stream) interleaved at one time, and at the next, each read with its own head.
  const other = Buffer.from(',"venue":"binance-usdm",');
  const wrap = Buffer.from(',"venue":"okx","stream":"trades:BTC-USDT","data":');
  const wide = Buffer.alloc(128);
  for (const v of [7, 7, 8, 1e12]) {
    for (const [h, start, close, want] of [
      [head, 1, false, `{"recv":${v},"venue":"v","s":1}\n`],
      [other, 1, false, `{"recv":${v},"venue":"binance-usdm","s":1}\n`],
      [wrap, 0, true, `{"recv":${v},"venue":"okx","stream":"trades:BTC-USDT","data":{"s":1}}\n`],
      [head, 1, false, `{"recv":${v},"venue":"v","s":1}\n`],
    ] as const) {
      const end = encodeStreamLine(wide, 2, h, frame, start, close, v, decimalLength(v));
      t.equal(wide.toString('latin1', 2, end), want);
    }
  }
});

t.test('an envelope venue shares one head among its streams; a wrapping venue has one per stream', async (t) => {
  const a = streamRef({ name: 'binance-spot', recordingShape: 'envelope' }, 'btcusdt@trade');
  const b = streamRef({ name: 'binance-spot', recordingShape: 'envelope' }, 'ethusdt@trade');
  const c = streamRef({ name: 'binance-usdm', recordingShape: 'envelope' }, 'btcusdt@trade');
  t.equal(a.head, b.head, 'one Buffer for the venue');
  t.not(a.head, c.head);
  t.equal(c.head.toString(), ',"venue":"binance-usdm",');
  const x = streamRef({ name: 'okx', recordingShape: 'wrap' }, 'trades:BTC-USDT');
  t.equal(x.head.toString(), ',"venue":"okx","stream":"trades:BTC-USDT","data":');
  t.same([x.start, x.close], [0, true]);
});

t.test('refused input is dropped and counted, never thrown', async (t) => {
  const h = harness(t.testdir());
  t.equal(h.rec.write(seqFrame(0), H10), false, 'before open()');
  await h.rec.open();
  for (const bad of ['', '{}', ' {"stream":"x","data":{}}', '["stream"]', '{"stream":"x","data":{"a":1']) {
    t.equal(h.rec.write(Buffer.from(bad), H10), false, `refuses ${JSON.stringify(bad)}`);
  }
  for (const ms of [Number.NaN, -1, Number.POSITIVE_INFINITY, 1e300]) t.equal(h.rec.write(seqFrame(1), ms), false, `refuses recvMs ${ms}`);
  // JSON whitespace with a raw newline (Binance sends none) still gives one line.
  t.equal(h.rec.write(Buffer.from('{"stream":"x@trade",\n"data":{"t":2}}'), H10), true);
  await h.rec.close();
  t.equal(h.rec.write(seqFrame(3), H10), false, 'after close()');
  const got = await lines(recordingPath(h.dir, VENUE, H10));
  t.same(got, [`{"recv":${H10},"stream":"x@trade", "data":{"t":2}}`]);
  t.equal(h.rec.stats.dropped, 11);
  t.equal(await counter(h.metrics.recorderDropped, { reason: 'malformed' }), 9);
  t.equal(await counter(h.metrics.recorderDropped, { reason: 'closed' }), 2);
  const warnings = h.logs.filter((l) => l.event === 'recorder_dropped').length;
  t.ok(warnings >= 1 && warnings <= 2, `drops are warned about, not logged one by one (${warnings})`);
});

t.test('hourly rotation at the boundary, previous file closed', async (t) => {
  const h = harness(t.testdir(), { now: H10 + HOUR - 1000 });
  await h.rec.open();
  const f10 = recordingPath(h.dir, VENUE, H10);
  const f11 = recordingPath(h.dir, VENUE, H10 + HOUR);
  t.ok(h.rec.write(seqFrame(1), H10 + HOUR - 1)); // 10:59:59.999
  t.same(h.rec.position(), { file: f10, offset: expectedLine(seqFrame(1).toString(), H10 + HOUR - 1).length });
  t.ok(h.rec.write(seqFrame(2), H10 + HOUR)); // 11:00:00.000
  t.same(h.rec.position(), { file: f11, offset: expectedLine(seqFrame(2).toString(), H10 + HOUR).length });
  t.ok(h.rec.write(seqFrame(3), H10 + HOUR + 1));
  await h.rec.flush();
  t.same((await lines(f10)).map(seqOf), [1]);
  t.same((await lines(f11)).map(seqOf), [2, 3]);
  t.same((await lines(f10))[0], expectedLine(seqFrame(1).toString(), H10 + HOUR - 1).slice(0, -1));
  if (existsSync('/proc/self/fd')) {
    const open = await openPaths();
    t.notOk(open.includes(f10), 'the previous hour file is closed');
    t.ok(open.includes(f11), 'the current hour file is open');
  }
  await h.rec.close();
  t.notOk((await openPaths()).includes(f11), 'closed on close()');
});

t.test('a file opened at start and never written is closed when the hour turns', async (t) => {
  const h = harness(t.testdir(), { now: H10 + HOUR - 500 });
  await h.rec.open();
  const f10 = recordingPath(h.dir, VENUE, H10);
  const f11 = recordingPath(h.dir, VENUE, H10 + HOUR);
  t.ok(h.rec.write(seqFrame(1), H10 + HOUR + 100));
  await h.rec.flush();
  await sleep(30);
  if (existsSync('/proc/self/fd')) {
    const open = await openPaths();
    t.notOk(open.includes(f10), 'the empty 10:00 file is closed');
    t.ok(open.includes(f11));
  }
  t.equal((await readFile(f10)).length, 0);
  t.same((await lines(f11)).map(seqOf), [1]);
  await h.rec.close();
  t.notOk((await openPaths()).some((p) => p.startsWith(h.dir)), 'no file left open');
});

t.test('position() and flush(): the file holds every byte before the position', async (t) => {
  const dir = t.testdir();
  const file = recordingPath(dir, VENUE, H10);
  await mkdir(join(dir, VENUE, '2021-10-12'), { recursive: true });
  const earlier = expectedLine(FRAMES[0]!, H10 + 1);
  await writeFile(file, earlier);
  const h = harness(dir);
  t.same(h.rec.position(), { file: '', offset: 0 }, 'nothing before open()');
  await h.rec.open();
  t.same(h.rec.position(), { file, offset: earlier.length }, 'appends after what is there');
  let expected = earlier;
  for (let i = 0; i < 50; i++) {
    const frame = FRAMES[i % FRAMES.length]!;
    h.rec.write(Buffer.from(frame), H10 + 1000 + i);
    expected += expectedLine(frame, H10 + 1000 + i);
    t.equal(h.rec.position().offset, Buffer.byteLength(expected));
    if (i % 10 === 9) {
      const pos = h.rec.position();
      await h.rec.flush();
      const onDisk = await readFile(file);
      t.ok(onDisk.length >= pos.offset, 'flushed up to the position');
      t.equal(onDisk.subarray(0, pos.offset).toString(), expected);
      t.equal(h.rec.stats.bufferedBytes, 0);
    }
  }
  await h.rec.close();
  t.equal((await readFile(file)).toString(), expected);
});

t.test('the flush timer writes without flush()', async (t) => {
  const h = harness(t.testdir(), { flushIntervalMs: 20 });
  await h.rec.open();
  h.rec.write(seqFrame(1), H10 + 10);
  const file = recordingPath(h.dir, VENUE, H10);
  await until('timer flush', () => existsSync(file) && h.rec.stats.written === 1);
  t.same((await lines(file)).map(seqOf), [1]);
  await h.rec.close();
});

t.test('reopen() after logrotate moved the file: new file, nothing lost', async (t) => {
  const h = harness(t.testdir());
  await h.rec.open();
  const file = recordingPath(h.dir, VENUE, H10);
  for (let i = 0; i < 10; i++) h.rec.write(seqFrame(i), H10 + 400_000 + i);
  await h.rec.flush();
  await rename(file, `${file}.1`);
  // Accepted after the move but before SIGHUP: still goes to the moved file (the open descriptor).
  for (let i = 10; i < 15; i++) h.rec.write(seqFrame(i), H10 + 400_000 + i);
  const reopening = h.rec.reopen();
  // Accepted while the reopen is in progress: belongs with whichever file position() named.
  for (let i = 15; i < 20; i++) h.rec.write(seqFrame(i), H10 + 400_000 + i);
  await reopening;
  t.same(h.rec.position(), { file, offset: h.rec.position().offset });
  const before = h.rec.position();
  for (let i = 20; i < 30; i++) h.rec.write(seqFrame(i), H10 + 400_000 + i);
  await h.rec.close();
  const old = (await lines(`${file}.1`)).map(seqOf);
  const now = (await lines(file)).map(seqOf);
  t.same([...old, ...now], Array.from({ length: 30 }, (_, i) => i), 'every message once, in order');
  t.ok(old.length >= 15, 'lines before SIGHUP stay in the moved file');
  t.same(now.slice(-10), [20, 21, 22, 23, 24, 25, 26, 27, 28, 29], 'lines after reopen in the new file');
  const newBytes = await readFile(file);
  const afterReopen = now.filter((s) => s < 20).map((s) => expectedLine(seqFrame(s).toString(), H10 + 400_000 + s)).join('');
  t.equal(before.offset, Buffer.byteLength(afterReopen), 'position after reopen counts from the new file');
  t.equal(newBytes.length, h.rec.position().offset);
  t.notOk((await openPaths()).some((p) => p.startsWith(h.dir)), 'no file left open');
});

t.test('reopen() when the file was not moved keeps appending to it', async (t) => {
  const h = harness(t.testdir());
  await h.rec.open();
  const file = recordingPath(h.dir, VENUE, H10);
  h.rec.write(seqFrame(1), H10 + 1);
  await h.rec.reopen();
  h.rec.write(seqFrame(2), H10 + 2);
  await h.rec.close();
  t.same((await lines(file)).map(seqOf), [1, 2]);
  t.equal((await readFile(file)).length, h.rec.position().offset);
});

t.test('open() repairs a torn last line', async (t) => {
  const dir = t.testdir();
  const prevFile = recordingPath(dir, VENUE, H10 - HOUR);
  const file = recordingPath(dir, VENUE, H10);
  await mkdir(join(dir, VENUE, '2021-10-12'), { recursive: true });
  const whole = expectedLine(FRAMES[0]!, H10 + 1) + expectedLine(FRAMES[1]!, H10 + 2);
  const torn = expectedLine(FRAMES[2]!, H10 + 3).slice(0, 57);
  await writeFile(file, whole + torn);
  const h = harness(dir);
  await h.rec.open();
  t.equal(await readFile(file, 'utf8'), whole, 'current hour cut after its last newline');
  const repairs = h.logs.filter((l) => l.event === 'recording_torn_line_removed');
  t.same(repairs.map((l) => [l.file, l.bytes]), [[file, 57]], 'logged with the byte count');
  t.same(h.rec.position(), { file, offset: whole.length });
  h.rec.write(Buffer.from(FRAMES[2]!), H10 + 3);
  await h.rec.close();
  t.equal(await readFile(file, 'utf8'), whole + expectedLine(FRAMES[2]!, H10 + 3));
  // Crash at 09:59, restart at 10:05: the 09:00 file, the newest one, is repaired too.
  await writeFile(prevFile, expectedLine(FRAMES[3]!, H10 - 5) + '{"recv":16339');
  await unlink(file);
  const h1 = harness(dir);
  await h1.rec.open();
  t.equal(await readFile(prevFile, 'utf8'), expectedLine(FRAMES[3]!, H10 - 5), 'newest older file repaired');
  t.ok(h1.logs.some((l) => l.file === prevFile && l.bytes === 13));
  await h1.rec.close();
  // A file made of a single torn line is emptied.
  const dir2 = t.testdir();
  const file2 = recordingPath(dir2, VENUE, H10);
  await mkdir(join(dir2, VENUE, '2021-10-12'), { recursive: true });
  await writeFile(file2, '{"recv":1633998512');
  const h2 = harness(dir2);
  await h2.rec.open();
  t.equal((await readFile(file2)).length, 0);
  await h2.rec.close();
});

t.test('disk full (/dev/full): bounded buffer, drops counted, retried, then written in order', { skip: !existsSync('/dev/full') }, async (t) => {
  const dir = t.testdir();
  const file = recordingPath(dir, VENUE, H10);
  await mkdir(join(dir, VENUE, '2021-10-12'), { recursive: true });
  await symlink('/dev/full', file);
  const maxBufferBytes = 16 * 1024;
  const h = harness(dir, { maxBufferBytes });
  await h.rec.open();
  const accepted: number[] = [];
  let refused = 0;
  let maxSeen = 0;
  for (let i = 0; i < 400; i++) {
    if (h.rec.write(seqFrame(i), H10 + 1000 + i)) accepted.push(i);
    else refused++;
    maxSeen = Math.max(maxSeen, h.rec.stats.bufferedBytes);
    if (i % 20 === 19) await sleep(5); // let the writer hit ENOSPC a few times
  }
  await until('a write error', () => h.rec.stats.writeErrors > 0);
  t.ok(maxSeen <= maxBufferBytes, `buffer stayed within ${maxBufferBytes} (max ${maxSeen})`);
  t.ok(refused > 0, `${refused} dropped`);
  t.equal(h.rec.stats.dropped, refused);
  t.equal(h.rec.stats.written, 0, 'nothing written to a full disk');
  await sleep(30); // drops reach the metric on the flush timer (10 ms here)
  t.equal(await counter(h.metrics.recorderDropped, { reason: 'buffer_full' }), refused);
  t.ok((await counter(h.metrics.recorderWriteErrors)) >= 1);
  const dropWarnings = h.logs.filter((l) => l.event === 'recorder_dropped');
  t.equal(dropWarnings.length, 1, 'one drop warning, not one per message');
  t.equal((dropWarnings[0]!.dropped as Record<string, number>).buffer_full, 1, 'the first drop is reported at once');
  const errorLogs = h.logs.filter((l) => l.event === 'recorder_write_failed');
  t.ok(errorLogs.length >= 1 && errorLogs.length <= 2, 'write errors logged, rate-limited');
  t.match(errorLogs[0], { level: 50, code: 'FK_ERR_RECORDER_WRITE', errno: 'ENOSPC', file });
  t.equal((await lstat(file)).isSymbolicLink(), true);

  // The disk recovers: everything accepted is written, in order.
  const flushed = h.rec.flush();
  await unlink(file);
  await writeFile(file, '');
  await flushed;
  t.same((await lines(file)).map(seqOf), accepted, 'accepted messages written once, in order');
  t.equal(h.rec.stats.written, accepted.length);
  t.equal(h.rec.stats.bufferedBytes, 0);
  t.equal((await readFile(file)).length, h.rec.position().offset);
  t.ok(h.logs.some((l) => l.event === 'recorder_write_recovered'));
  // And new messages are accepted again.
  t.ok(h.rec.write(seqFrame(1000), H10 + 5000));
  await h.rec.close();
  t.same((await lines(file)).map(seqOf), [...accepted, 1000]);
});

t.test('a blocked write path never grows the buffer past maxBufferBytes', { skip: !existsSync('/dev/full') }, async (t) => {
  // The hour file is /dev/full for the whole test: every write fails, nothing ever leaves memory.
  const dir = t.testdir();
  const file = recordingPath(dir, VENUE, H10);
  await mkdir(join(dir, VENUE, '2021-10-12'), { recursive: true });
  await symlink('/dev/full', file);
  const maxBufferBytes = 64 * 1024;
  const h = harness(dir, { maxBufferBytes });
  await h.rec.open();
  const big = Buffer.from(`{"stream":"x@depth","data":{"pad":"${'x'.repeat(maxBufferBytes)}"}}`);
  t.equal(h.rec.write(big, H10 + 1), false, 'a line larger than the whole buffer is dropped');
  let ok = 0;
  for (let i = 0; i < 2000; i++) {
    if (h.rec.write(seqFrame(i), H10 + 2 + i)) ok++;
    if (h.rec.stats.bufferedBytes > maxBufferBytes) t.fail('over the limit');
    if (i % 100 === 0) await sleep(1);
  }
  const line = expectedLine(seqFrame(1000).toString(), H10 + 1002).length;
  const buffered = h.rec.stats.bufferedBytes;
  t.ok(buffered <= maxBufferBytes && buffered > maxBufferBytes - line, `filled the buffer (${ok} lines, ${buffered} bytes) then dropped`);
  t.equal(h.rec.stats.dropped, 2001 - ok);
  // Let close() finish: repoint the file at a real one.
  await unlink(file);
  await h.rec.close();
  t.equal((await lines(file)).length, ok);
});

t.test('exactly once across a rotation and a reopen', async (t) => {
  const h = harness(t.testdir(), { now: H10 + HOUR - 2000 });
  await h.rec.open();
  const N = 3000;
  const f10 = recordingPath(h.dir, VENUE, H10);
  const f11 = recordingPath(h.dir, VENUE, H10 + HOUR);
  let moved = false;
  for (let i = 0; i < N; i++) {
    // 10:59:58.000 → 11:00:01.000 in 1 ms steps: crosses 11:00 at i = 2000.
    if (!h.rec.write(seqFrame(i), H10 + HOUR - 2000 + i)) t.fail(`message ${i} refused`);
    if (i === 2500) {
      await h.rec.flush();
      await rename(f11, `${f11}.1`);
      moved = true;
      await h.rec.reopen();
    }
    if (i % 250 === 0) await sleep(1);
  }
  t.ok(moved);
  await h.rec.close();
  const all = [...(await lines(f10)), ...(await lines(`${f11}.1`)), ...(await lines(f11))];
  t.same(all.map(seqOf), Array.from({ length: N }, (_, i) => i), 'each message exactly once, in order');
  for (const line of await lines(f10)) if ((JSON.parse(line) as { recv: number }).recv >= H10 + HOUR) t.fail('11:00 line in the 10:00 file');
  for (const line of await lines(f11)) if ((JSON.parse(line) as { recv: number }).recv < H10 + HOUR) t.fail('10:59 line in the 11:00 file');
  t.equal(h.rec.stats.written, N);
  t.equal(await counter(h.metrics.recorderWritten), N);
});
