import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import { okx } from '../src/venues/okx/index.js';
import { batchArgs } from '../src/venues/okx/protocol.js';
import { OKX_CANDLE_BARS, OKX_STREAM_TYPES } from '../src/venues/okx/streams.js';
import { KEY_RESET, type FrameKeys, type ProtocolIO, type ProtocolOptions } from '../src/venues/types.js';

// ---- fixtures and fakes -----------------------------------------------------------------------

interface Example {
  source: string;
  kind: string;
  note?: string;
  json: Record<string, unknown>;
  frame: Buffer;
}

/** OKX's documentation examples (test/fixtures/okx/README.md), as the compact JSON sent on the wire. */
function examples(): Example[] {
  const path = fileURLToPath(new URL('./fixtures/okx/docs-examples.ndjson', import.meta.url));
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const e = JSON.parse(l) as Omit<Example, 'frame' | 'json'> & { frame: Record<string, unknown> };
      return { ...e, json: e.frame, frame: Buffer.from(JSON.stringify(e.frame)) };
    });
}

const EXAMPLES = examples();

function example(kind: string, channel?: string): Buffer {
  const e = EXAMPLES.find((x) => x.kind === kind && (channel === undefined || (x.json.arg as { channel?: string } | undefined)?.channel === channel));
  if (e === undefined) throw new Error(`no ${kind} example`);
  return e.frame;
}

function scratch(): FrameKeys {
  return { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
}

/** readStream, then the stream type's key reader, as the router does. */
function readKeys(frame: Buffer): { id: string | null; ok: boolean; out: FrameKeys } {
  const out = scratch();
  const id = okx.readStream(frame, out);
  if (id === null) return { id, ok: false, out };
  const type = okx.streamType(okx.typeOf(id));
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

type Arg = { channel: string; instId: string };

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
  requests(): Array<{ id: string; op: string; args: Arg[] }> {
    return this.sent.map((s) => JSON.parse(s.text) as { id: string; op: string; args: Arg[] });
  }
}

function options(clock: FakeClock, streams: string[], over: Partial<ProtocolOptions> = {}): ProtocolOptions {
  return { base: 'wss://ws.okx.com:8443', path: '/ws/v5/public', streams, streamsPerSubscribe: 100, replyTimeoutMs: 5000, clock, ...over };
}

/** OKX acks each arg of a request on its own, with the request's id. */
function acks(id: string, args: Arg[]): Buffer[] {
  return args.map((arg) => Buffer.from(JSON.stringify({ id, event: 'subscribe', arg, connId: 'a4d3ae55' })));
}

function ackAll(p: { onFrame: (io: ProtocolIO, f: Buffer, b: boolean, n: number) => void }, io: RecordingIO, from = 0): void {
  for (const r of io.requests().slice(from)) for (const a of acks(r.id, r.args)) p.onFrame(io, a, false, 1);
}

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

const instIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `C${i}-USDT`);

// ---- the venue object -------------------------------------------------------------------------

t.test('name, endpoints, paths and limits', async (t) => {
  t.equal(okx.name, 'okx');
  t.same(okx.endpoints, { stream: 'wss://ws.okx.com:8443', rest: 'https://www.okx.com' });
  t.equal(okx.combinedPath, '/ws/v5/public');
  t.equal(okx.systemStatusPath, '/api/v5/system/status');
  t.equal(okx.recordingShape, 'wrap');
  t.same(okx.limits, {
    streamsPerConnection: 100,
    connectionAttempts: 3,
    connectionAttemptWindowMs: 1000,
    messagesPerSecond: 10,
    streamsPerSubscribe: 100,
    subscribesPerHour: 480,
    maxLifetimeMs: 0,
    serverPingIntervalMs: 20_000,
    pongTimeoutMs: 30_000,
  });
  t.equal(okx.protocol(options(new FakeClock(), [])).url(), 'wss://ws.okx.com:8443/ws/v5/public');
  t.equal(okx.protocol(options(new FakeClock(), [], { path: '/ws/v5/business' })).url(), 'wss://ws.okx.com:8443/ws/v5/business');
});

