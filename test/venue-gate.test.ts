import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import { ServerClock, gateClock } from '../src/venues/gate/clock.js';
import { gateSpot } from '../src/venues/gate/index.js';
import { GateProtocol, gateRequests } from '../src/venues/gate/protocol.js';
import { GATE_STREAM_TYPES } from '../src/venues/gate/streams.js';
import { getVenue } from '../src/venues/index.js';
import { KEY_RESET, type FrameKeys, type ProtocolIO, type ProtocolOptions } from '../src/venues/types.js';

// ---- fixtures and fakes -----------------------------------------------------------------------

interface Example {
  kind: string;
  /** The frame's bytes exactly as the line holds them (JSON.parse would drop the duplicate key). */
  frame: Buffer;
  json: Record<string, unknown>;
}

/** Gate's documentation examples (test/fixtures/gate/README.md), cut out of each line's text. */
function examples(): Example[] {
  const path = fileURLToPath(new URL('./fixtures/gate/docs-examples.ndjson', import.meta.url));
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const at = l.indexOf('"frame":') + '"frame":'.length;
      const raw = l.slice(at, l.lastIndexOf('}'));
      const e = JSON.parse(l) as { kind: string; frame: Record<string, unknown> };
      return { kind: e.kind, frame: Buffer.from(raw), json: e.frame };
    });
}

const EXAMPLES = examples();

function example(kind: string, channel?: string): Buffer {
  const e = EXAMPLES.find((x) => x.kind === kind && (channel === undefined || x.json.channel === channel));
  if (e === undefined) throw new Error(`no ${kind} example`);
  return e.frame;
}

