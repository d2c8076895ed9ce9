import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { ErrorCodes } from '../src/errors.js';
import { bitgetSpot, bitgetUsdtFutures } from '../src/venues/bitget/index.js';
import { ChecksumBook, bookChecksum, checksumText, crc32Signed } from '../src/venues/bitget/checksum.js';
import { BitgetProtocol, batchBitgetArgs, bitgetClientPing, bitgetCloseCause } from '../src/venues/bitget/protocol.js';
import { BITGET_STREAM_TYPES, seqAt } from '../src/venues/bitget/streams.js';
import { KEY_RESET, type FrameKeys, type ProtocolIO, type ProtocolOptions } from '../src/venues/types.js';

// Bitget v2 against its documentation's frames (test/fixtures/bitget/README.md): stream and key
// readers (seq read losslessly), the checksum, and the protocol's acks, refusals and budgets.

interface Example {
  kind: string;
  source: string;
  json: Record<string, unknown>;
  frame: Buffer;
}

const EXAMPLES: Example[] = readFileSync(fileURLToPath(new URL('./fixtures/bitget/docs-examples.ndjson', import.meta.url)), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const e = JSON.parse(l) as { kind: string; source: string; frame: Record<string, unknown> };
    return { kind: e.kind, source: e.source, json: e.frame, frame: Buffer.from(JSON.stringify(e.frame)) };
  });
/** The raw line of an example: its digits as written (the UTA seq over 2^53). */
const RAW = readFileSync(fileURLToPath(new URL('./fixtures/bitget/docs-examples.ndjson', import.meta.url)), 'utf8').split('\n').filter((l) => l.trim() !== '');

const scratch = (): FrameKeys => ({ from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 });

function readKeys(frame: Buffer): { id: string | null; ok: boolean; out: FrameKeys } {
  const out = scratch();
  const id = bitgetSpot.readStream(frame, out);
  if (id === null) return { id, ok: false, out };
  const type = bitgetSpot.streamType(bitgetSpot.typeOf(id));
  return { id, ok: type !== null && type.keys(frame, out), out };
}

/** A v2 example: books5 with `checksum` (the spot page) or without (its classic copy). */
const v2 = (kind: string, withChecksum: boolean): Buffer => {
  const e = EXAMPLES.find((x) => x.kind === kind && !x.source.includes('/uta/') && (kind !== 'book_snapshot' || x.source.includes('/classic/') !== withChecksum));
  if (e === undefined) throw new Error(`no ${kind}`);
  return e.frame;
};

t.test('trade: the docs example, ordered by the largest ts, ties', async (t) => {
  const r = readKeys(v2('trade', false));
  t.equal(r.id, 'trade:BTCUSDT');
  t.ok(r.ok);
  t.equal(r.out.last, 1695709835822);
  t.same(bitgetSpot.streamType('trade')!.sequence, { kind: 'ordered', field: 'ts', ties: true });
});

t.test('books5: the docs example with checksum 0 and the classic copy without: ordered by ts', async (t) => {
  for (const withChecksum of [true, false]) {
    const r = readKeys(v2('book_snapshot', withChecksum));
    t.equal(r.id, 'books5:BTCUSDT');
    t.ok(r.ok);
    t.equal(r.out.last, 1695710946294);
  }
});

t.test('books: linked by seq/pseq, the snapshot a new epoch; without pseq the router expects +1', async (t) => {
  const snap = Buffer.from('{"action":"snapshot","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},"data":[{"asks":[["26274.9","0.0009"]],"bids":[["26274.8","0.0009"]],"checksum":0,"seq":123,"ts":"1695710946294"}],"ts":1695710946294}');
  t.match(readKeys(snap), { id: 'books:BTCUSDT', ok: true, out: { first: 123, last: 123, flags: KEY_RESET, time: 1695710946294 } });
  t.ok(Number.isNaN(readKeys(snap).out.prev), 'no pseq: prev NaN');
  const upd = Buffer.from(snap.toString().replace('"snapshot"', '"update"').replace('"seq":123', '"pseq":123,"seq":127'));
  t.match(readKeys(upd).out, { first: 127, last: 127, prev: 123, flags: 0 });
  const restart = Buffer.from(upd.toString().replace('"pseq":123', '"pseq":0'));
  t.equal(readKeys(restart).out.flags, KEY_RESET, 'pseq 0: a restart [G5]');
  t.same(bitgetSpot.streamType('books')!.sequence, { kind: 'linked', field: 'seq' });
});