t.test('stream catalogue: types, routes and sequence rules', async (t) => {
  for (const type of OKX_STREAM_TYPES) t.ok(okx.streamType(type), type);
  for (const bad of ['trade', 'books50-l2-tbt', 'books-l2-tbt', 'trades-all', 'candle2m', 'candle', 'candle1d', '', 'tickers:BTC-USDT']) {
    t.equal(okx.streamType(bad), null, `no ${JSON.stringify(bad)}`);
  }
  t.equal(OKX_CANDLE_BARS.length, 27);
  const rule = (type: string): unknown => okx.streamType(type)?.sequence;
  t.same(rule('trades'), { kind: 'contiguous', field: 'tradeId' });
  t.same(rule('books'), { kind: 'linked', field: 'seqId' });
  t.same(rule('books5'), { kind: 'ordered', field: 'ts', ties: true });
  t.same(rule('bbo-tbt'), { kind: 'ordered', field: 'ts', ties: true });
  t.same(rule('tickers'), { kind: 'ordered', field: 'ts' });
  t.same(rule('candle1m'), { kind: 'ordered', field: 'ts', ties: true });
  for (const type of ['trades', 'books', 'books5', 'bbo-tbt', 'tickers']) t.equal(okx.streamType(type)?.route, '/ws/v5/public', type);
  for (const bar of OKX_CANDLE_BARS) t.equal(okx.streamType(`candle${bar}`)?.route, '/ws/v5/business', `candle${bar} lives on /business`);
});

t.test('stream names, types and symbols', async (t) => {
  t.equal(okx.streamName('BTC-USDT', 'trades'), 'trades:BTC-USDT');
  t.equal(okx.streamName('BTC-USDT-SWAP', 'bbo-tbt'), 'bbo-tbt:BTC-USDT-SWAP');
  for (const type of OKX_STREAM_TYPES) t.equal(okx.typeOf(okx.streamName('ETH-USDT-SWAP', type)), type);
  t.ok(okx.isSymbol(okx.symbolExample));
  for (const good of ['BTC-USDT', 'BTC-USDT-SWAP', 'BTC-USD-250328', 'BTC-USD-250328-60000-C', '1INCH-USDT']) t.ok(okx.isSymbol(good), good);
  for (const bad of ['BTCUSDT', 'btc-usdt', 'BTC-USDT-', 'BTC-USDT-PERP', 'BTC:USDT', '', 'BTC-USDT SWAP']) t.notOk(okx.isSymbol(bad), bad);
});

// ---- reading frames ---------------------------------------------------------------------------

t.test('readStream names every documented push and nothing else', async (t) => {
  t.ok(EXAMPLES.length >= 10, 'fixture loaded');
  for (const e of EXAMPLES) {
    const out = scratch();
    const id = okx.readStream(e.frame, out);
    const arg = e.json.arg as { channel: string; instId: string } | undefined;
    if (arg !== undefined && 'data' in e.json) {
      t.equal(id, `${arg.channel}:${arg.instId}`, e.kind);
      t.equal(e.frame.subarray(out.from - 1, out.from).toString(), '}', 'keys start after arg');
    } else {
      t.equal(id, null, `${e.kind} is not data`);
    }
  }
  t.equal(okx.readStream(example('trade'), scratch()), 'trades:BTC-USDT');
  t.equal(okx.readStream(example('book_top', 'bbo-tbt'), scratch()), 'bbo-tbt:BCH-USDT-SWAP');
  const reordered = Buffer.from('{"arg":{"instType":"SWAP","instId":"BTC-USDT-SWAP","channel":"books"},"action":"update","data":[{"prevSeqId":1,"seqId":2}]}');
  t.equal(okx.readStream(reordered, scratch()), 'books:BTC-USDT-SWAP', 'other keys in arg, any order');
  for (const s of ['', 'pong', '{"arg":{', '{"arg":{"channel":"trades"}}', '{"arg":{"channel":"","instId":"X"}}', '{"arg":{"channel":"trades","instId":"BTC', '{"arg":{"channel":"a\\"b","instId":"X"}}', '{ "arg":{"channel":"trades","instId":"X"}}']) {
    t.equal(okx.readStream(Buffer.from(s), scratch()), null, JSON.stringify(s));
  }
});

