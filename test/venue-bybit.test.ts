import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import { bybitLinear, bybitSpot } from '../src/venues/bybit/index.js';
import { batchTopics } from '../src/venues/bybit/protocol.js';
import { BYBIT_STREAM_TYPES } from '../src/venues/bybit/streams.js';
import { KEY_RESET, type FrameKeys, type MarketProtocol, type ProtocolIO, type ProtocolOptions, type Venue } from '../src/venues/types.js';

// ---- fixtures and fakes -----------------------------------------------------------------------

interface Example {
  source: string;
  kind: string;
  note?: string;
  json: Record<string, unknown>;
  frame: Buffer;
}

/** Bybit's documentation examples (test/fixtures/bybit/README.md), as the compact JSON sent on the wire. */
function examples(): Example[] {
  const path = fileURLToPath(new URL('./fixtures/bybit/docs-examples.ndjson', import.meta.url));
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const e = JSON.parse(l) as Omit<Example, 'frame' | 'json'> & { frame: Record<string, unknown> };
      return { ...e, json: e.frame, frame: Buffer.from(JSON.stringify(e.frame)) };
    });
}

const EXAMPLES = examples();

function example(kind: string, topic?: string): Buffer {
  const e = EXAMPLES.find((x) => x.kind === kind && (topic === undefined || x.json.topic === topic));
  if (e === undefined) throw new Error(`no ${kind} example`);
  return e.frame;
}

function scratch(): FrameKeys {
  return { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
}

/** readStream, then the stream type's key reader, as the router does. */
function readKeys(venue: Venue, frame: Buffer): { id: string | null; ok: boolean; out: FrameKeys } {
  const out = scratch();
  const id = venue.readStream(frame, out);
  if (id === null) return { id, ok: false, out };
  const type = venue.streamType(venue.typeOf(id));
  return { id, ok: type !== null && type.keys(frame, out), out };
}

/** A clock whose timers run only when the test advances it. */
class FakeClock {
  now = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  readonly setTimeout = (fn: () => void, ms: number): ReturnType<typeof setTimeout> => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, fn });
    return id as unknown as ReturnType<typeof setTimeout>;
  };
  readonly clearTimeout = (timer: ReturnType<typeof setTimeout> | undefined): void => {
    this.timers.delete(timer as unknown as number);
  };
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= until && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = until;
  }
  get pending(): number {
    return this.timers.size;
  }
}

/** The seam's own contract, recorded. */
class RecordingIO implements ProtocolIO {
  readonly id = 'c0#1';
  readonly sent: Array<{ text: string; kind: string }> = [];
  readonly frames: Buffer[] = [];
  readonly malformedWhy: string[] = [];
  readonly notices: string[] = [];
  readonly unexpectedFrames: Buffer[] = [];
  send(text: string, kind: string): void {
    this.sent.push({ text, kind });
  }
  data(frame: Buffer): void {
    this.frames.push(frame);
  }
  malformed(_frame: Buffer, why: string): void {
    this.malformedWhy.push(why);
  }
  shutdownNotice(detail: string): void {
    this.notices.push(detail);
  }
  unexpected(frame: Buffer): void {
    this.unexpectedFrames.push(frame);
  }
  /** The subscribe requests sent, parsed. */
  requests(): Array<{ req_id: string; op: string; args: string[] }> {
    return this.sent.map((s) => JSON.parse(s.text) as { req_id: string; op: string; args: string[] });
  }
}

function options(clock: FakeClock, streams: string[], over: Partial<ProtocolOptions> = {}): ProtocolOptions {
  return { base: 'wss://stream.bybit.com', path: '/v5/public/spot', streams, streamsPerSubscribe: 10, replyTimeoutMs: 5000, clock, ...over };
}

function ack(reqId: string, success = true, retMsg = 'subscribe'): Buffer {
  return Buffer.from(JSON.stringify({ success, ret_msg: retMsg, conn_id: '2324d924-aa4d-45b0-a858-7b8be29ab52b', req_id: reqId, op: 'subscribe' }));
}

