import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import type { Missed } from '../src/ledger/types.js';
import { coinbase } from '../src/venues/coinbase/index.js';
import { CoinbaseProtocol, coinbaseRequests } from '../src/venues/coinbase/protocol.js';
import { COINBASE_STREAM_TYPES, isoMsAt } from '../src/venues/coinbase/streams.js';
import { getVenue } from '../src/venues/index.js';
import { KEY_RESET, type FrameKeys, type ProtocolIO, type ProtocolOptions } from '../src/venues/types.js';

interface Example {
  kind: string;
  json: Record<string, unknown>;
  frame: Buffer;
}

/** Coinbase's documentation examples (test/fixtures/coinbase/README.md), compact as on the wire. */
const EXAMPLES: Example[] = readFileSync(fileURLToPath(new URL('./fixtures/coinbase/docs-examples.ndjson', import.meta.url)), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const e = JSON.parse(l) as { kind: string; frame: Record<string, unknown> };
    return { kind: e.kind, json: e.frame, frame: Buffer.from(JSON.stringify(e.frame)) };
  });

function example(kind: string, pred: (j: Record<string, unknown>) => boolean = () => true): Buffer {
  const e = EXAMPLES.find((x) => x.kind === kind && pred(x.json));
  if (e === undefined) throw new Error(`no ${kind} example`);
  return e.frame;
}

const advanced = (j: Record<string, unknown>): boolean => 'channel' in j;
const scratch = (): FrameKeys => ({ from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 });

function readKeys(frame: Buffer): { id: string | null; ok: boolean; out: FrameKeys } {
  const out = scratch();
  const id = coinbase.readStream(frame, out);
  if (id === null) return { id, ok: false, out };
  const type = coinbase.streamType(coinbase.typeOf(id));
  return { id, ok: type !== null && type.keys(frame, out), out };
}

/** A frame of `channel` with `sequence_num` n (the envelope Coinbase uses for every message). */
function withSeq(frame: Buffer, n: number): Buffer {
  return Buffer.from(frame.toString().replace(/"sequence_num":\d+/, `"sequence_num":${n}`));
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
    for (const [id, e] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (e.at > until) break;
      this.timers.delete(id);
      this.now = e.at;
      e.fn();
    }
    this.now = until;
  }
  get pending(): number {
    return this.timers.size;
  }
}

class RecordingIO implements ProtocolIO {
  readonly id = 'c0#1';
  readonly sent: Array<{ kind: string; json: Record<string, unknown> }> = [];
  readonly frames: Buffer[] = [];
  readonly malformedWhy: string[] = [];
  readonly unexpectedFrames: Buffer[] = [];
  readonly gaps: Array<{ missed: Missed; detail: string }> = [];
  send(text: string, kind: string): void {
    this.sent.push({ kind, json: JSON.parse(text) as Record<string, unknown> });
  }
  data(frame: Buffer): void {
    this.frames.push(frame);
  }
  malformed(_f: Buffer, why: string): void {
    this.malformedWhy.push(why);
  }
  shutdownNotice(): void {}
  unexpected(frame: Buffer): void {
    this.unexpectedFrames.push(frame);
  }
  connectionGap(missed: Missed, detail: string): void {
    this.gaps.push({ missed, detail });
  }
}

function options(clock: FakeClock, streams: string[]): ProtocolOptions {
  return { base: 'wss://advanced-trade-ws.coinbase.com', path: '/', streams, streamsPerSubscribe: 16, replyTimeoutMs: 5000, clock };
}

function subscriptions(seq: number, subs: Record<string, string[]>): Buffer {
  return Buffer.from(`{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":${seq},"events":[{"subscriptions":${JSON.stringify(subs)}}]}`);
}

t.test('name, endpoints, limits, streams', async (t) => {
  t.equal(getVenue('coinbase'), coinbase);
  t.equal(coinbase.endpoints.stream, 'wss://advanced-trade-ws.coinbase.com');
  t.equal(coinbase.clientPing, null, 'no client ping: the heartbeats channel keeps it alive');
  t.equal(coinbase.limits.serverPingIntervalMs, 1000, 'heartbeats every second');
  t.ok(coinbase.limits.streamsPerConnection <= 16, 'at most 16 level2 products per connection [I-C2]');
  const messages = 4 + 1; // at most one message per channel (16 products each) + heartbeats
  t.ok(messages / (coinbase.limits.messagesPerSecond - 1) < 2, 'every subscribe message leaves within 2 s of the upgrade (one slot a second stays for pongs)');
  t.same(COINBASE_STREAM_TYPES, ['market_trades', 'level2', 'ticker', 'candles']);
  for (const type of COINBASE_STREAM_TYPES) t.same(coinbase.streamType(type)?.sequence, { kind: 'ordered', field: 'timestamp', ties: true });
  t.equal(coinbase.streamType('heartbeats'), null, 'heartbeats is not a stream: always on, never configured');
  t.equal(coinbase.streamName('BTC-USD', 'level2'), 'level2:BTC-USD');
  t.equal(coinbase.typeOf('market_trades:ETH-USD'), 'market_trades');
  t.ok(coinbase.isSymbol('BTC-USD') && !coinbase.isSymbol('BTC_USD') && !coinbase.isSymbol('btc-usd'));
  t.equal(coinbase.closeCause(1008), 'rate_limited');
  t.equal(coinbase.closeCause(1000), 'server_close');
});