t.test('trades keys: an item covers count IDs ending at tradeId', async (t) => {
  const r = readKeys(example('trade'));
  t.ok(r.ok);
  t.equal(r.out.first, 130639472, 'tradeId 130639474, count 3 → from 130639472');
  t.equal(r.out.last, 130639474);
  t.equal(r.out.time, 1630048897897);
  t.ok(Number.isNaN(r.out.prev));
  t.equal(r.out.flags, 0);
  const two = Buffer.from(
    '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"200","ts":"10","count":"2"},{"instId":"BTC-USDT","count":"5","ts":"11","tradeId":"205"}]}',
  );
  const m = readKeys(two);
  t.ok(m.ok);
  t.equal(m.out.first, 199, 'the smallest start over the items');
  t.equal(m.out.last, 205, 'the largest tradeId');
  t.equal(m.out.time, 11, 'ts of the last item');
  const single = readKeys(Buffer.from('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"tradeId":"7","ts":"1"}]}'));
  t.ok(single.ok, 'no count: one trade');
  t.equal(single.out.first, 7);
  for (const bad of ['[]', '[{"tradeId":"x"}]', '[{"tradeId":"7","count":"0"}]', '[{"tradeId":"7"', '[{"px":"1"}]']) {
    t.notOk(readKeys(Buffer.from(`{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":${bad}}`)).ok, bad);
  }
});

t.test('books keys: linked by prevSeqId, snapshots and sequence resets flagged, checksum ignored', async (t) => {
  const snap = readKeys(example('book_snapshot'));
  t.ok(snap.ok);
  t.equal(snap.out.last, 123456);
  t.equal(snap.out.first, 123456);
  t.equal(snap.out.prev, -1);
  t.equal(snap.out.flags & KEY_RESET, KEY_RESET);
  t.equal(snap.out.time, 1597026383085);
  const delta = readKeys(example('book_delta'));
  t.ok(delta.ok);
  t.equal(delta.out.prev, 123456, 'links to the snapshot');
  t.equal(delta.out.last, 123457);
  t.equal(delta.out.flags, 0);
  const frame = (data: string, action = 'update'): Buffer => Buffer.from(`{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"${action}","data":[${data}]}`);
  const checksum = readKeys(frame('{"asks":[],"bids":[],"ts":"5","checksum":-855196043,"prevSeqId":10,"seqId":15}'));
  t.ok(checksum.ok, 'a non-zero checksum changes nothing');
  t.equal(checksum.out.flags, 0);
  const heartbeat = readKeys(frame('{"asks":[],"bids":[],"ts":"5","checksum":0,"prevSeqId":15,"seqId":15}'));
  t.same([heartbeat.out.prev, heartbeat.out.last, heartbeat.out.flags], [15, 15, 0], 'the idle heartbeat repeats the key');
  const reset = readKeys(frame('{"asks":[],"bids":[],"ts":"5","checksum":0,"prevSeqId":15,"seqId":3}'));
  t.equal(reset.out.flags, KEY_RESET, 'seqId below prevSeqId: reset by maintenance');
  t.equal(readKeys(frame('{"prevSeqId":-1,"seqId":9}')).out.flags, KEY_RESET, 'prevSeqId -1 without action');
  t.notOk(readKeys(frame('{"asks":[],"seqId":9}')).ok, 'no prevSeqId: the link cannot be checked');
  t.notOk(readKeys(frame('{"asks":[],"prevSeqId":9}')).ok, 'no seqId');
});

t.test('books5, bbo-tbt, tickers and candle keys', async (t) => {
  for (const channel of ['books5', 'bbo-tbt']) {
    const r = readKeys(example('book_top', channel));
    t.ok(r.ok, channel);
    t.equal(r.out.last, 1670324386802);
    t.equal(r.out.time, 1670324386802);
  }
  const tick = readKeys(example('ticker'));
  t.ok(tick.ok);
  t.equal(tick.out.last, 1597026383085);
  const candle = readKeys(example('candle'));
  t.ok(candle.ok);
  t.equal(candle.id, 'candle1D:BTC-USDT');
  t.equal(candle.out.last, 1597026383085, 'the candle start');
  t.ok(Number.isNaN(candle.out.time), 'a start is not an event time');
  const two = readKeys(Buffer.from('{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["60000","1","1","1","1","0","0","0","1"],["120000","1","1","1","1","0","0","0","0"]]}'));
  t.equal(two.out.last, 120000);
  for (const bad of ['[]', '[["x"]]', '[["60000","1"]', '["60000"]', '[["60000"],']) {
    t.notOk(readKeys(Buffer.from(`{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":${bad}}`)).ok, bad);
  }
});

