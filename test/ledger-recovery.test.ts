import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { systemClock } from '../src/clock.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { Checkpointer, recoverLastSeen, venueKeyOf, type CheckpointState, type StreamSeen } from '../src/ledger/recovery.js';
import { parseRecordedLine } from '../src/recorder/line.js';
import { Recorder } from '../src/recorder/recorder.js';
import { streamRef } from '../src/pipeline/stream-ref.js';
import { binanceCoinm } from '../src/venues/binance/coinm.js';
import { binanceSpot } from '../src/venues/binance/spot.js';
import { binanceUsdm } from '../src/venues/binance/usdm.js';
import type { FrameKeys, Venue } from '../src/venues/types.js';

const VENUE = 'binance-spot';
const keyOf = venueKeyOf(binanceSpot);

/** Frames Binance really sent (shared fixtures; see conventions.md, "Seams for tests"). */
function spotFrames(): string[] {
  const candidates = [
    fileURLToPath(new URL('./fixtures/binance/spot-stream.ndjson', import.meta.url)),
    fileURLToPath(new URL('../../shared/fixtures/binance/spot-stream.ndjson', import.meta.url)),
  ];
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) throw new Error('spot-stream.ndjson fixture not found');
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { frame: string }).frame);
}

/** The file the recorder writes a message received at `ms` to (docs/recording.md). */
function hourFile(dir: string, ms: number): string {
  const iso = new Date(ms - (ms % 3_600_000)).toISOString();
  const day = iso.slice(0, 10);
  return join(dir, VENUE, day, `${VENUE}-${day}T${iso.slice(11, 13)}.ndjson`);
}

/** Appends recorded lines exactly as the recorder writes them: `{"recv":<ms>,` + frame after its `{`. */
function record(dir: string, recv: number, frame: string): { file: string; offset: number } {
  const file = hourFile(dir, recv);
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `{"recv":${recv},${frame.slice(1)}\n`);
  return { file, offset: statSync(file).size };
}

/** The last key per stream, the slow and obvious way. */
function reference(frames: Array<{ recv: number; frame: string }>, into = new Map<string, StreamSeen>()): Map<string, StreamSeen> {
  for (const { recv, frame } of frames) {
    const f = JSON.parse(frame) as { stream: string; data: unknown };
    const key = keyOf(f.stream, JSON.stringify(f.data));
    if (key !== null) into.set(f.stream, { key, recv });
  }
  return into;
}

const BOUNDARY = Date.parse('2026-07-09T07:00:00Z');

t.test('checkpoint + scan across an hourly boundary gives the exact last IDs; a torn tail is ignored', async (t) => {
  const dir = t.testdir();
  const rec = join(dir, 'rec');
  const statePath = join(dir, 'state', 'checkpoint.json');
  const frames = spotFrames().map((frame, i) => ({ recv: BOUNDARY - 20_000 + i * 100, frame }));
  t.ok(frames.some((f) => f.recv < BOUNDARY) && frames.some((f) => f.recv >= BOUNDARY), 'the fixture straddles 07:00');

  // An older hour the scan must not read: it would set solusdt@trade back to 400.
  record(rec, BOUNDARY - 7_200_000, '{"stream":"solusdt@trade","data":{"e":"trade","t":400}}');
  // Before P0 in the checkpoint's own file: must not be read either (xrpusdt@trade would go back to 700).
  record(rec, BOUNDARY - 30_000, '{"stream":"xrpusdt@trade","data":{"e":"trade","t":700}}');

  const k = 120; // the checkpoint is taken after frame 120 (before 07:00)
  let p0 = { file: '', offset: 0 };
  for (const f of frames.slice(0, k)) p0 = record(rec, f.recv, f.frame);
  t.ok(frames[k]!.recv < BOUNDARY);
  const atT0 = reference(frames.slice(0, k));
  atT0.set('solusdt@trade', { key: 500, recv: BOUNDARY - 3_000_000 });
  atT0.set('xrpusdt@trade', { key: 800, recv: BOUNDARY - 25_000 });
  const savedAt = frames[k - 1]!.recv + 5;
  await new Checkpointer({ statePath }).save({ savedAt, recording: p0, streams: Object.fromEntries(atT0), clean: false });

  for (const f of frames.slice(k)) record(rec, f.recv, f.frame);
  // The crash: half a line, with an ID far ahead.
  const tornFile = hourFile(rec, frames.at(-1)!.recv);
  appendFileSync(tornFile, `{"recv":${frames.at(-1)!.recv + 1},"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","U":999999990,"u":99999`);

  const got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  const want = reference(frames.slice(k), new Map(atT0));
  t.same(Object.fromEntries(got.streams), Object.fromEntries(want));
  t.equal(got.streams.get('solusdt@trade')!.key, 500, 'older files not read');
  t.equal(got.streams.get('xrpusdt@trade')!.key, 800, 'the checkpoint file read from P0 only');
  const lastDepth = [...frames].reverse().find((f) => f.frame.includes('"nknusdt@depth@100ms"'))!;
  t.equal(got.streams.get('nknusdt@depth@100ms')!.key, (JSON.parse(lastDepth.frame) as { data: { u: number } }).data.u, 'depth: u of the last event');
  t.equal(got.linesScanned, frames.length - k);
  t.equal(got.stoppedAt, frames.at(-1)!.recv, 'last sign of life: the last line recorded');
  t.equal(got.clean, false);
  t.equal(got.exact, true);
  t.equal(readdirSync(join(rec, VENUE, '2026-07-09')).length, 3, 'three hourly files');
});

