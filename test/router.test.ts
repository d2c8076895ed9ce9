import t from 'tap';
import { StreamRouter, type GapSink, type Missed, type SessionRef, type GapCause } from '../src/pipeline/stream-router.js';
import { createMetrics } from '../src/metrics/registry.js';
import { silentLogger } from '../src/log.js';
import { getVenue } from '../src/venues/index.js';
import type { StreamType } from '../src/venues/types.js';

/** A ledger that keeps its entries in memory: the router's contract, observed. */
class MemoryGaps implements GapSink {
  entries = new Map<string, { stream: string; cause: GapCause; start: number; end: number | null; missed: Missed | null; code: number | null }>();
  private n = 0;
  maintenance = false;
  openGap(e: { stream: string; start: number; cause: GapCause; code?: number | null }): string {
    const id = `g${++this.n}`;
    this.entries.set(id, { stream: e.stream, cause: e.cause, start: e.start, end: null, missed: null, code: e.code ?? null });
    return id;
  }
  closeGap(id: string, e: { end: number; missed: Missed | null }): void {
    const g = this.entries.get(id)!;
    g.end = e.end;
    g.missed = e.missed;
  }
  instant(e: { stream: string; at: number; cause: GapCause; missed: Missed | null }): string {
    const id = this.openGap({ stream: e.stream, start: e.at, cause: e.cause });
    this.closeGap(id, { end: e.at, missed: e.missed });
    return id;
  }
  inMaintenance(): boolean {
    return this.maintenance;
  }
  list() {
    return [...this.entries.values()];
  }
}

class MemoryRecorder {
  lines: string[] = [];
  full = false;
  write(frame: Buffer): boolean {
    if (this.full) return false;
    this.lines.push(frame.toString());
    return true;
  }
}

let seq = 0;
function session(connectionId: string): SessionRef & { alive: boolean } {
  return { id: `${connectionId}#${++seq}`, connectionId, alive: true, seq };
}