/** Observes a promise's outcome without awaiting it. */
function watch(p: Promise<void>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const w: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  p.then(
    () => (w.state = 'resolved'),
    (e: unknown) => {
      w.state = 'rejected';
      w.error = e;
    },
  );
  return w;
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

const symbols = (n: number): string[] => Array.from({ length: n }, (_, i) => `SYM${i}USDT`);

// ---- the venue objects ------------------------------------------------------------------------

t.test('names, endpoints, paths and limits', async (t) => {
  for (const [v, name, route, perSubscribe] of [
    [bybitSpot, 'bybit-spot', '/v5/public/spot', 10],
    [bybitLinear, 'bybit-linear', '/v5/public/linear', 100],
  ] as const) {
    t.equal(v.name, name);
    t.same(v.endpoints, { stream: 'wss://stream.bybit.com', rest: 'https://api.bybit.com' });
    t.equal(v.combinedPath, route);
    t.equal(v.systemStatusPath, '/v5/system/status');
    t.equal(v.recordingShape, 'wrap');
    t.equal(v.limits.streamsPerSubscribe, perSubscribe);
    t.equal(v.limits.streamsPerConnection, 200);
    t.equal(v.limits.connectionAttemptWindowMs, 300_000);
    // Spot and linear share stream.bybit.com and its 500 attempts per 5 min.
    t.equal(v.limits.connectionAttempts * 2, 500);
    t.equal(v.limits.subscribesPerHour, 0);
    t.equal(v.limits.maxLifetimeMs, 0);
    t.equal(v.limits.serverPingIntervalMs, 20_000);
    t.equal(v.limits.pongTimeoutMs, 600_000);
    t.equal(v.protocol(options(new FakeClock(), [], { base: v.endpoints.stream, path: route })).url(), `wss://stream.bybit.com${route}`);
  }
});

t.test('stream catalogue: types, routes and sequence rules', async (t) => {
  for (const v of [bybitSpot, bybitLinear]) {
    for (const type of BYBIT_STREAM_TYPES) {
      const st = v.streamType(type);
      t.ok(st, `${v.name} ${type}`);
      t.equal(st?.route, v.combinedPath, `${type} route`);
    }
    for (const bad of ['trade', 'orderbook.25', 'orderbook.full', 'kline.2', 'kline.1h', 'tickers.BTCUSDT', '', 'publicTrade.x']) {
      t.equal(v.streamType(bad), null, `${v.name} has no ${JSON.stringify(bad)}`);
    }
  }
  const rule = (type: string): unknown => bybitSpot.streamType(type)?.sequence;
  t.same(rule('publicTrade'), { kind: 'ordered', field: 'T', ties: true });
  for (const d of ['1', '50', '200', '1000']) t.same(rule(`orderbook.${d}`), { kind: 'ordered', field: 'u' });
  t.same(rule('tickers'), { kind: 'ordered', field: 'ts' });
  t.same(rule('kline.D'), { kind: 'ordered', field: 'start', ties: true });
  t.equal(BYBIT_STREAM_TYPES.filter((s) => s.startsWith('kline.')).length, 13);
  t.equal(bybitSpot.streamType('orderbook.1')?.expectedIntervalMs, 3000, 'level 1 re-sends its snapshot after 3 s');
  t.equal(bybitSpot.streamType('orderbook.50')?.expectedIntervalMs, 0, 'deltas only when the book changes');
});

t.test('stream names, types and symbols', async (t) => {
  for (const v of [bybitSpot, bybitLinear]) {
    t.equal(v.streamName('BTCUSDT', 'publicTrade'), 'publicTrade:BTCUSDT');
    t.equal(v.streamName('BTCUSDT', 'orderbook.50'), 'orderbook.50:BTCUSDT');
    for (const type of BYBIT_STREAM_TYPES) t.equal(v.typeOf(v.streamName('ETHUSDT', type)), type);
    t.ok(v.isSymbol(v.symbolExample));
    for (const good of ['BTCUSDT', '1000PEPEUSDT', 'ETHBTC']) t.ok(v.isSymbol(good), good);
    for (const bad of ['btcusdt', 'BTC-USDT', 'BTC USDT', 'B', '', 'BTCUSDT.', 'BTC:USDT']) t.notOk(v.isSymbol(bad), bad);
  }
  t.ok(bybitLinear.isSymbol('BTC-26DEC25'), 'USDC futures trade on linear');
  t.ok(bybitLinear.isSymbol('XRPUSDT-03JUL26'), 'USDT futures too');
  t.ok(bybitLinear.isSymbol('BTCPERP'));
  t.notOk(bybitSpot.isSymbol('BTC-26DEC25'));
});

// ---- reading frames ---------------------------------------------------------------------------

t.test('readStream names every documented data frame and nothing else', async (t) => {
  t.ok(EXAMPLES.length >= 10, 'fixture loaded');
  for (const e of EXAMPLES) {
    const out = scratch();
    const id = bybitSpot.readStream(e.frame, out);
    const topic = e.json.topic;
    if (typeof topic === 'string') {
      const dot = topic.lastIndexOf('.');
      t.equal(id, `${topic.slice(0, dot)}:${topic.slice(dot + 1)}`, `${e.kind}: ${topic}`);
      t.ok(out.from > 0 && out.from <= e.frame.length, 'keys start after the topic');
    } else {
      t.equal(id, null, `${e.kind} is not data`);
    }
  }
  t.equal(bybitSpot.readStream(example('trade'), scratch()), 'publicTrade:BTCUSDT');
  t.equal(bybitSpot.readStream(example('book_snapshot'), scratch()), 'orderbook.50:BTCUSDT');
  t.equal(bybitSpot.readStream(example('kline'), scratch()), 'kline.5:BTCUSDT');
  for (const s of ['', 'pong', '{"topic":"', '{"topic":"publicTrade"}', '{"topic":".BTCUSDT"}', '{"topic":"publicTrade."}', '{"topic":"a\\".b"}', '{ "topic":"a.b"}', '{"topic":"publicTrade.BTCUSDT']) {
    t.equal(bybitSpot.readStream(Buffer.from(s), scratch()), null, JSON.stringify(s));
  }
});

t.test('publicTrade keys: the largest T, the message ts', async (t) => {
  const r = readKeys(bybitSpot, example('trade'));
  t.ok(r.ok);
  t.equal(r.out.first, 1672304486865);
  t.equal(r.out.last, 1672304486865);
  t.ok(Number.isNaN(r.out.prev));
  t.equal(r.out.time, 1672304486868);
  t.equal(r.out.flags, 0);
  const many = Buffer.from(
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":9,"data":[{"T":5,"s":"BTCUSDT","i":"a"},{"T":7,"s":"BTCUSDT","i":"b"},{"T":6,"s":"BTCUSDT","i":"c"}]}',
  );
  const m = readKeys(bybitLinear, many);
  t.ok(m.ok);
  t.equal(m.out.first, 7, 'first = last = the largest T');
  t.equal(m.out.last, 7);
  t.notOk(readKeys(bybitSpot, Buffer.from('{"topic":"publicTrade.BTCUSDT","ts":9,"data":[{"T":5},{"T":"x"}]}')).ok, 'a broken T fails the frame');
  t.notOk(readKeys(bybitSpot, Buffer.from('{"topic":"publicTrade.BTCUSDT","ts":9,"data":[]}')).ok, 'no trade, no key');
});

t.test('orderbook keys: u, snapshot resets, u = 1 resets, key order does not matter', async (t) => {
  const snap = readKeys(bybitSpot, example('book_snapshot'));
  t.ok(snap.ok);
  t.equal(snap.out.first, 18521288);
  t.equal(snap.out.last, 18521288);
  t.equal(snap.out.flags & KEY_RESET, KEY_RESET, 'a snapshot starts a new epoch');
  t.equal(snap.out.time, 1672304484978);
  const delta = readKeys(bybitSpot, example('book_delta', 'orderbook.50.BTCUSDT'));
  t.ok(delta.ok);
  t.equal(delta.out.last, 177400507);
  t.equal(delta.out.flags, 0);
  t.equal(delta.out.time, 1687940967466);
  // Spot and futures level 1 put ts before type, with ts quoted (orderbook.mdx reminder).
  const level1 = Buffer.from('{"topic":"orderbook.1.BTCUSDT","ts":"1772694601512","type":"snapshot","data":{"s":"BTCUSDT","b":[["1","2"]],"a":[],"u":42,"seq":9},"cts":1}');
  const l1 = readKeys(bybitLinear, level1);
  t.ok(l1.ok);
  t.equal(l1.out.last, 42);
  t.equal(l1.out.time, 1772694601512);
  t.equal(l1.out.flags, KEY_RESET);
  const restart = Buffer.from('{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":5,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1,"seq":3}}');
  t.equal(readKeys(bybitSpot, restart).out.flags, KEY_RESET, 'u = 1: the service restarted');
  t.notOk(readKeys(bybitSpot, Buffer.from('{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":5,"data":{"s":"BTCUSDT"}}')).ok, 'no u, no key');
});

t.test('tickers and kline keys', async (t) => {
  for (const e of EXAMPLES.filter((x) => x.kind === 'ticker')) {
    const r = readKeys(bybitSpot, e.frame);
    t.ok(r.ok, e.note ?? e.kind);
    t.equal(r.out.last, e.json.ts);
    t.equal(r.out.time, e.json.ts);
  }
  const k = readKeys(bybitSpot, example('kline'));
  t.ok(k.ok);
  t.equal(k.out.first, 1672324800000, 'the candle start');
  t.equal(k.out.last, 1672324800000);
  t.equal(k.out.time, 1672324988882);
});

t.test('fuzz: random bytes, truncated and mutated frames never throw', async (t) => {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const real = EXAMPLES.map((e) => e.frame);
  const prefix = Buffer.from('{"topic":"orderbook.50.BTCUSDT","type":"snapshot","data":{"u":');
  const readers = BYBIT_STREAM_TYPES.map((type) => bybitSpot.streamType(type)!.keys);
  const clock = new FakeClock();
  const io = new RecordingIO();
  const protocol = bybitSpot.protocol(options(clock, ['publicTrade:BTCUSDT']));
  let buffers = 0;
  for (let i = 0; i < 6000; i++) {
    let buf: Buffer;
    const src = real[i % real.length]!;
    switch (i % 4) {
      case 0:
        buf = Buffer.alloc(Math.floor(rnd() * 300));
        for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rnd() * 256);
        break;
      case 1:
        buf = Buffer.from(src.subarray(0, Math.floor(rnd() * src.length)));
        break;
      case 2:
        buf = Buffer.from(src);
        for (let k = 0; k < 3; k++) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
        break;
      default: {
        const tail = Buffer.alloc(Math.floor(rnd() * 40));
        for (let j = 0; j < tail.length; j++) tail[j] = 0x20 + Math.floor(rnd() * 95);
        buf = Buffer.concat([prefix, tail]);
      }
    }
    const out = scratch();
    const id = bybitSpot.readStream(buf, out);
    if (id !== null && typeof id !== 'string') t.fail('readStream returned a non-string');
    out.from = id === null ? Math.floor(rnd() * (buf.length + 2)) : out.from;
    for (const keys of readers) {
      if (typeof keys(buf, out) !== 'boolean') t.fail('a key reader returned a non-boolean');
    }
    protocol.onFrame(io, buf, false, 0);
    buffers++;
  }
  t.equal(buffers, 6000, 'no reader threw');
  t.equal(io.sent.length, 0, 'garbage never makes the protocol send');
});