t.test('with the real Recorder: flush, position, checkpoint, more messages, crash, recover', async (t) => {
  const dir = t.testdir();
  const rec = join(dir, 'rec');
  const statePath = join(dir, 'checkpoint.json');
  const frames = spotFrames().map((frame, i) => ({ recv: BOUNDARY - 10_000 + i * 50, frame }));
  let now = frames[0]!.recv;
  const recorder = new Recorder({
    dir: rec,
    venue: VENUE,
    maxBufferBytes: 1 << 20,
    flushIntervalMs: 10_000,
    fsyncIntervalMs: 10_000,
    logger: silentLogger(),
    metrics: createMetrics({ defaultMetrics: false }),
    clock: { ...systemClock, now: () => now },
  });
  await recorder.open();
  t.teardown(() => recorder.close());

  // The router's side of the contract: streams as of T0 and P0 = position() at T0, saved after flush().
  const seen = new Map<string, StreamSeen>();
  const k = 100;
  for (const f of frames.slice(0, k)) {
    now = f.recv;
    t.ok(recorder.write(Buffer.from(f.frame), f.recv));
    const fr = JSON.parse(f.frame) as { stream: string; data: unknown };
    const key = keyOf(fr.stream, JSON.stringify(fr.data));
    if (key !== null) seen.set(fr.stream, { key, recv: f.recv });
  }
  const state: CheckpointState = { savedAt: now, recording: recorder.position(), streams: Object.fromEntries(seen), clean: false };
  await recorder.flush();
  await new Checkpointer({ statePath }).save(state);

  for (const f of frames.slice(k)) {
    now = f.recv;
    recorder.write(Buffer.from(f.frame), f.recv);
  }
  t.ok(frames.at(-1)!.recv >= BOUNDARY, 'crossed 07:00');
  await recorder.flush(); // what the recorder wrote before the crash

  const got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.same(Object.fromEntries(got.streams), Object.fromEntries(reference(frames)));
  t.equal(got.exact, true);
  t.equal(got.linesScanned, frames.length - k);
});

