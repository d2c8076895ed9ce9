import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import { kucoinSpot, kucoinStatus } from '../src/venues/kucoin/index.js';
import { BULLET_PATH, connectUrl, kucoinClientPing, parseBullet, topicBatches, type KucoinProtocol } from '../src/venues/kucoin/protocol.js';
import { KUCOIN_STREAM_TYPES, nsToMsAt } from '../src/venues/kucoin/streams.js';
import { type FrameKeys, type ProtocolIO, type ProtocolOptions } from '../src/venues/types.js';

// KuCoin spot against its documentation's frames (test/fixtures/kucoin/README.md): stream and key
// readers, the bullet reply, the protocol's token-per-attempt, welcome, subscribe and refusals.

interface Example {
  kind: string;
  json: Record<string, unknown>;
  frame: Buffer;
}

const EXAMPLES: Example[] = readFileSync(fileURLToPath(new URL('./fixtures/kucoin/docs-examples.ndjson', import.meta.url)), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const e = JSON.parse(l) as { kind: string; frame: Record<string, unknown> };
    return { kind: e.kind, json: e.frame, frame: Buffer.from(JSON.stringify(e.frame)) };
  });

function example(kind: string): Example {
  const e = EXAMPLES.find((x) => x.kind === kind);
  if (e === undefined) throw new Error(`no ${kind} example`);
  return e;
}

const scratch = (): FrameKeys => ({ from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 });

function readKeys(frame: Buffer): { id: string | null; ok: boolean; out: FrameKeys } {
  const out = scratch();
  const id = kucoinSpot.readStream(frame, out);
  if (id === null) return { id, ok: false, out };
  const type = kucoinSpot.streamType(kucoinSpot.typeOf(id));
  return { id, ok: type !== null && type.keys(frame, out), out };
}

class FakeClock {
  now = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  readonly setTimeout = (fn: () => void, ms: number): ReturnType<typeof setTimeout> => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, fn });
    return id as unknown as ReturnType<typeof setTimeout>;
  };
  readonly clearTimeout = (h: ReturnType<typeof setTimeout> | undefined): void => {
    this.timers.delete(h as unknown as number);
  };
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, tm] of [...this.timers]) {
      if (tm.at <= this.now) {
        this.timers.delete(id);
        tm.fn();
      }
    }
  }
}

class RecordingIO implements ProtocolIO {
  readonly id = 'c0#1';
  readonly sent: Array<{ text: string; kind: string }> = [];
  readonly frames: Buffer[] = [];
  readonly malformedFrames: Array<{ frame: Buffer; why: string }> = [];
  readonly unexpectedFrames: Buffer[] = [];
  send(text: string, kind: string): void {
    this.sent.push({ text, kind });
  }
  data(frame: Buffer): void {
    this.frames.push(frame);
  }
  malformed(frame: Buffer, why: string): void {
    this.malformedFrames.push({ frame, why });
  }
  shutdownNotice(): void {}
  unexpected(frame: Buffer): void {
    this.unexpectedFrames.push(frame);
  }
}

const io = (): RecordingIO => new RecordingIO();
const framesOf = (x: RecordingIO): Buffer[] => x.frames;

const BULLET = JSON.stringify(example('rest_bullet_public').json);

/** fetch as the bullet endpoint answers it: records the calls. */
function fakeFetch(bodies: string[], calls: string[]): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    calls.push(`${init?.method ?? 'GET'} ${String(input)}`);
    const body = bodies.shift() ?? BULLET;
    return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}

function options(clock: FakeClock, streams: string[], over: Partial<ProtocolOptions> = {}): ProtocolOptions {
  return { base: 'wss://ws-api-spot.kucoin.com', rest: 'https://api.kucoin.com', path: '/', streams, streamsPerSubscribe: 100, replyTimeoutMs: 5000, clock, ...over };
}

async function protocol(clock: FakeClock, streams: string[], fetchFn: typeof fetch, over: Partial<ProtocolOptions> = {}): Promise<KucoinProtocol> {
  const { KucoinProtocol } = await import('../src/venues/kucoin/protocol.js');
  return new KucoinProtocol(options(clock, streams, over), fetchFn);
}