t.test('seq above 2^53 is read losslessly: the UTA example and its successor differ by exactly 1', async (t) => {
  const uta = RAW.find((l) => l.includes('"pseq":0,"seq":1304314508780744705'));
  t.ok(uta, 'the raw line keeps the digits');
  t.not(JSON.stringify(JSON.parse(uta!)), uta, 'JSON.parse would round it');
  const frame = (seq: string, pseq: string): Buffer =>
    Buffer.from(`{"action":"update","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},"data":[{"asks":[],"bids":[],"pseq":${pseq},"seq":${seq},"ts":"1746698732562"}],"ts":1746698732563}`);
  const a = readKeys(frame('1304314508780744705', '1304314508780744704')).out;
  const b = readKeys(frame('1304314508780744706', '1304314508780744705')).out;
  t.equal(b.last - a.last, 1, 'exact difference');
  t.equal(b.prev, a.last, 'the link holds exactly');
  t.equal(a.last, 314508780744705, 'the last 15 digits');
  t.equal(seqAt(Buffer.from('"9007199254740993"'), 0), 7199254740993);
  t.equal(seqAt(Buffer.from('42,'), 0), 42);
  t.ok(Number.isNaN(seqAt(Buffer.from('x'), 0)));
  t.ok(Number.isNaN(seqAt(Buffer.from('1'), -1)));
});

t.test('replies and v3 frames are not v2 data', async (t) => {
  t.equal(bitgetSpot.readStream(EXAMPLES.find((e) => e.kind === 'subscribe_ack')!.frame, scratch()), null, 'the ack has an arg but is an event');
  for (const e of EXAMPLES.filter((x) => x.source.includes('/uta/'))) t.equal(bitgetSpot.readStream(e.frame, scratch()), null, `v3 ${e.kind}: topic/symbol, not channel/instId`);
  t.equal(bitgetSpot.readStream(Buffer.from('pong'), scratch()), null);
  t.equal(bitgetSpot.readStream(Buffer.from('{"event":"error","arg":{"instType":"SPOT","channel":"books","instId":"X"},"code":30001,"msg":"x"}'), scratch()), null);
});

t.test('ticker and candles', async (t) => {
  const ticker = Buffer.from('{"action":"snapshot","arg":{"instType":"SPOT","channel":"ticker","instId":"BTCUSDT"},"data":[{"instId":"BTCUSDT","lastPr":"27000.5","bidPr":"27000","askPr":"27000.5","ts":"1695702438018"}],"ts":1695702438029}');
  t.match(readKeys(ticker), { id: 'ticker:BTCUSDT', ok: true, out: { last: 1695702438018 } });
  const candle = Buffer.from('{"action":"snapshot","arg":{"instType":"SPOT","channel":"candle1m","instId":"BTCUSDT"},"data":[["1695685500000","27000","27000.5","27000","27000.5","0.057","1539.0155","1539.0155"],["1695685560000","1","1","1","1","1","1","1"]],"ts":1695715462250}');
  t.match(readKeys(candle), { id: 'candle1m:BTCUSDT', ok: true, out: { last: 1695685560000 } });
  t.equal(bitgetSpot.streamType('candle1s'), null);
  t.ok(BITGET_STREAM_TYPES.includes('candle1Dutc'));
  for (const ty of BITGET_STREAM_TYPES) t.equal(bitgetSpot.typeOf(bitgetSpot.streamName('BTCUSDT', ty)), ty);
  t.ok(bitgetSpot.isSymbol('BTCUSDT'));
  t.notOk(bitgetSpot.isSymbol('BTC-USDT'));
});

t.test('fuzz: the readers never throw on random or truncated input', async (t) => {
  let n = 0;
  for (let i = 0; i < 4000; i++) {
    const b = Buffer.from(EXAMPLES[i % EXAMPLES.length]!.frame);
    const cut = b.subarray(0, Math.floor(Math.random() * b.length));
    for (let k = 0; k < 3; k++) cut[Math.floor(Math.random() * Math.max(1, cut.length))] = Math.floor(Math.random() * 256);
    const out = scratch();
    const id = bitgetSpot.readStream(cut, out);
    if (id !== null) bitgetSpot.streamType(bitgetSpot.typeOf(id))?.keys(cut, out);
    n++;
  }
  t.equal(n, 4000);
});