// ---- the protocol -----------------------------------------------------------------------------

t.test('subscribe: 25 spot symbols in requests of at most 10 args, done when every ack is in', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const streams = symbols(25).map((s) => bybitSpot.streamName(s, 'publicTrade'));
  const p = bybitSpot.protocol(options(clock, streams));
  const w = watch(p.subscribe(io));
  const reqs = io.requests();
  t.same(
    reqs.map((r) => r.args.length),
    [10, 10, 5],
  );
  t.ok(io.sent.every((s) => s.kind === 'subscribe'));
  t.ok(reqs.every((r) => r.op === 'subscribe'));
  t.same(
    reqs.flatMap((r) => r.args),
    symbols(25).map((s) => `publicTrade.${s}`),
    'topics in Bybit spelling, each once',
  );
  t.equal(new Set(reqs.map((r) => r.req_id)).size, 3, 'one req_id per request');
  t.equal(p.requestsSent, 3);
  p.onFrame(io, ack(reqs[1]!.req_id), false, 1);
  p.onFrame(io, ack(reqs[0]!.req_id), false, 1);
  await flush();
  t.equal(w.state, 'pending', 'still waiting for the third ack');
  p.onFrame(io, ack('someone-else'), false, 1);
  t.equal(io.unexpectedFrames.length, 1, 'an ack nobody waits for is unexpected');
  p.onFrame(io, ack(reqs[2]!.req_id), false, 1);
  await flush();
  t.equal(w.state, 'resolved');
  t.equal(clock.pending, 0, 'no reply timer left');
});