const frame = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

// ---- streams and keys -------------------------------------------------------------------------

t.test('match: the docs example, ordered by its ns time read exactly as ms', async (t) => {
  const r = readKeys(example('trade').frame);
  t.equal(r.id, 'match:BTC-USDT');
  t.ok(r.ok);
  t.equal(r.out.last, 1729843222921, 'ms of "1729843222921000000", not a rounded double');
  t.equal(r.out.time, 1729843222921);
  t.same(kucoinSpot.streamType('match')!.sequence, { kind: 'ordered', field: 'time', ties: true });
});

t.test('nsToMsAt: exact where dividing a double would round', async (t) => {
  const b = Buffer.from('"9007199254740993123456"');
  t.equal(String(nsToMsAt(Buffer.from('"1729843222921999999"'), 0)), '1729843222921', 'digits but the last six, no rounding up');
  t.equal(nsToMsAt(b, 0), Number('9007199254740993'), 'a value over 2^53 ms reads as the nearest double, not via ns');
  t.equal(nsToMsAt(Buffer.from('123'), 0), 0);
  t.ok(Number.isNaN(nsToMsAt(Buffer.from('"x"'), 0)));
  t.ok(Number.isNaN(nsToMsAt(Buffer.from('1'), -1)));
});

t.test('level2: the docs example is a range [sequenceStart, sequenceEnd]', async (t) => {
  const r = readKeys(example('book_delta').frame);
  t.equal(r.id, 'level2:BTC-USDT');
  t.ok(r.ok);
  t.equal(r.out.first, 14701689783);
  t.equal(r.out.last, 14701689783);
  t.equal(r.out.time, 1729816425625);
  t.same(kucoinSpot.streamType('level2')!.sequence, { kind: 'range', field: 'sequence' });
  const wide = Buffer.from(example('book_delta').frame.toString().replace('"sequenceStart":14701689783', '"sequenceStart":14701689780'));
  t.match(readKeys(wide).out, { first: 14701689780, last: 14701689783 });
  const backwards = Buffer.from(example('book_delta').frame.toString().replace('"sequenceStart":14701689783', '"sequenceStart":14701689790'));
  t.notOk(readKeys(backwards).ok, 'start after end is refused');
});

t.test('ticker and snapshot: ordered by their ms time, whichever key order', async (t) => {
  const ticker = frame({ type: 'message', topic: '/market/ticker:BTC-USDT', subject: 'trade.ticker', data: { sequence: '1545896668986', price: '0.08', size: '0.011', bestAsk: '0.08', bestAskSize: '0.18', bestBid: '0.049', bestBidSize: '0.036', Time: 1704873323416 } });
  t.match(readKeys(ticker), { id: 'ticker:BTC-USDT', ok: true, out: { last: 1704873323416 } }, '`type` before `topic`, `Time` spelled with a capital');
  const snap = frame({ topic: '/market/snapshot:ETH-USDT', type: 'message', subject: 'trade.snapshot', data: { sequence: '1', data: { baseCurrency: 'ETH', datetime: 1729843222921, symbol: 'ETH-USDT' } } });
  t.match(readKeys(snap), { id: 'snapshot:ETH-USDT', ok: true, out: { last: 1729843222921 } });
  t.equal(kucoinSpot.streamType('snapshot')!.expectedIntervalMs, 2000);
});

t.test('replies, the depth5 topic and the UTA welcome are not data', async (t) => {
  for (const kind of ['welcome', 'pong', 'book_top', 'rest_bullet_public']) t.equal(kucoinSpot.readStream(example(kind).frame, scratch()), null, kind);
  t.equal(kucoinSpot.readStream(Buffer.from('{"sessionId":"x","message":"welcome","pingInterval":30000}'), scratch()), null);
});