t.test('readStream and keys: every data channel of the docs, level2 on l2_data; heartbeats and subscriptions are not data', async (t) => {
  const trade = readKeys(example('trade', advanced));
  t.equal(trade.id, 'market_trades:ETH-USD');
  t.ok(trade.ok);
  t.equal(trade.out.last, Date.UTC(2023, 1, 9, 20, 19, 35, 396), 'timestamp to the ms');
  t.equal(trade.out.flags, KEY_RESET, 'a snapshot event');
  const book = readKeys(example('book_snapshot'));
  t.equal(book.id, 'level2:BTC-USD');
  t.match(book.out, { last: Date.UTC(2023, 1, 9, 20, 32, 50, 714), flags: KEY_RESET });
  t.equal(readKeys(example('ticker')).id, 'ticker:BTC-USD');
  t.equal(readKeys(example('candles')).id, 'candles:ETH-USD');
  const update = Buffer.from(example('book_snapshot').toString().replace('"type":"snapshot"', '"type":"update"'));
  t.equal(readKeys(update).out.flags, 0, 'an update is no reset');
  t.equal(coinbase.readStream(example('heartbeat', advanced), scratch()), null);
  t.equal(coinbase.readStream(example('subscriptions'), scratch()), null);
  t.equal(coinbase.readStream(example('heartbeat', (j) => !advanced(j)), scratch()), null, 'the Exchange ws-feed is another feed');
});

t.test('isoMsAt: RFC 3339 to ms without a Date, nanoseconds dropped, anything else NaN', async (t) => {
  const at = (s: string): number => isoMsAt(Buffer.from(`"${s}"`), 0);
  for (const s of ['2023-02-09T20:19:35.39625135Z', '1970-01-01T00:00:00Z', '2024-02-29T23:59:59.999Z', '2026-12-02T04:30:00.5Z']) t.equal(at(s), Math.floor(Date.parse(s.replace(/(\.\d{3})\d+/, '$1'))), s);
  for (const s of ['2023-02-09', '2023-13-09T20:19:35Z', '2023-02-09T20:19:35+01:00', 'x023-02-09T20:19:35Z']) t.ok(Number.isNaN(at(s)), s);
});

t.test('fuzz: random bytes, truncations and mutations never throw', async (t) => {
  const frames = EXAMPLES.map((e) => e.frame);
  const p = new CoinbaseProtocol(options(new FakeClock(), []));
  const io = new RecordingIO();
  for (let i = 0; i < 3000; i++) {
    const base = frames[i % frames.length]!;
    let f: Buffer;
    if (i % 3 === 0) f = base.subarray(0, Math.floor(Math.random() * base.length));
    else if (i % 3 === 1) {
      f = Buffer.from(base);
      for (let k = 0; k < 4; k++) f[Math.floor(Math.random() * f.length)] = Math.floor(Math.random() * 256);
    } else f = Buffer.from(Array.from({ length: Math.floor(Math.random() * 200) }, () => Math.floor(Math.random() * 256)));
    readKeys(f);
    p.onFrame(io, f, false, 0);
  }
  t.pass('no throw');
});

t.test('coinbaseRequests: heartbeats first, one channel per message, products batched', async (t) => {
  const reqs = coinbaseRequests(['level2:BTC-USD', 'market_trades:BTC-USD', 'level2:ETH-USD', 'ticker:BTC-USD'], 16, true);
  t.same(reqs, [
    { channel: 'heartbeats' },
    { channel: 'level2', product_ids: ['BTC-USD', 'ETH-USD'] },
    { channel: 'market_trades', product_ids: ['BTC-USD'] },
    { channel: 'ticker', product_ids: ['BTC-USD'] },
  ]);
  t.same(coinbaseRequests(['level2:A-USD', 'level2:B-USD', 'level2:C-USD'], 2, false).map((r) => r.product_ids), [['A-USD', 'B-USD'], ['C-USD']]);
});