t.test('subscribe: the spot cap of 10 args holds whatever the options say; linear batches 100', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const spot = bybitSpot.protocol(options(clock, symbols(25).map((s) => `orderbook.1:${s}`), { streamsPerSubscribe: 50 }));
  void spot.subscribe(io).catch(() => undefined);
  t.ok(io.requests().every((r) => r.args.length <= 10), 'args size >10 is never sent');
  const io2 = new RecordingIO();
  const linear = bybitLinear.protocol(options(clock, symbols(250).map((s) => `tickers:${s}`), { path: '/v5/public/linear', streamsPerSubscribe: 100 }));
  void linear.subscribe(io2).catch(() => undefined);
  t.same(
    io2.requests().map((r) => r.args.length),
    [100, 100, 50],
  );
  linear.closed(new Error('test over'));
  spot.closed(new Error('test over'));
});

t.test('batchTopics keeps each request under 21,000 characters of args', async (t) => {
  const long = Array.from({ length: 2000 }, (_, i) => `orderbook.1000.SYMBOLNUMBER${i}USDT`);
  const batches = batchTopics(long, 10_000);
  t.ok(batches.length > 1);
  for (const b of batches) t.ok(JSON.stringify(b).length <= 21_000, `${JSON.stringify(b).length} chars`);
  t.same(batches.flat(), long);
  t.same(batchTopics([], 10), []);
});