t.test('stream names, types, symbols', async (t) => {
  t.same(KUCOIN_STREAM_TYPES, ['match', 'level2', 'ticker', 'snapshot']);
  for (const ty of KUCOIN_STREAM_TYPES) t.equal(kucoinSpot.typeOf(kucoinSpot.streamName('BTC-USDT', ty)), ty);
  t.equal(kucoinSpot.streamType('level2Depth5'), null);
  t.ok(kucoinSpot.isSymbol('BTC-USDT'));
  t.ok(kucoinSpot.isSymbol('1INCH-USDT'));
  t.notOk(kucoinSpot.isSymbol('BTCUSDT'));
  t.notOk(kucoinSpot.isSymbol('btc-usdt'));
});

t.test('fuzz: the readers never throw on random or truncated input', async (t) => {
  const seeds = EXAMPLES.map((e) => e.frame);
  let n = 0;
  for (let i = 0; i < 4000; i++) {
    const seed = seeds[i % seeds.length]!;
    const b = Buffer.from(seed);
    const cut = b.subarray(0, Math.floor(Math.random() * b.length));
    for (let k = 0; k < 3; k++) cut[Math.floor(Math.random() * Math.max(1, cut.length))] = Math.floor(Math.random() * 256);
    const out = scratch();
    const id = kucoinSpot.readStream(cut, out);
    if (id !== null) kucoinSpot.streamType(kucoinSpot.typeOf(id))?.keys(cut, out);
    n++;
  }
  t.equal(n, 4000);
});

// ---- bullet, URL, batches ---------------------------------------------------------------------

t.test('the bullet reply: token, endpoint, ping interval and timeout', async (t) => {
  const b = parseBullet(BULLET);
  t.equal(b.endpoint, 'wss://ws-api-spot.kucoin.com/');
  t.equal(b.pingIntervalMs, 18000);
  t.equal(b.pingTimeoutMs, 10000);
  t.match(b.token, /^2neAiuYvAU61/);
  const url = new URL(connectUrl(b.endpoint, b.token, 'abc123'));
  t.equal(url.searchParams.get('token'), b.token, 'the token survives the query encoding');
  t.equal(url.searchParams.get('connectId'), 'abc123');
  for (const bad of ['nope', '{"code":"400100","msg":"bad"}', '{"code":"200000","data":{"instanceServers":[]}}', '{"code":"200000","data":{"token":"tok-secret","instanceServers":[{"endpoint":"http://x"}]}}']) {
    const err = (() => {
      try {
        parseBullet(bad);
        return null;
      } catch (e) {
        return e as Error & { code?: string };
      }
    })();
    t.equal(err?.code, ErrorCodes.FK_ERR_CONNECT, bad);
    t.notMatch(err?.message ?? '', /tok-secret/, 'the token is never quoted');
  }
});

t.test('topicBatches: one topic per type, at most 100 symbols each', async (t) => {
  const syms = Array.from({ length: 150 }, (_, i) => `C${i}-USDT`);
  const batches = topicBatches([...syms.map((s) => `level2:${s}`), 'match:BTC-USDT'], 100);
  t.same(batches.map((b) => b.streams.length), [100, 50, 1]);
  t.match(batches[0]!.topic, /^\/market\/level2:C0-USDT,C1-USDT,/);
  t.equal(batches[2]!.topic, '/market/match:BTC-USDT');
  t.same(topicBatches(['ticker:A-B', 'ticker:C-D'], 1000).map((b) => b.topic), ['/market/ticker:A-B,C-D'], 'never more than 100 whatever the option');
});

t.test('status: open and cancelonly are up, close is maintenance', async (t) => {
  t.same(kucoinStatus('{"code":"200000","data":{"status":"open","msg":""}}'), { status: 0, msg: 'open' });
  t.same(kucoinStatus('{"code":"200000","data":{"status":"cancelonly","msg":""}}'), { status: 0, msg: 'cancelonly' });
  t.same(kucoinStatus('{"code":"200000","data":{"status":"close","msg":"upgrade"}}'), { status: 1, msg: 'upgrade' });
  t.equal(kucoinStatus('{}'), null);
  t.equal(kucoinStatus('x'), null);
});

t.test('the ping is KuCoin JSON, a fresh id each time', async (t) => {
  const a = JSON.parse(kucoinClientPing.text()) as { id: string; type: string };
  const b = JSON.parse(kucoinClientPing.text()) as { id: string; type: string };
  t.equal(a.type, 'ping');
  t.not(a.id, b.id);
  t.equal(kucoinClientPing.whenIdle, false);
});