t.test('fuzz: random bytes, truncated and mutated frames never throw', async (t) => {
  let seed = 11;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const real = [...EXAMPLES.map((e) => e.frame), Buffer.from('pong')];
  const prefixes = ['{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"tradeId":', '{"arg":{"channel":"candle1m","instId":"X"},"data":[['].map((s) => Buffer.from(s));
  const readers = [...new Set(OKX_STREAM_TYPES.map((type) => okx.streamType(type)!.keys))];
  const io = new RecordingIO();
  const protocol = okx.protocol(options(new FakeClock(), ['trades:BTC-USDT']));
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
        buf = Buffer.concat([prefixes[i % prefixes.length]!, tail]);
      }
    }
    const out = scratch();
    const id = okx.readStream(buf, out);
    if (id !== null && typeof id !== 'string') t.fail('readStream returned a non-string');
    out.from = id === null ? Math.floor(rnd() * (buf.length + 2)) : out.from;
    for (const keys of readers) {
      if (typeof keys(buf, out) !== 'boolean') t.fail('a key reader returned a non-boolean');
    }
    protocol.onFrame(io, buf, i % 8 === 0, 0);
    buffers++;
  }
  t.equal(buffers, 6000, 'no reader threw');
  t.equal(io.sent.length, 0, 'garbage never makes the protocol send');
});

// ---- the protocol -----------------------------------------------------------------------------

t.test('subscribe: batched args, done when every arg is acked', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const streams = instIds(5).flatMap((s) => [`trades:${s}`, `books:${s}`]);
  const p = okx.protocol(options(clock, streams, { streamsPerSubscribe: 4 }));
  const w = watch(p.subscribe(io));
  const reqs = io.requests();
  t.same(
    reqs.map((r) => r.args.length),
    [4, 4, 2],
  );
  t.same(reqs[0]!.args[1], { channel: 'books', instId: 'C0-USDT' });
  t.ok(reqs.every((r) => r.op === 'subscribe' && /^[A-Za-z0-9]{1,32}$/.test(r.id)), 'ids as OKX allows them');
  t.ok(io.sent.every((s) => s.kind === 'subscribe'));
  t.equal(p.requestsSent, 3);
  // All acks but the last arg's.
  const all = reqs.flatMap((r) => acks(r.id, r.args));
  for (const a of all.slice(0, -1)) p.onFrame(io, a, false, 1);
  await flush();
  t.equal(w.state, 'pending', 'one arg still unacked');
  p.onFrame(io, all.at(-1)!, false, 1);
  await flush();
  t.equal(w.state, 'resolved');
  t.equal(io.unexpectedFrames.length, 0);
  t.equal(clock.pending, 1, 'only the hour-budget timer is left');
  p.closed(new Error('done'));
  t.equal(clock.pending, 0);
});

t.test('batchArgs keeps each request under 64 KB', async (t) => {
  const args = Array.from({ length: 5000 }, (_, i) => ({ channel: 'candle3Mutc', instId: `LONGNAME${i}-USDT-SWAP` }));
  const batches = batchArgs(args, 10_000);
  t.ok(batches.length > 1);
  for (const b of batches) t.ok(JSON.stringify({ id: '12345678', op: 'subscribe', args: b }).length <= 64 * 1024);
  t.same(batches.flat(), args);
});

t.test('subscribe: an error with our id rejects with FK_ERR_SUBSCRIBE', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = okx.protocol(options(clock, ['trades:BTC-USDT', 'books:BTC-USD-191227'], { streamsPerSubscribe: 1 }));
  const done = p.subscribe(io);
  const [first, second] = io.requests();
  for (const a of acks(first!.id, first!.args)) p.onFrame(io, a, false, 1);
  p.onFrame(io, Buffer.from(JSON.stringify({ id: second!.id, event: 'error', code: '60018', msg: "Wrong URL or channel:books,instId:BTC-USD-191227 doesn't exist.", connId: 'a4d3ae55' })), false, 1);
  await t.rejects(done, { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /60018/ });
  t.equal(clock.pending, 1, 'no reply timer left, only the hour budget');
});