t.test('the checksum: signed CRC32 of bid:ask interleaved top 25, the strings as sent', async (t) => {
  t.equal(crc32Signed('hello'), crc32(Buffer.from('hello')) | 0);
  const bids: Array<[string, string]> = [['26274.8', '0.0009'], ['26274.7', '0.0027']];
  const asks: Array<[string, string]> = [['26274.9', '0.0009'], ['26275.0', '0.0500'], ['26275.1', '1.0000']];
  t.equal(checksumText(bids, asks), '26274.8:0.0009:26274.9:0.0009:26274.7:0.0027:26275.0:0.0500:26275.1:1.0000', 'a side that runs out is skipped');
  t.equal(bookChecksum(bids, asks), crc32(Buffer.from(checksumText(bids, asks))) | 0);
  const book = new ChecksumBook();
  book.apply(true, bids, asks);
  t.equal(book.checksum(), bookChecksum(bids, asks));
  book.apply(false, [['26274.7', '0']], [['26274.95', '2.0000']]);
  t.equal(book.checksum(), bookChecksum([['26274.8', '0.0009']], [['26274.9', '0.0009'], ['26274.95', '2.0000'], ['26275.0', '0.0500'], ['26275.1', '1.0000']]), 'size 0 removes; a level sorts in');
  const many = Array.from({ length: 30 }, (_, i) => [`${100 - i}.0`, '1.0'] as [string, string]);
  const big = new ChecksumBook();
  big.apply(true, many, []);
  t.equal(big.checksum(), bookChecksum(many.slice(0, 25), []), 'only the top 25');
});

// ---- the protocol -----------------------------------------------------------------------------

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
      if (tm.at > this.now) continue;
      this.timers.delete(id);
      tm.fn();
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
  requests(): Array<{ op: string; args: Array<{ instType: string; channel: string; instId: string }> }> {
    return this.sent.map((s) => JSON.parse(s.text) as { op: string; args: Array<{ instType: string; channel: string; instId: string }> });
  }
}

function options(clock: FakeClock, streams: string[], over: Partial<ProtocolOptions> = {}): ProtocolOptions {
  return { base: 'wss://ws.bitget.com', path: '/v2/ws/public', streams, streamsPerSubscribe: 50, replyTimeoutMs: 5000, clock, ...over };
}
const ack = (a: { instType: string; channel: string; instId: string }): Buffer => Buffer.from(JSON.stringify({ event: 'subscribe', arg: a }));

t.test('protocol: the URL, per-arg acks matched by arg, the instType of the venue', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bitgetUsdtFutures.protocol(options(clock, ['books:BTCUSDT', 'trade:ETHUSDT']));
  t.equal(p.url(), 'wss://ws.bitget.com/v2/ws/public');
  const done = p.subscribe(io);
  const [req] = io.requests();
  t.same(req, { op: 'subscribe', args: [{ instType: 'USDT-FUTURES', channel: 'books', instId: 'BTCUSDT' }, { instType: 'USDT-FUTURES', channel: 'trade', instId: 'ETHUSDT' }] });
  p.onFrame(io, ack(req!.args[1]!), false, 1);
  p.onFrame(io, ack(req!.args[0]!), false, 1);
  await done;
  t.equal(clock.pending, 1, 'only the hour budget timer');
  p.onFrame(io, Buffer.from('pong'), false, 2);
  p.onFrame(io, ack(req!.args[0]!), false, 2);
  t.equal(io.unexpectedFrames.length, 1, 'an ack nobody waits for is unexpected');
  t.equal(p.requestsSent, 1);
});

t.test('protocol: error 30001 refuses the request naming that arg; closed() fails the rest', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bitgetSpot.protocol(options(clock, ['books:NOPEUSDT', 'trade:BTCUSDT'], { streamsPerSubscribe: 1 }));
  const done = p.subscribe(io);
  const [a] = io.requests();
  p.onFrame(io, Buffer.from(JSON.stringify({ event: 'error', arg: a!.args[0], code: 30001, msg: "instType:SPOT,channel:books,instId:NOPEUSDT doesn't exist", op: 'subscribe' })), false, 1);
  await t.rejects(done, { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /books:NOPEUSDT: 30001/ });
  p.onFrame(io, Buffer.from('{"event":"error","code":30012,"msg":"param error"}'), false, 1);
  t.match(io.malformedFrames.at(-1)?.why, /error 30012/);
  p.onFrame(io, Buffer.from('garbage'), false, 1);
  t.equal(io.malformedFrames.at(-1)?.why, 'neither JSON nor pong');
  const q = bitgetSpot.protocol(options(clock, ['trade:BTCUSDT']));
  const waiting = q.subscribe(io);
  const err = new Error('gone');
  q.closed(err);
  await t.rejects(waiting, err);
});