// ---- the protocol -----------------------------------------------------------------------------

t.test('protocol: a new token per protocol (per attempt), the reply sets the ping interval', async (t) => {
  const calls: string[] = [];
  const clock = new FakeClock();
  const fetchFn = fakeFetch([BULLET.replace('"pingInterval":18000', '"pingInterval":500'), BULLET], calls);
  const p1 = await protocol(clock, ['match:BTC-USDT'], fetchFn);
  const u1 = new URL(await p1.url());
  t.same(calls, [`POST https://api.kucoin.com${BULLET_PATH}`]);
  t.equal(u1.origin + u1.pathname, 'wss://ws-api-spot.kucoin.com/', 'the endpoint of the reply');
  t.equal(p1.pingIntervalMs, 500);
  t.equal(p1.pingTimeoutMs, 10000);
  const p2 = await protocol(clock, ['match:BTC-USDT'], fetchFn);
  const u2 = new URL(await p2.url());
  t.equal(calls.length, 2, 'the next attempt asks again');
  t.not(u1.searchParams.get('connectId'), u2.searchParams.get('connectId'), 'a new connectId too');
  await t.rejects((await protocol(clock, [], fetchFn, { rest: undefined })).url(), { code: ErrorCodes.FK_ERR_CONNECT });
  const failing = (async () => new Response('{"code":"429000","msg":"Too many requests"}', { status: 429 })) as typeof fetch;
  await t.rejects((await protocol(clock, [], failing)).url(), { code: ErrorCodes.FK_ERR_CONNECT, message: /HTTP 429/ });
});

t.test('protocol: nothing is sent before welcome; then one request per topic batch, acked by id', async (t) => {
  const clock = new FakeClock();
  const p = await protocol(clock, ['match:BTC-USDT', 'match:ETH-USDT', 'level2:BTC-USDT'], fakeFetch([], []));
  const connectId = new URL(await p.url()).searchParams.get('connectId')!;
  const x = io();
  // The welcome may arrive before subscribe() runs.
  p.onFrame(x, frame({ id: connectId, type: 'welcome' }), false, 1);
  const done = p.subscribe(x);
  await new Promise((r) => setImmediate(r));
  const reqs = x.sent.map((s) => JSON.parse(s.text) as { id: string; type: string; topic: string; privateChannel: boolean; response: boolean });
  t.same(reqs.map((r) => r.topic), ['/market/match:BTC-USDT,ETH-USDT', '/market/level2:BTC-USDT']);
  t.ok(reqs.every((r) => r.type === 'subscribe' && r.privateChannel === false && r.response === true));
  t.equal(p.requestsSent, 2);
  for (const r of reqs) p.onFrame(x, frame({ id: r.id, type: 'ack' }), false, 2);
  await done;
  t.equal(clock.pending, 0, 'no timer left');
  p.onFrame(x, example('trade').frame, false, 3);
  p.onFrame(x, example('pong').frame, false, 3);
  t.equal(framesOf(x).length, 1, 'data after welcome goes to the router; the pong is swallowed');
});

t.test('protocol: data before the welcome is not recorded; no welcome in time fails the attempt; any welcome counts, unlogged', async (t) => {
  const clock = new FakeClock();
  const p = await protocol(clock, ['match:BTC-USDT'], fakeFetch([], []));
  await p.url();
  const x = io();
  p.onFrame(x, example('trade').frame, false, 1);
  t.equal(x.malformedFrames[0]?.why, 'data before welcome');
  const done = p.subscribe(x);
  clock.advance(5000);
  await t.rejects(done, { code: ErrorCodes.FK_ERR_CONNECT_TIMEOUT, message: /no KuCoin welcome within 5000 ms/ });

  const q = await protocol(clock, ['match:BTC-USDT'], fakeFetch([], []));
  await q.url();
  const y = io();
  q.onFrame(y, frame({ id: 'not-our-connect-id', type: 'welcome' }), false, 1);
  const sub = q.subscribe(y);
  await new Promise((r) => setImmediate(r));
  t.equal(y.sent.length, 1, 'the welcome on our socket counts even with another id');
  q.onFrame(y, frame({ id: (JSON.parse(y.sent[0]!.text) as { id: string }).id, type: 'ack' }), false, 2);
  await sub;
  q.onFrame(y, frame({ id: 'again', type: 'welcome' }), false, 3);
  t.equal(y.unexpectedFrames.length + y.malformedFrames.length, 0, 'welcomes are never logged (their id is the connectId)');
});