function scratch(): FrameKeys {
  return { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
}

function readKeys(frame: Buffer): { id: string | null; ok: boolean; out: FrameKeys } {
  const out = scratch();
  const id = gateSpot.readStream(frame, out);
  if (id === null) return { id, ok: false, out };
  const type = gateSpot.streamType(gateSpot.typeOf(id));
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

class RecordingIO implements ProtocolIO {
  readonly id = 'c0#1';
  readonly sent: Array<{ text: string; kind: string; json: Record<string, unknown> }> = [];
  readonly frames: Buffer[] = [];
  readonly malformedWhy: string[] = [];
  readonly unexpectedFrames: Buffer[] = [];
  send(text: string, kind: string): void {
    this.sent.push({ text, kind, json: JSON.parse(text) as Record<string, unknown> });
  }
  data(frame: Buffer): void {
    this.frames.push(frame);
  }
  malformed(_frame: Buffer, why: string): void {
    this.malformedWhy.push(why);
  }
  shutdownNotice(): void {}
  unexpected(frame: Buffer): void {
    this.unexpectedFrames.push(frame);
  }
}

function options(clock: FakeClock, streams: string[]): ProtocolOptions {
  return { base: 'wss://api.gateio.ws', path: '/ws/v4/', streams, streamsPerSubscribe: 1, replyTimeoutMs: 5000, clock };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---- the venue --------------------------------------------------------------------------------

t.test('name, endpoints, route, limits and heartbeat', async (t) => {
  t.equal(getVenue('gate-spot'), gateSpot, 'registered');
  t.equal(gateSpot.endpoints.stream, 'wss://api.gateio.ws');
  t.equal(gateSpot.combinedPath, '/ws/v4/');
  t.equal(gateSpot.systemStatusPath, null);
  t.equal(gateSpot.limits.pongTimeoutMs, 60_000, 'the one-minute silent timeout');
  t.ok(gateSpot.clientPing !== null && gateSpot.clientPing.everyMs < 60_000 / 2, 'pings well inside the minute');
  t.equal(gateSpot.clientPing?.whenIdle, false, 'busy or not: only client messages reset Gate’s timer');
  t.equal(gateSpot.recordingShape, 'wrap');
  t.same(GATE_STREAM_TYPES, ['trades', 'order_book_update', 'book_ticker']);
  t.same(gateSpot.streamType('trades')?.sequence, { kind: 'contiguous', field: 'id_market' });
  t.same(gateSpot.streamType('order_book_update')?.sequence, { kind: 'range', field: 'u' });
  t.same(gateSpot.streamType('book_ticker')?.sequence, { kind: 'ordered', field: 'u' });
  t.equal(gateSpot.streamType('spot.obu'), null);
  t.equal(gateSpot.streamName('BTC_USDT', 'trades'), 'trades:BTC_USDT');
  t.equal(gateSpot.typeOf('order_book_update:BTC_USDT'), 'order_book_update');
  t.ok(gateSpot.isSymbol('BTC_USDT') && gateSpot.isSymbol('1INCH_USDT'));
  t.notOk(gateSpot.isSymbol('BTCUSDT') || gateSpot.isSymbol('btc_usdt') || gateSpot.isSymbol('BTC-USDT'));
  t.equal(gateSpot.closeCause(1008), 'rate_limited');
  t.equal(gateSpot.closeCause(1000), 'server_close');
});

t.test('readStream names the three data channels and nothing else', async (t) => {
  t.equal(readKeys(example('trade')).id, 'trades:GT_USDT');
  t.equal(readKeys(example('book_snapshot', 'spot.order_book_update')).id, 'order_book_update:BTC_USDT');
  t.equal(readKeys(example('book_ticker')).id, 'book_ticker:BTC_USDT');
  for (const kind of ['pong', 'subscribe_ack', 'error']) t.equal(gateSpot.readStream(example(kind), scratch()), null, `${kind} is not data`);
  // spot.obu has no "event": not one of ours.
  t.equal(gateSpot.readStream(example('book_delta'), scratch()), null, 'spot.obu push (no event) is not read');
});

t.test('spot.trades: the duplicate id_market of Gate’s own example does not move the sequence', async (t) => {
  const frame = example('trade');
  const text = frame.toString();
  t.equal(text.split('"id_market":').length - 1, 2, 'the fixture keeps both id_market keys');
  t.equal((JSON.parse(text) as { result: { id_market: number } }).result.id_market, 5736713, 'JSON.parse keeps the last one, which contradicts range');
  const { ok, out } = readKeys(frame);
  t.ok(ok);
  t.equal(out.first, 2390902, 'first from range');
  t.equal(out.last, 2390902, 'last from range, not the duplicate');
  t.equal(out.time, 1606292218213, 'create_time_ms, decimals dropped');
  // Without range: the first id_market, never the duplicate at the end.
  const noRange = Buffer.from(text.replace('"range":"2390902-2390902",', ''));
  const r = readKeys(noRange);
  t.ok(r.ok);
  t.equal(r.out.first, 2390902);
  t.equal(r.out.last, 2390902);
  // A range over several trades.
  const several = Buffer.from(text.replace('"range":"2390902-2390902"', '"range":"2390902-2390905"'));
  t.match(readKeys(several).out, { first: 2390902, last: 2390905 });
  t.notOk(readKeys(Buffer.from(text.replace('"range":"2390902-2390902"', '"range":"2390905-2390902"'))).ok, 'a backwards range is refused');
  t.notOk(readKeys(Buffer.from(text.replace('"range":"2390902-2390902"', '"range":"x"'))).ok, 'an unreadable range is refused');
});

t.test('spot.order_book_update: U/u range, full:true flagged as a new epoch', async (t) => {
  const full = readKeys(example('book_snapshot', 'spot.order_book_update'));
  t.ok(full.ok);
  t.match(full.out, { first: 48776301, last: 48776306, time: 1606294781123, flags: KEY_RESET });
  const inc = Buffer.from(example('book_snapshot', 'spot.order_book_update').toString().replace('"full":true,', ''));
  const r = readKeys(inc);
  t.ok(r.ok);
  t.equal(r.out.flags, 0, 'an incremental push is no reset');
  t.notOk(readKeys(Buffer.from(inc.toString().replace('"U":48776301', '"U":48776399'))).ok, 'U after u is refused');
});

t.test('spot.book_ticker: ordered by u', async (t) => {
  const r = readKeys(example('book_ticker'));
  t.ok(r.ok);
  t.match(r.out, { first: 48733182, last: 48733182, time: 1606293275123, flags: 0 });
});

t.test('fuzz: random bytes, truncations and mutations never throw', async (t) => {
  const frames = [example('trade'), example('book_snapshot', 'spot.order_book_update'), example('book_ticker'), example('pong')];
  let n = 0;
  for (let i = 0; i < 3000; i++) {
    const base = frames[i % frames.length]!;
    let f: Buffer;
    if (i % 3 === 0) f = base.subarray(0, Math.floor(Math.random() * base.length));
    else if (i % 3 === 1) {
      f = Buffer.from(base);
      for (let k = 0; k < 4; k++) f[Math.floor(Math.random() * f.length)] = Math.floor(Math.random() * 256);
    } else f = Buffer.from(Array.from({ length: Math.floor(Math.random() * 200) }, () => Math.floor(Math.random() * 256)));
    readKeys(f);
    n++;
  }
  t.equal(n, 3000);
});

// ---- the protocol -----------------------------------------------------------------------------

t.test('gateRequests: one request per book pair, trades and tickers batched', async (t) => {
  const reqs = gateRequests(['trades:BTC_USDT', 'trades:ETH_USDT', 'order_book_update:BTC_USDT', 'order_book_update:ETH_USDT', 'book_ticker:BTC_USDT']);
  t.same(reqs.map((r) => [r.channel, r.payload]), [
    ['spot.trades', ['BTC_USDT', 'ETH_USDT']],
    ['spot.order_book_update', ['BTC_USDT', '100ms']],
    ['spot.order_book_update', ['ETH_USDT', '100ms']],
    ['spot.book_ticker', ['BTC_USDT']],
  ]);
  const many = gateRequests(Array.from({ length: 250 }, (_, i) => `trades:C${i}_USDT`));
  t.same(many.map((r) => r.payload.length), [100, 100, 50]);
});

t.test('subscribe: ping first, then every request stamped with the server’s clock from the pong', async (t) => {
  const clock = new FakeClock();
  const local = 1_700_000_000_000;
  const server = new ServerClock(() => local);
  const p = new GateProtocol(options(clock, ['trades:BTC_USDT', 'order_book_update:BTC_USDT']), server, () => local);
  const io = new RecordingIO();
  const done = p.subscribe(io);
  t.equal(io.sent.length, 1, 'only the ping before the pong');
  t.match(io.sent[0]!.json, { channel: 'spot.ping', time: local / 1000 });
  t.equal(io.sent[0]!.kind, 'ping');
  // The server's clock is 5 minutes ahead of this host.
  const serverS = local / 1000 + 300;
  p.onFrame(io, Buffer.from(`{"time":${serverS},"channel":"spot.pong","event":"","error":null,"result":null}`), false, 0);
  await tick();
  t.equal(io.sent.length, 3);
  for (const s of io.sent.slice(1)) {
    t.equal(s.json.time, serverS, `${String(s.json.channel)}: time is the server's`);
    t.equal(s.json.event, 'subscribe');
  }
  const ids = io.sent.slice(1).map((s) => s.json.id as number);
  t.same(io.sent.slice(1).map((s) => s.json.payload), [['BTC_USDT'], ['BTC_USDT', '100ms']]);
  for (const [i, id] of ids.entries()) {
    const ch = io.sent[i + 1]!.json.channel as string;
    p.onFrame(io, Buffer.from(`{"time":${serverS},"time_ms":${serverS * 1000 + 5},"id":${id},"conn_id":"x","channel":"${ch}","event":"subscribe","error":null,"result":{"status":"success"}}`), false, 0);
  }
  await done;
  t.equal(server.offsetMs, 300_005, 'the ack’s time_ms refines the offset');
  t.equal(p.requestsSent, 2);
  t.equal(clock.pending, 0, 'no timer left');
  t.same(io.malformedWhy, []);
});

t.test('subscribe: a reply without an id settles the oldest request on its channel (the docs’ ack)', async (t) => {
  const clock = new FakeClock();
  const p = new GateProtocol(options(clock, ['trades:BTC_USDT']), new ServerClock(), Date.now);
  const io = new RecordingIO();
  const done = p.subscribe(io);
  p.onFrame(io, example('pong'), false, 0);
  await tick();
  p.onFrame(io, Buffer.from('{"time":1611541000,"time_ms":1611541000001,"channel":"spot.trades","event":"subscribe","error":null,"result":{"status":"success"}}'), false, 0);
  await done;
  t.pass('resolved');
});

t.test('subscribe: an error reply rejects with FK_ERR_SUBSCRIBE; no pong or no ack times out; closed() rejects', async (t) => {
  const clock = new FakeClock();
  const errP = new GateProtocol(options(clock, ['order_book_update:BTC_USDT']), new ServerClock(), Date.now);
  const io = new RecordingIO();
  const failed = errP.subscribe(io);
  errP.onFrame(io, example('pong'), false, 0);
  await tick();
  const id = io.sent[1]!.json.id as number;
  errP.onFrame(io, Buffer.from(`{"time":1,"time_ms":1000,"id":${id},"channel":"spot.order_book_update","event":"subscribe","error":{"code":2,"message":"invalid argument: time"},"result":{"status":"fail"}}`), false, 0);
  await t.rejects(failed, { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /2 invalid argument: time/ });

  const silent = new GateProtocol(options(clock, ['trades:BTC_USDT']), new ServerClock(), Date.now);
  const noPong = silent.subscribe(new RecordingIO());
  clock.advance(5000);
  await t.rejects(noPong, { code: ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, message: /no spot.pong/ });

  const noAck = new GateProtocol(options(clock, ['trades:BTC_USDT']), new ServerClock(), Date.now);
  const io2 = new RecordingIO();
  const waiting = noAck.subscribe(io2);
  noAck.onFrame(io2, example('pong'), false, 0);
  await tick();
  clock.advance(5000);
  await t.rejects(waiting, { code: ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, message: /no reply to Gate subscribe/ });

  const closing = new GateProtocol(options(clock, ['trades:BTC_USDT']), new ServerClock(), Date.now);
  const pending = closing.subscribe(new RecordingIO());
  closing.closed(new Error('gone'));
  await t.rejects(pending, /gone/);
  t.equal(clock.pending, 0, 'no timer left');
});

t.test('onFrame: data to the router, pongs quietly, unreadable updates counted, the rest unexpected', async (t) => {
  const p = new GateProtocol(options(new FakeClock(), []), new ServerClock(), Date.now);
  const io = new RecordingIO();
  p.onFrame(io, example('trade'), false, 0);
  p.onFrame(io, example('book_ticker'), false, 0);
  p.onFrame(io, example('pong'), false, 0);
  p.onFrame(io, Buffer.from('{"time":1,"channel":"spot.trades","event":"update","result":{"id":1}}'), false, 0);
  p.onFrame(io, Buffer.from('not json'), false, 0);
  p.onFrame(io, example('book_delta'), false, 0);
  t.equal(io.frames.length, 2);
  t.equal(io.malformedWhy.length, 2);
  t.equal(io.unexpectedFrames.length, 1, 'spot.obu is well-formed but not ours');
});

t.test('live add and remove: subscribe and unsubscribe requests, acked', async (t) => {
  const p = new GateProtocol(options(new FakeClock(), []), new ServerClock(), Date.now);
  const io = new RecordingIO();
  const added = p.add(io, ['book_ticker:ETH_USDT']);
  const removed = p.remove(io, ['trades:BTC_USDT']);
  t.same(io.sent.map((s) => [s.json.event, s.json.channel]), [['subscribe', 'spot.book_ticker'], ['unsubscribe', 'spot.trades']]);
  for (const s of io.sent) p.onFrame(io, Buffer.from(`{"time":1,"time_ms":1000,"id":${s.json.id as number},"channel":"${String(s.json.channel)}","event":"${String(s.json.event)}","error":null,"result":{"status":"success"}}`), false, 0);
  await Promise.all([added, removed]);
});

t.test('the client ping carries the shared server clock', async (t) => {
  const before = gateClock.offsetMs;
  t.teardown(() => {
    gateClock.offsetMs = before;
  });
  gateClock.observe(Date.now() + 120_000);
  const ping = JSON.parse(gateSpot.clientPing!.text()) as { time: number; channel: string };
  t.equal(ping.channel, 'spot.ping');
  t.ok(Math.abs(ping.time - (Date.now() + 120_000) / 1000) < 2, 'two minutes ahead, like the server');
});