t.test('protocol: no reply in time rejects; batches stay under 50 args and 4096 bytes', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bitgetSpot.protocol(options(clock, ['trade:BTCUSDT'], { replyTimeoutMs: 3000 }));
  const done = p.subscribe(io);
  clock.advance(3000);
  await t.rejects(done, { code: ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, message: /no reply/ });
  const args = Array.from({ length: 120 }, (_, i) => ({ instType: 'USDT-FUTURES', channel: 'candle12Hutc', instId: `COIN${i}USDT` }));
  const batches = batchBitgetArgs(args, 50);
  t.ok(batches.every((b) => b.length <= 50 && JSON.stringify({ op: 'subscribe', args: b }).length <= 4096), batches.map((b) => b.length).join(','));
  t.equal(batches.flat().length, 120);
});

t.test('protocol: never more than 240 subscribe requests per connection per hour', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = bitgetSpot.protocol(options(clock, Array.from({ length: 241 }, (_, i) => `trade:C${i}USDT`), { streamsPerSubscribe: 1 }));
  await t.rejects(p.subscribe(io), { code: ErrorCodes.FK_ERR_SUBSCRIBE, message: /240 subscribe requests per connection per hour/ });
  t.equal(io.sent.length, 0, 'refused before sending');
  const q = bitgetSpot.protocol(options(clock, Array.from({ length: 240 }, (_, i) => `trade:C${i}USDT`), { streamsPerSubscribe: 1 }));
  const done = q.subscribe(io);
  for (const r of io.requests()) q.onFrame(io, ack(r.args[0]!), false, 1);
  await done;
  await t.rejects(q.add!(io, ['trade:BTCUSDT']), { message: /240 sent in the last hour/ });
  clock.advance(3_600_000);
  const more = q.add!(io, ['trade:BTCUSDT']);
  q.onFrame(io, ack({ instType: 'SPOT', channel: 'trade', instId: 'BTCUSDT' }), false, 2);
  await more;
});

t.test('protocol: a present, non-zero checksum is verified; a mismatch is counted, the frame kept, checking resumes at the next snapshot', async (t) => {
  const clock = new FakeClock();
  const io = new RecordingIO();
  const p = new BitgetProtocol(options(clock, ['books:BTCUSDT']), 'SPOT', 240);
  const push = (action: string, asks: string[][], bids: string[][], checksum: number | null): Buffer =>
    Buffer.from(`{"action":"${action}","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},"data":[{"asks":${JSON.stringify(asks)},"bids":${JSON.stringify(bids)},${checksum === null ? '' : `"checksum":${checksum},`}"seq":1,"ts":"1"}],"ts":1}`);
  const asks = [['101.0', '1.0'], ['102.0', '2.0']];
  const bids = [['100.0', '1.5']];
  p.onFrame(io, push('snapshot', asks, bids, bookChecksum(bids as Array<[string, string]>, asks as Array<[string, string]>)), false, 1);
  const bids2 = [['100.0', '1.5'], ['99.0', '3.0']];
  p.onFrame(io, push('update', [], [['99.0', '3.0']], bookChecksum(bids2 as Array<[string, string]>, asks as Array<[string, string]>)), false, 2);
  t.equal(io.malformedFrames.length, 0, 'both match');
  p.onFrame(io, push('update', [['101.0', '0']], [], 12345), false, 3);
  t.match(io.malformedFrames[0]?.why, /book checksum mismatch on books:BTCUSDT/);
  p.onFrame(io, push('update', [], [], 999), false, 4);
  t.equal(io.malformedFrames.length, 1, 'no more checks until a snapshot');
  p.onFrame(io, push('update', [], [], 0), false, 5);
  p.onFrame(io, push('update', [], [], null), false, 6);
  t.equal(io.frames.length, 6, 'every push delivered, the mismatching one too');
});

t.test('ping, close codes, limits', async (t) => {
  t.equal(bitgetClientPing.text(), 'ping');
  t.equal(bitgetClientPing.everyMs, 30_000);
  t.equal(bitgetClientPing.whenIdle, false, 'the server counts pings, not data');
  t.equal(bitgetCloseCause(1008), 'rate_limited');
  t.equal(bitgetCloseCause(1001), 'server_close');
  t.equal(bitgetSpot.limits.maxLifetimeMs, 86_400_000);
  t.equal(bitgetSpot.limits.subscribesPerHour, 240);
  t.equal(bitgetSpot.limits.connectionAttempts + bitgetUsdtFutures.limits.connectionAttempts, 300, 'the two venues share the IP budget');
});