t.test('subscribe: no reply within replyTimeoutMs rejects; closed() rejects too', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = okx.protocol(options(clock, ['trades:BTC-USDT'], { replyTimeoutMs: 4000 }));
  const w = watch(p.subscribe(io));
  clock.advance(3999);
  await flush();
  t.equal(w.state, 'pending');
  clock.advance(1);
  await flush();
  t.equal(w.state, 'rejected');
  t.equal((w.error as { code?: string }).code, ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT);
  const q = okx.protocol(options(clock, ['trades:BTC-USDT']));
  const done = q.subscribe(io);
  const err = new Error('socket closed');
  q.closed(err);
  await t.rejects(done, err);
});

t.test('subscribe: never more than 480 requests in an hour on one connection', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = okx.protocol(options(clock, instIds(300).map((s) => `tickers:${s}`), { streamsPerSubscribe: 1, replyTimeoutMs: 10_000 }));
  const first = p.subscribe(io);
  t.equal(io.sent.length, 300);
  ackAll(p, io);
  await t.resolves(first);
  clock.advance(30 * 60_000);
  await t.rejects(p.subscribe(io), { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /480/ }, '300 + 300 > 480');
  t.equal(io.sent.length, 300, 'refused before sending anything');
  t.equal(p.requestsSent, 300);
  clock.advance(30 * 60_000);
  const again = p.subscribe(io);
  t.equal(io.sent.length, 600, 'an hour later the budget is back');
  ackAll(p, io, 300);
  await t.resolves(again);
  t.equal(p.requestsSent, 600);

  const tooMany = okx.protocol(options(clock, instIds(481).map((s) => `tickers:${s}`), { streamsPerSubscribe: 1 }));
  const io2 = new RecordingIO();
  await t.rejects(tooMany.subscribe(io2), { code: ErrorCodes.FK_ERR_SUBSCRIBE });
  t.equal(io2.sent.length, 0);
  p.closed(new Error('done'));
});

t.test('onFrame: data first, pong quietly, notice 64008, the rest counted', async (t) => {
  const io = new RecordingIO();
  const p = okx.protocol(options(new FakeClock(), []));
  for (const e of EXAMPLES) p.onFrame(io, e.frame, false, 1);
  t.equal(io.frames.length, EXAMPLES.filter((e) => 'arg' in e.json && 'data' in e.json).length, 'every push goes to the router');
  t.equal(io.notices.length, 1);
  t.match(io.notices[0], /64008.*service upgrade/);
  t.equal(io.unexpectedFrames.length, 2, 'the ack and the error nobody waited for');
  t.same(io.malformedWhy, []);
  p.onFrame(io, Buffer.from('pong'), false, 1);
  t.equal(io.unexpectedFrames.length + io.malformedWhy.length, 2, 'pong is quiet');
  p.onFrame(io, Buffer.from('pon'), false, 1);
  p.onFrame(io, Buffer.from('"pong"'), false, 1);
  p.onFrame(io, Buffer.from('{"arg":{"channel":"a\\"b","instId":"X"},"data":[]}'), false, 1);
  p.onFrame(io, Buffer.from('{"event":"notice","code":"64009","msg":"other"}'), false, 1);
  t.same(io.malformedWhy, ['neither JSON nor pong', 'not a JSON object', 'data frame without a readable arg']);
  t.equal(io.unexpectedFrames.length, 3, 'another notice is only unexpected');
  t.equal(io.notices.length, 1);
});

t.test('client ping: the text ping after 20 s of silence', async (t) => {
  t.same({ everyMs: okx.clientPing!.everyMs, whenIdle: okx.clientPing!.whenIdle, text: okx.clientPing!.text() }, { everyMs: 20_000, whenIdle: true, text: 'ping' });
});

t.test('close codes', async (t) => {
  t.equal(okx.closeCause(4004), 'stale', 'No data received in 30s');
  for (const code of [1008, 1013, 4008, 4009]) t.equal(okx.closeCause(code), 'rate_limited', String(code));
  for (const code of [1000, 1009, 1011, 4005, 4006]) t.equal(okx.closeCause(code), 'server_close', String(code));
});