const spot = getVenue('binance-spot')!;
const usdm = getVenue('binance-usdm')!;
function setup(venue = spot, names = ['btcusdt@trade', 'btcusdt@bookTicker', 'btcusdt@depth@100ms']) {
  const streams = new Map<string, StreamType>(names.map((n) => [n, venue.streamType(n.slice(n.indexOf('@') + 1))!]));
  const gaps = new MemoryGaps();
  const recorder = new MemoryRecorder();
  const metrics = createMetrics({ defaultMetrics: false });
  const router = new StreamRouter({ venue, streams, gaps, recorder, metrics, logger: silentLogger() });
  return { router, gaps, recorder, metrics };
}
const trade = (t: number) => Buffer.from(`{"stream":"btcusdt@trade","data":{"e":"trade","E":${1700000000000 + t},"s":"BTCUSDT","t":${t},"p":"1","q":"1","T":1,"m":true,"M":true}}`);
const book = (u: number) => Buffer.from(`{"stream":"btcusdt@bookTicker","data":{"u":${u},"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}`);
const depth = (U: number, u: number) => Buffer.from(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":${U},"u":${u},"b":[],"a":[]}}`);
const ids = (lines: string[], key = 't') => lines.filter((l) => l.includes('@trade')).map((l) => (JSON.parse(l) as { data: Record<string, number> }).data[key]);

t.test('a live sequence skip is a `sequence` gap with the exact range; bookTicker jumps are not', async (t) => {
  const { router, gaps, recorder } = setup();
  const s = session('c0');
  for (const id of [100, 101, 102, 106, 107]) router.route(s, trade(id), 1000 + id);
  for (const u of [5, 90, 4000]) router.route(s, book(u), 1000);
  router.route(s, depth(10, 12), 1);
  router.route(s, depth(13, 20), 2);
  router.route(s, depth(25, 30), 3);
  const list = gaps.list();
  t.equal(list.length, 2);
  t.same(list[0], { stream: 'btcusdt@trade', cause: 'sequence', start: 1106, end: 1106, missed: { field: 't', from: 103, to: 105, count: 3 }, code: null });
  t.same(list[1]!.missed, { field: 'U/u', from: 21, to: 24, count: null });
  t.equal(recorder.lines.length, 5 + 3 + 3);
});

t.test('a switch-over with overlap loses nothing and doubles nothing', async (t) => {
  const { router, gaps, recorder, metrics } = setup();
  const old = session('c0');
  const next = session('c0');
  for (let id = 1; id <= 10; id++) router.route(old, trade(id), id);
  // The replacement comes up slightly behind the old one, then both deliver the same broadcast.
  for (let id = 8; id <= 15; id++) {
    router.route(next, trade(id), 100 + id);
    router.route(old, trade(id + 3 <= 13 ? id + 3 : 13), 100 + id);
  }
  t.equal(router.stream('btcusdt@trade')!.owner, next.id, 'the replacement owns the stream');
  old.alive = false;
  router.sessionClosed(old, 200, { planned: true, cause: 'switchover' });
  for (let id = 16; id <= 20; id++) router.route(next, trade(id), 300 + id);
  t.same(ids(recorder.lines), Array.from({ length: 20 }, (_, i) => i + 1), 'every ID exactly once, in order');
  t.equal(gaps.list().length, 0, 'no gap');
  t.ok((await metrics.messagesDuplicate.get()).values[0]!.value > 0, 'duplicates counted');
});

t.test('released(): resolves when the last stream is handed over, not before; at once when nothing is held', async (t) => {
  const { router } = setup();
  const old = session('c0');
  const next = session('c0');
  const names = ['btcusdt@trade', 'btcusdt@bookTicker', 'btcusdt@depth@100ms'];
  await router.released(old, names);
  t.pass('nothing owned: resolved at once');
  router.route(old, trade(1), 1);
  router.route(old, book(10), 1);
  router.route(old, depth(1, 5), 1);
  let done = false;
  const released = router.released(old, names).then(() => (done = true));
  router.route(next, trade(1), 2); // overlap: trade handed over
  router.route(next, book(10), 2); // bookTicker handed over
  await Promise.resolve();
  t.notOk(done, 'depth is still the old connection\'s');
  router.route(next, depth(1, 5), 2);
  await released;
  t.ok(done, 'resolved on the last handover');
  t.equal(router.ownedBy(old, names), 0);
  // A stream removed counts as released too.
  const third = session('c0');
  router.route(third, trade(2), 3);
  const w = router.released(next, ['btcusdt@trade']);
  router.removeStream('btcusdt@trade', 4);
  await w;
  t.pass('removed: released');
});

t.test('a replacement ahead of the old connection waits until the old one catches up', async (t) => {
  const { router, gaps, recorder } = setup();
  const old = session('c0');
  const next = session('c0');
  for (let id = 1; id <= 5; id++) router.route(old, trade(id), id);
  // The new socket is ahead: it delivers 9..12 while the old one has only reached 5.
  for (let id = 9; id <= 12; id++) router.route(next, trade(id), 50 + id);
  t.equal(router.stream('btcusdt@trade')!.owner, old.id, 'old still owns while behind');
  for (let id = 6; id <= 10; id++) router.route(old, trade(id), 60 + id);
  t.equal(router.stream('btcusdt@trade')!.owner, next.id, 'handed over once they overlap');
  for (let id = 13; id <= 14; id++) router.route(next, trade(id), 80 + id);
  t.same(ids(recorder.lines), Array.from({ length: 14 }, (_, i) => i + 1));
  t.equal(gaps.list().length, 0);
});

t.test('a drop opens one gap per stream, closed with the exact missed range', async (t) => {
  const { router, gaps } = setup();
  const a = session('c0');
  router.route(a, trade(100), 1);
  router.route(a, book(7), 1);
  router.route(a, depth(1, 5), 1);
  a.alive = false;
  router.sessionClosed(a, 10, { planned: false, cause: 'server_close', code: 1001, detail: 'bye' });
  const b = session('c0');
  router.route(b, trade(131), 20);
  router.route(b, trade(132), 21);
  router.route(b, book(99), 22);
  router.route(b, depth(6, 9), 23);
  const list = gaps.list();
  t.equal(list.length, 3, 'one gap per stream');
  t.same(list.map((g) => [g.stream, g.cause, g.code, g.start, g.end]), [
    ['btcusdt@trade', 'server_close', 1001, 10, 20],
    ['btcusdt@bookTicker', 'server_close', 1001, 10, 22],
    ['btcusdt@depth@100ms', 'server_close', 1001, 10, 23],
  ]);
  t.same(list[0]!.missed, { field: 't', from: 101, to: 130, count: 30 });
  t.equal(list[1]!.missed, null, 'bookTicker: no missed range');
  t.same(list[2]!.missed, { field: 'U/u', from: 6, to: 5, count: 0 }, 'depth lost nothing');
});

t.test('inside a maintenance window the cause is maintenance', async (t) => {
  const { router, gaps } = setup();
  gaps.maintenance = true;
  const a = session('c0');
  router.route(a, trade(1), 1);
  a.alive = false;
  router.sessionClosed(a, 5, { planned: false, cause: 'server_close', code: 1001 });
  t.equal(gaps.list()[0]!.cause, 'maintenance');
  t.equal(gaps.list()[0]!.code, 1001, 'close code kept');
});

t.test('a full recorder: dropped messages become a recorder_dropped gap with their exact IDs', async (t) => {
  const { router, gaps, recorder } = setup();
  const a = session('c0');
  router.route(a, trade(1), 1);
  recorder.full = true;
  router.route(a, trade(2), 2);
  router.route(a, trade(3), 3);
  recorder.full = false;
  router.route(a, trade(4), 4);
  t.same(ids(recorder.lines), [1, 4]);
  const list = gaps.list();
  t.equal(list.length, 1, 'one gap for the whole run of drops');
  t.same(list[0]!.missed, { field: 't', from: 2, to: 3, count: 2 });
  t.equal(list[0]!.cause, 'recorder_dropped');
});

t.test('restart: a stream live when the daemon died gets a daemon_down gap with the exact range', async (t) => {
  const { router, gaps, recorder } = setup();
  const id = gaps.openGap({ stream: 'btcusdt@trade', start: 1000, cause: 'daemon_down' });
  router.restore(new Map([['btcusdt@trade', { key: 50, recv: 1000 }]]), new Map([['btcusdt@trade', { id, cause: 'daemon_down' }]]));
  const a = session('c0');
  router.route(a, trade(58), 2000);
  t.same(ids(recorder.lines), [58]);
  const [g] = gaps.list();
  t.equal(g!.cause, 'daemon_down');
  t.equal(g!.start, 1000);
  t.same(g!.missed, { field: 't', from: 51, to: 57, count: 7 });
});

t.test('futures depth links by pu: a broken link is a gap of unknown count', async (t) => {
  const { router, gaps } = setup(usdm, ['btcusdt@depth@100ms']);
  const a = session('c0');
  const f = (U: number, u: number, pu: number) =>
    Buffer.from(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":${U},"u":${u},"pu":${pu},"b":[],"a":[]}}`);
  router.route(a, f(600859599090, 600859600917, 600859598061), 1);
  router.route(a, f(600859600950, 600859601000, 600859600917), 2);
  t.equal(gaps.list().length, 0, 'pu = previous u: no gap although U jumped');
  router.route(a, f(600859601500, 600859601600, 600859601400), 3);
  t.same(gaps.list()[0]!.missed, { field: 'U/u', from: 600859601001, to: 600859601400, count: null });
});

t.test('malformed frames are counted, never thrown', async (t) => {
  const { router, metrics, recorder } = setup();
  const a = session('c0');
  router.route(a, Buffer.from('not json at all'), 1);
  router.route(a, Buffer.from('{"stream":"btcusdt@trade","data":{"e":"trade","E":1}}'), 1);
  t.equal((await metrics.framesMalformed.get()).values[0]!.value, 2);
  t.equal(recorder.lines.length, 1, 'a known stream frame without its ID is still recorded');
});

t.test('IDs that went back below the recent window are a new epoch (sequence_reset), not duplicates', async (t) => {
  const { router, gaps, recorder, metrics } = setup();
  // A checkpoint of IDs around 9e9 (another run, a testnet before its reset), then the exchange
  // sends IDs around 1e6.
  router.restore(new Map([['btcusdt@trade', { key: 9_000_000_000, recv: 1 }]]), new Map());
  const s = session('c0');
  for (let id = 1_000_000; id < 1_000_050; id++) router.route(s, trade(id), 10 + id);
  const list = gaps.list();
  t.equal(list.length, 1, 'one entry');
  t.match(list[0], { stream: 'btcusdt@trade', cause: 'sequence_reset', missed: null });
  t.equal(ids(recorder.lines).length, 50, 'every message recorded from the first one on');
  t.equal((await metrics.messagesDuplicate.get()).values.length, 0, 'none taken for a duplicate');
  // A real repeat inside the window is still a duplicate.
  router.route(s, trade(1_000_040), 99);
  t.equal(ids(recorder.lines).length, 50);
  t.equal(gaps.list().length, 1);
});

// The socket hands each frame on as a view of its chunk (frame-reader.ts): what the router keeps
// past the call, it copies (a view would keep the chunk alive, and break if its memory were reused).
// Here every frame is routed from one scratch buffer, scribbled over right after.
function reusedRoute(router: StreamRouter): (s: SessionRef, frame: Buffer, recv: number) => void {
  const scratch = Buffer.alloc(4096);
  return (s, frame, recv) => {
    frame.copy(scratch);
    router.route(s, scratch.subarray(0, frame.length), recv);
    scratch.fill(0x20);
  };
}

t.test('frames routed from one reused buffer: the frames a replacement delivers while it waits to take over are recorded intact', async (t) => {
  const { router, gaps, recorder } = setup();
  const route = reusedRoute(router);
  const old = session('c0');
  const next = session('c0');
  for (let id = 1; id <= 5; id++) route(old, trade(id), id);
  // Ahead of the old one: 9..12 wait in the router until the two overlap.
  for (let id = 9; id <= 12; id++) route(next, trade(id), 50 + id);
  for (let id = 6; id <= 10; id++) route(old, trade(id), 60 + id);
  t.equal(router.stream('btcusdt@trade')!.owner, next.id, 'handed over');
  t.same(ids(recorder.lines), Array.from({ length: 12 }, (_, i) => i + 1), 'the waiting frames, whole');
  t.equal(gaps.list().length, 0);
});

t.test('frames routed from one reused buffer: a stream with ties still tells a repeat from a new event at the same key', async (t) => {
  const bybit = getVenue('bybit-spot')!;
  const name = 'publicTrade:BTCUSDT';
  const streams = new Map<string, StreamType>([[name, bybit.streamType('publicTrade')!]]);
  const recorder = new MemoryRecorder();
  const metrics = createMetrics({ defaultMetrics: false });
  const router = new StreamRouter({ venue: bybit, streams, gaps: new MemoryGaps(), recorder, metrics, logger: silentLogger() });
  const route = reusedRoute(router);
  const tradeAt = (T: number, i: string) => Buffer.from(`{"topic":"publicTrade.BTCUSDT","ts":${T},"type":"snapshot","data":[{"T":${T},"s":"BTCUSDT","S":"Buy","v":"0.1","p":"1","i":"${i}","BT":false}]}`);
  const old = session('c0');
  const next = session('c0');
  route(old, tradeAt(100, 'a'), 1);
  route(old, tradeAt(100, 'b'), 2); // same key, another trade
  route(old, tradeAt(100, 'b'), 3); // a repeat
  route(next, tradeAt(100, 'a'), 4); // the replacement's overlap: repeats
  route(next, tradeAt(100, 'b'), 5);
  route(next, tradeAt(101, 'c'), 6);
  route(old, tradeAt(101, 'c'), 7);
  route(next, tradeAt(101, 'd'), 8);
  const trades = recorder.lines.map((l) => (JSON.parse(l) as { data: { i: string }[] }).data[0]!.i);
  t.same(trades, ['a', 'b', 'c', 'd'], 'each trade once');
  t.equal((await metrics.messagesDuplicate.get()).values[0]!.value, 4, 'four repeats dropped');
});