t.test('subscribe: an error reply rejects with FK_ERR_SUBSCRIBE', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bybitSpot.protocol(options(clock, symbols(15).map((s) => `publicTrade:${s}`)));
  const done = p.subscribe(io);
  const reqs = io.requests();
  p.onFrame(io, ack(reqs[0]!.req_id, false, 'args size >10'), false, 1);
  await t.rejects(done, { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /args size >10/ });
  t.equal(clock.pending, 0, 'the other request stopped waiting too');
});

t.test('subscribe: no reply within replyTimeoutMs rejects with FK_ERR_SUBSCRIBE_TIMEOUT', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bybitSpot.protocol(options(clock, ['publicTrade:BTCUSDT'], { replyTimeoutMs: 3000 }));
  const w = watch(p.subscribe(io));
  clock.advance(2999);
  await flush();
  t.equal(w.state, 'pending');
  clock.advance(1);
  await flush();
  t.equal(w.state, 'rejected');
  t.match(w.error, { code: ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, message: /3000 ms/ });
});

t.test('closed() rejects what still waits', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bybitSpot.protocol(options(clock, ['publicTrade:BTCUSDT']));
  const done = p.subscribe(io);
  const err = new Error('socket closed');
  p.closed(err);
  await t.rejects(done, err);
  t.equal(clock.pending, 0);
  await t.resolves(bybitSpot.protocol(options(clock, [])).subscribe(io), 'nothing to subscribe, nothing to wait for');
});

t.test('onFrame: data first, pongs quietly, the rest counted', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p: MarketProtocol = bybitLinear.protocol(options(clock, []));
  for (const e of EXAMPLES) p.onFrame(io, e.frame, false, 1);
  t.equal(io.frames.length, EXAMPLES.filter((e) => typeof e.json.topic === 'string').length, 'every topic frame goes to the router');
  t.equal(io.unexpectedFrames.length, 1, 'only the ack nobody waited for is unexpected; the pongs are not');
  p.onFrame(io, Buffer.from('{"args":["1672916271846"],"op":"pong"}'), false, 1);
  t.equal(io.unexpectedFrames.length, 1, 'the option/spread pong is a pong too');
  p.onFrame(io, Buffer.from('pong'), false, 1);
  p.onFrame(io, Buffer.from('{"success":'), false, 1);
  p.onFrame(io, Buffer.from('[1,2]'), false, 1);
  p.onFrame(io, Buffer.from('{"topic":"a\\"b.C","data":{}}'), false, 1);
  t.same(io.malformedWhy, ['not JSON', 'not JSON', 'not a JSON object', 'data frame without a readable topic']);
  t.same(io.notices, []);
});

t.test('client ping: every 20 s, a fresh req_id each time', async (t) => {
  for (const v of [bybitSpot, bybitLinear]) {
    const ping = v.clientPing!;
    t.equal(ping.everyMs, 20_000);
    t.equal(ping.whenIdle, false);
    const a = JSON.parse(ping.text()) as { req_id: string; op: string };
    const b = JSON.parse(ping.text()) as { req_id: string; op: string };
    t.equal(a.op, 'ping');
    t.match(a.req_id, /^\d+$/);
    t.not(a.req_id, b.req_id);
  }
});

t.test('close codes', async (t) => {
  t.equal(bybitSpot.closeCause(1008), 'rate_limited');
  t.equal(bybitSpot.closeCause(1013), 'rate_limited');
  t.equal(bybitLinear.closeCause(1000), 'server_close');
  t.equal(bybitLinear.closeCause(1011), 'server_close');
  t.equal(bybitLinear.closeCause(4004), 'server_close', 'the OKX code means nothing here');
});