// Futures partial depth carries `u` (and U, pu) where spot carries lastUpdateId: the recovery scan
// once read lastUpdateId only, so a USD-M or COIN-M partial-depth stream came back from a crash with
// no last key, and no daemon_down gap. The recording is written by the real Recorder, the frames
// have the shape the futures docs give for "Partial Book Depth Streams".
t.test('futures partial depth (u) and spot partial depth (lastUpdateId): the key the router reads live is the key recovery reads back', async (t) => {
  const cases: Array<{ venue: Venue; symbol: string; frames: (i: number) => Array<[type: string, data: string, key: number]> }> = [
    {
      venue: binanceUsdm,
      symbol: 'BTCUSDT',
      frames: (i) => [
        ['depth5', `{"e":"depthUpdate","E":${1_700_000_000_000 + i},"T":${1_700_000_000_000 + i},"s":"BTCUSDT","U":${9_000_000_000 + i * 10},"u":${9_000_000_005 + i * 10},"pu":${8_999_999_995 + i * 10},"b":[["7403.89","0.002"]],"a":[["7405.96","3.340"]]}`, 9_000_000_005 + i * 10],
        ['depth10@500ms', `{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":${500 + i},"u":${600 + i},"pu":${499 + i},"b":[],"a":[]}`, 600 + i],
        ['depth20@100ms', `{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":${70 + i},"u":${80 + i},"pu":${69 + i},"b":[],"a":[]}`, 80 + i],
        ['aggTrade', `{"e":"aggTrade","E":1,"a":${300 + i},"s":"BTCUSDT","p":"1","q":"1","f":1,"l":1,"T":1,"m":true}`, 300 + i],
      ],
    },
    {
      venue: binanceCoinm,
      symbol: 'BTCUSD_PERP',
      frames: (i) => [['depth5@100ms', `{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSD_PERP","ps":"BTCUSD","U":${40 + i},"u":${45 + i},"pu":${39 + i},"b":[],"a":[]}`, 45 + i]],
    },
    {
      venue: binanceSpot,
      symbol: 'BTCUSDT',
      frames: (i) => [['depth5@100ms', `{"lastUpdateId":${160 + i},"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}`, 160 + i]],
    },
  ];
  for (const c of cases) {
    const dir = t.testdir();
    const now = BOUNDARY + 1_000;
    const recorder = new Recorder({ dir, venue: c.venue.name, maxBufferBytes: 1 << 20, flushIntervalMs: 10_000, fsyncIntervalMs: 10_000, logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), clock: { ...systemClock, now: () => now } });
    await recorder.open();
    const live = new Map<string, StreamSeen>();
    for (let i = 0; i < 5; i++) {
      for (const [type, data, key] of c.frames(i)) {
        const name = c.venue.streamName(c.symbol, type);
        const frame = Buffer.from(`{"stream":"${name}","data":${data}}`);
        // What the router reads on the hot path: the venue's frame reader, then the stream type's key reader.
        const k: FrameKeys = { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
        t.equal(c.venue.readStream(frame, k), name);
        t.ok(c.venue.streamType(type)!.keys(frame, k), `${c.venue.name} ${type}: the live reader finds a key`);
        t.equal(k.last, key, `${c.venue.name} ${type}: live key`);
        live.set(name, { key: k.last, recv: now });
        t.ok(recorder.write(frame, now, streamRef(c.venue, name)));
      }
    }
    await recorder.close(); // then the daemon is killed: no checkpoint, the scan reads the newest file
    const got = await recoverLastSeen({ statePath: join(dir, 'no-checkpoint.json'), recorderDir: dir, venue: c.venue.name, keyOf: venueKeyOf(c.venue) });
    t.same(Object.fromEntries(got.streams), Object.fromEntries(live), `${c.venue.name}: every stream's last key recovered`);
  }
});

t.test('clean: only when the clean checkpoint is the last thing recorded', async (t) => {
  const dir = t.testdir();
  const rec = join(dir, 'rec');
  const statePath = join(dir, 'cp.json');
  const p0 = record(rec, BOUNDARY, '{"stream":"btcusdt@trade","data":{"e":"trade","t":10}}');
  const cp = new Checkpointer({ statePath });
  await cp.save({ savedAt: BOUNDARY + 100, recording: p0, streams: { 'btcusdt@trade': { key: 10, recv: BOUNDARY } }, clean: true });
  let got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.equal(got.clean, true);
  t.equal(got.stoppedAt, BOUNDARY + 100);
  t.equal(got.streams.get('btcusdt@trade')!.key, 10);

  // A later run recorded more and died before its first checkpoint.
  record(rec, BOUNDARY + 60_000, '{"stream":"btcusdt@trade","data":{"e":"trade","t":11}}');
  got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.equal(got.clean, false);
  t.equal(got.stoppedAt, BOUNDARY + 60_000);
  t.equal(got.streams.get('btcusdt@trade')!.key, 11);
});