t.test('protocol: 401 token is expired before the welcome fails the attempt, before or after subscribe() runs', async (t) => {
  for (const early of [true, false]) {
    const clock = new FakeClock();
    const p = await protocol(clock, ['match:BTC-USDT'], fakeFetch([], []));
    const connectId = new URL(await p.url()).searchParams.get('connectId')!;
    const x = io();
    const refusal = frame({ id: connectId, type: 'error', code: 401, data: 'token is expired' });
    if (early) p.onFrame(x, refusal, false, 1);
    const done = p.subscribe(x);
    if (!early) p.onFrame(x, refusal, false, 1);
    await t.rejects(done, { code: ErrorCodes.FK_ERR_CONNECT, message: 'KuCoin refused the connection: 401 token is expired' });
    t.equal(x.sent.length, 0, 'no subscribe sent');
    t.equal(clock.pending, 0);
  }
});

t.test('protocol: a refused subscribe (509, 404) fails it; a late error is malformed; closed() fails what waits', async (t) => {
  const clock = new FakeClock();
  const p = await protocol(clock, ['match:BTC-USDT', 'level2:BTC-USDT'], fakeFetch([], []));
  const connectId = new URL(await p.url()).searchParams.get('connectId')!;
  const x = io();
  p.onFrame(x, frame({ id: connectId, type: 'welcome' }), false, 1);
  const done = p.subscribe(x);
  await new Promise((r) => setImmediate(r));
  const [a] = x.sent.map((s) => JSON.parse(s.text) as { id: string });
  p.onFrame(x, frame({ id: a!.id, type: 'error', code: 509, data: 'exceed max subscription count limitation of 100 per time' }), false, 2);
  await t.rejects(done, { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /509 exceed max subscription/ });
  t.equal(clock.pending, 0, 'the other request stops waiting too');
  p.onFrame(x, frame({ type: 'error', code: 500, data: 'internal' }), false, 3);
  t.match(x.malformedFrames.at(-1)?.why, /error 500/);
  p.onFrame(x, Buffer.from('not json'), false, 3);
  t.equal(x.malformedFrames.at(-1)?.why, 'not JSON');

  const q = await protocol(clock, ['match:BTC-USDT'], fakeFetch([], []));
  const id2 = new URL(await q.url()).searchParams.get('connectId')!;
  const y = io();
  q.onFrame(y, frame({ id: id2, type: 'welcome' }), false, 1);
  const waiting = q.subscribe(y);
  await new Promise((r) => setImmediate(r));
  const err = new Error('gone');
  q.closed(err);
  await t.rejects(waiting, err);
  t.equal(clock.pending, 0);
});

t.test('protocol: live add and remove use the same requests', async (t) => {
  const clock = new FakeClock();
  const p = await protocol(clock, [], fakeFetch([], []));
  const connectId = new URL(await p.url()).searchParams.get('connectId')!;
  const x = io();
  p.onFrame(x, frame({ id: connectId, type: 'welcome' }), false, 1);
  await p.subscribe(x);
  const added = p.add(x, ['ticker:BTC-USDT']);
  const r1 = JSON.parse(x.sent.at(-1)!.text) as { id: string; type: string; topic: string };
  t.match(r1, { type: 'subscribe', topic: '/market/ticker:BTC-USDT' });
  p.onFrame(x, frame({ id: r1.id, type: 'ack' }), false, 2);
  await added;
  const removed = p.remove(x, ['ticker:BTC-USDT']);
  const r2 = JSON.parse(x.sent.at(-1)!.text) as { id: string; type: string };
  t.equal(r2.type, 'unsubscribe');
  p.onFrame(x, frame({ id: r2.id, type: 'ack' }), false, 3);
  await removed;
});