t.test('subscribe: every message at once, confirmed by the subscriptions listing', async (t) => {
  const clock = new FakeClock();
  const p = new CoinbaseProtocol(options(clock, ['level2:BTC-USD', 'market_trades:BTC-USD']));
  const io = new RecordingIO();
  let done = false;
  const sub = p.subscribe(io).then(() => (done = true));
  t.same(io.sent.map((s) => s.json), [
    { type: 'subscribe', channel: 'heartbeats' },
    { type: 'subscribe', product_ids: ['BTC-USD'], channel: 'level2' },
    { type: 'subscribe', product_ids: ['BTC-USD'], channel: 'market_trades' },
  ]);
  t.ok(io.sent.every((s) => s.kind === 'subscribe'));
  // The first listing confirms heartbeats even without naming it (how it is listed is not documented).
  p.onFrame(io, subscriptions(0, { level2: ['BTC-USD'] }), false, 0);
  p.onFrame(io, subscriptions(1, { heartbeats: ['heartbeats'], level2: ['BTC-USD'] }), false, 0);
  await new Promise((r) => setImmediate(r));
  t.notOk(done, 'market_trades not yet listed');
  p.onFrame(io, subscriptions(2, { heartbeats: ['heartbeats'], level2: ['BTC-USD'], market_trades: ['BTC-USD'] }), false, 0);
  await sub;
  t.equal(p.requestsSent, 3);
  t.equal(clock.pending, 0);
  t.same(io.gaps, []);
});

t.test('subscribe: an error message refuses what waits; no confirmation times out; closed() rejects', async (t) => {
  const clock = new FakeClock();
  const p = new CoinbaseProtocol(options(clock, ['level2:BTC-USD']));
  const io = new RecordingIO();
  const sub = p.subscribe(io);
  p.onFrame(io, Buffer.from('{"type":"error","message":"too many L2 streams requested in a single session"}'), false, 0);
  await t.rejects(sub, { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /too many L2 streams/ });
  const late = new CoinbaseProtocol(options(clock, ['level2:BTC-USD']));
  const waiting = late.subscribe(new RecordingIO());
  clock.advance(5000);
  await t.rejects(waiting, { code: ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, message: /no subscriptions message/ });
  const closing = new CoinbaseProtocol(options(clock, ['level2:BTC-USD']));
  const pending = closing.subscribe(new RecordingIO());
  closing.closed(new Error('gone'));
  await t.rejects(pending, /gone/);
  t.equal(clock.pending, 0);
});

t.test('sequence_num: one counter for every message of the connection; a jump is a connection gap with the count', async (t) => {
  const p = new CoinbaseProtocol(options(new FakeClock(), []));
  const io = new RecordingIO();
  const hb = example('heartbeat', advanced);
  const trade = example('trade', advanced);
  const book = example('book_snapshot');
  p.onFrame(io, withSeq(hb, 0), false, 0);
  p.onFrame(io, withSeq(trade, 1), false, 0);
  p.onFrame(io, withSeq(book, 2), false, 0);
  p.onFrame(io, withSeq(hb, 3), false, 0);
  t.same(io.gaps, [], 'contiguous across channels and products: no gap');
  p.onFrame(io, withSeq(trade, 9), false, 0);
  t.equal(io.gaps.length, 1, 'one connection gap');
  t.same(io.gaps[0]!.missed, { field: 'sequence_num', from: 4, to: 8, count: 5 });
  t.match(io.gaps[0]!.detail, /from 3 to 9: 5 message/);
  p.onFrame(io, withSeq(hb, 10), false, 0);
  p.onFrame(io, withSeq(hb, 10), false, 0);
  p.onFrame(io, withSeq(hb, 7), false, 0);
  t.equal(io.gaps.length, 1, 'a repeat or a late number is no gap');
  t.equal(io.frames.length, 3, 'data still goes to the router');
  t.same(io.malformedWhy, []);
});

t.test('onFrame: heartbeats swallowed, unreadable data counted, strangers unexpected', async (t) => {
  const p = new CoinbaseProtocol(options(new FakeClock(), []));
  const io = new RecordingIO();
  p.onFrame(io, example('heartbeat', advanced), false, 0);
  p.onFrame(io, Buffer.from('{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50Z","sequence_num":1,"events":[]}'), false, 0);
  p.onFrame(io, Buffer.from('not json'), false, 0);
  p.onFrame(io, Buffer.from('{"channel":"status","events":[]}'), false, 0);
  p.onFrame(io, Buffer.from('{"type":"error","message":"late"}'), false, 0);
  t.equal(io.frames.length, 0);
  t.equal(io.malformedWhy.length, 2);
  t.equal(io.unexpectedFrames.length, 2);
});

t.test('live add and remove: confirmed by the listing', async (t) => {
  const p = new CoinbaseProtocol(options(new FakeClock(), []));
  const io = new RecordingIO();
  const added = p.add(io, ['ticker:ETH-USD']);
  t.same(io.sent.map((s) => s.json), [{ type: 'subscribe', product_ids: ['ETH-USD'], channel: 'ticker' }]);
  p.onFrame(io, subscriptions(5, { ticker: ['ETH-USD'] }), false, 0);
  await added;
  const removed = p.remove(io, ['ticker:ETH-USD']);
  p.onFrame(io, subscriptions(6, {}), false, 0);
  await removed;
});