t.test('inexact cases are flagged: no checkpoint, missing file, file shorter than the offset', async (t) => {
  const dir = t.testdir();
  const rec = join(dir, 'rec');
  const statePath = join(dir, 'cp.json');
  let got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.same(got, { streams: new Map(), clean: false, stoppedAt: null, exact: true, linesScanned: 0 }, 'first run ever');

  record(rec, BOUNDARY - 3_600_000, '{"stream":"btcusdt@trade","data":{"e":"trade","t":1}}');
  record(rec, BOUNDARY, '{"stream":"btcusdt@trade","data":{"e":"trade","t":2}}');
  got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.equal(got.exact, false, 'no checkpoint: newest file only');
  t.equal(got.streams.get('btcusdt@trade')!.key, 2);

  const cp = new Checkpointer({ statePath });
  await cp.save({
    savedAt: BOUNDARY - 7_200_000,
    recording: { file: hourFile(rec, BOUNDARY - 7_200_000), offset: 10 },
    streams: { 'btcusdt@trade': { key: 0, recv: BOUNDARY - 7_200_000 } },
    clean: false,
  });
  got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.equal(got.exact, false, "the checkpoint's file is gone");
  t.equal(got.streams.get('btcusdt@trade')!.key, 2, 'later files still scanned');

  await cp.save({ savedAt: BOUNDARY, recording: { file: hourFile(rec, BOUNDARY), offset: 1_000_000 }, streams: {}, clean: false });
  got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.equal(got.exact, false, 'file shorter than the offset');

  await cp.save({ savedAt: BOUNDARY, recording: null, streams: { 'btcusdt@trade': { key: 7, recv: 1 } }, clean: false });
  got = await recoverLastSeen({ statePath, recorderDir: rec, venue: VENUE, keyOf });
  t.equal(got.exact, false, 'no recorder');
  t.equal(got.streams.get('btcusdt@trade')!.key, 7);
});

t.test('Checkpointer: atomic replace, saves in call order, bad files ignored, failures reject', async (t) => {
  const dir = t.testdir();
  const statePath = join(dir, 'sub', 'cp.json');
  const cp = new Checkpointer({ statePath });
  t.equal(await cp.load(), null, 'none yet');
  const s = (n: number): CheckpointState => ({ savedAt: n, recording: { file: 'f', offset: n }, streams: { 'a@trade': { key: n, recv: n } }, clean: false });
  await Promise.all([cp.save(s(1)), cp.save(s(2)), cp.save(s(3))]);
  t.same(await cp.load(), s(3), 'the last call wins');
  t.same(readdirSync(join(dir, 'sub')), ['cp.json'], 'no temporary file left');

  writeFileSync(statePath, '{"v":1,"savedAt":');
  t.equal(await cp.load(), null, 'torn or garbage');
  writeFileSync(statePath, JSON.stringify({ v: 1, savedAt: 1, recording: null, streams: { x: { key: 'a', recv: 1 } }, clean: false }));
  t.equal(await cp.load(), null, 'wrong shape');

  const blocked = t.testdir({ file: 'x' });
  await t.rejects(new Checkpointer({ statePath: join(blocked, 'file', 'cp.json') }).save(s(1)), { code: 'FK_ERR_LEDGER_WRITE' });
});

t.test('parseRecordedLine: fast path and JSON fallback', async (t) => {
  t.same(parseRecordedLine('{"recv":1783580400123,"stream":"btcusdt@trade","data":{"e":"trade","t":5}}'), {
    recv: 1783580400123,
    venue: null,
    stream: 'btcusdt@trade',
    data: '{"e":"trade","t":5}',
  });
  t.same(parseRecordedLine('{"recv":1783580400123,"venue":"okx","stream":"trades:BTC-USDT","data":{"arg":{}}}'), {
    recv: 1783580400123,
    venue: 'okx',
    stream: 'trades:BTC-USDT',
    data: '{"arg":{}}',
  });
  t.same(parseRecordedLine('{ "recv": 5, "stream": "a@trade", "data": {"t": 1} }'), { recv: 5, venue: null, stream: 'a@trade', data: '{"t":1}' });
  t.equal(parseRecordedLine('{"recv":5,"stream":"a@trade","data":{"t":'), null);
  t.equal(parseRecordedLine('{"recv":"x"}'), null);
  t.equal(keyOf('!serverShutdown', '{"e":"serverShutdown","E":1}'), null);
  t.equal(keyOf('btcusdt@depth@100ms', '{"U":5,"u":9}'), 9);
});
