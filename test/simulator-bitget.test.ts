import t, { type Test } from 'tap';
import { startVenueSimulator, type BitgetSimulator, type VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { bitgetSpot } from '../src/venues/bitget/index.js';
import { ChecksumBook } from '../src/venues/bitget/checksum.js';
import type { FrameKeys } from '../src/venues/types.js';
import { connect, waitFor, type Client } from './fixtures/sim-client.js';
import { shape } from './helpers/shape.js';

// The Bitget dialect over loopback with a real WebSocket client: ping/pong, per-arg acks, errors,
// the hourly budget, the request cap, the ping cut, the forced cut, books seq/pseq and checksums.

/** From ../shared/fixtures/bitget/docs-examples.ndjson (Bitget's v2 docs), verbatim. */
const FIXTURE = {
  trade: '{"action":"snapshot","arg":{"instType":"SPOT","channel":"trade","instId":"BTCUSDT"},"data":[{"ts":"1695709835822","price":"26293.4","size":"0.0013","side":"buy","tradeId":"1000000000"}],"ts":1695711090682}',
  books5: '{"action":"snapshot","arg":{"instType":"SPOT","channel":"books5","instId":"BTCUSDT"},"data":[{"asks":[["26274.9","0.0009"],["26275.0","0.0500"]],"bids":[["26274.8","0.0009"],["26274.7","0.0027"]],"checksum":0,"seq":123,"ts":"1695710946294"}],"ts":1695710946294}',
  ack: '{"event":"subscribe","arg":{"instType":"SPOT","channel":"books5","instId":"BTCUSDT"}}',
};

async function sim(t: Test, opts: Omit<VenueSimulatorOptions, 'venue'> & { venue?: 'bitget-spot' | 'bitget-usdt-futures' } = {}): Promise<BitgetSimulator> {
  const s = await startVenueSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts, venue: opts.venue ?? 'bitget-spot' });
  t.teardown(() => s.close());
  return s;
}

const url = (s: BitgetSimulator): string => `${s.wsUrl}/v2/ws/public`;
const arg = (channel: string, instId = 'BTCUSDT', instType = 'SPOT') => ({ instType, channel, instId });
const scratch = (): FrameKeys => ({ from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 });
const of = (c: Client, stream: string): string[] => c.frames.filter((f) => bitgetSpot.readStream(Buffer.from(f), scratch()) === stream);

t.test('ping → pong; per-arg acks in the docs shape; every channel pushes frames the venue reads', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send('ping');
  await c.next((f) => f === 'pong');
  const channels = ['trade', 'books', 'books1', 'books5', 'books15', 'ticker', 'candle1m'];
  c.send({ op: 'subscribe', args: channels.map((ch) => arg(ch)) });
  await waitFor(() => c.frames.filter((f) => f.startsWith('{"event":"subscribe"')).length === channels.length, 3000, 'acks');
  for (const a of c.frames.filter((f) => f.startsWith('{"event":"subscribe"'))) t.same(shape(JSON.parse(a)), shape(JSON.parse(FIXTURE.ack)));
  await waitFor(() => channels.every((ch) => of(c, `${ch}:BTCUSDT`).length >= 2), 5000, 'two pushes of every channel');
  t.same(shape(JSON.parse(of(c, 'trade:BTCUSDT')[0]!)), shape(JSON.parse(FIXTURE.trade)), 'trade in the docs shape');
  t.same(shape(JSON.parse(of(c, 'books5:BTCUSDT')[0]!)), shape(JSON.parse(FIXTURE.books5)), 'books5 in the docs shape');
  t.match(JSON.parse(of(c, 'trade:BTCUSDT')[0]!), { action: 'snapshot' }, 'the first trade push is a snapshot of recent trades');
  t.match(JSON.parse(of(c, 'trade:BTCUSDT')[1]!), { action: 'update' });
  for (const ch of channels) {
    const f = Buffer.from(of(c, `${ch}:BTCUSDT`)[1]!);
    const out = scratch();
    bitgetSpot.readStream(f, out);
    t.ok(bitgetSpot.streamType(ch)!.keys(f, out), `${ch}: the venue reads its keys`);
  }
  t.same(s.violations, []);
  await c.close();
});

t.test('books: snapshot then updates chained by pseq; the checksum matches an independent local book', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send({ op: 'subscribe', args: [arg('books')] });
  await waitFor(() => of(c, 'books:BTCUSDT').length >= 20, 5000, 'twenty books pushes');
  const pushes = of(c, 'books:BTCUSDT').map((f) => JSON.parse(f) as { action: string; data: Array<{ asks: string[][]; bids: string[][]; checksum: number; pseq: number; seq: number }> });
  t.equal(pushes[0]!.action, 'snapshot');
  const book = new ChecksumBook();
  for (const [i, p] of pushes.entries()) {
    const d = p.data[0]!;
    if (i > 0) t.equal(d.pseq, pushes[i - 1]!.data[0]!.seq, `push ${i}: pseq = the previous seq`);
    book.apply(p.action === 'snapshot', d.bids as Array<[string, string]>, d.asks as Array<[string, string]>);
    t.equal(book.checksum(), d.checksum, `push ${i}: checksum`);
  }
  s.corruptChecksum('books:BTCUSDT');
  const from = c.frames.length;
  const next = JSON.parse(await c.next((f) => f.includes('"channel":"books"'), { from })) as { data: Array<{ asks: string[][]; bids: string[][]; checksum: number }> };
  book.apply(false, next.data[0]!.bids as Array<[string, string]>, next.data[0]!.asks as Array<[string, string]>);
  t.not(book.checksum(), next.data[0]!.checksum, 'corruptChecksum(): the next push is wrong');
  t.throws(() => s.corruptChecksum('trade:BTCUSDT'), TypeError);
});

t.test('books styles: no pseq (+1 steps), checksum 0 or absent, seq above 2^53 as written', async (t) => {
  const s = await sim(t, { bitgetBooks: { pseq: false, checksum: 'absent', bigSeq: true } });
  const c = await connect(url(s));
  c.send({ op: 'subscribe', args: [arg('books')] });
  await waitFor(() => of(c, 'books:BTCUSDT').length >= 5, 5000, 'pushes');
  const raw = of(c, 'books:BTCUSDT');
  t.ok(raw.every((f) => !f.includes('"pseq"') && !f.includes('"checksum"')));
  const seqs = raw.map((f) => BigInt(/"seq":(\d+)/.exec(f)![1]!));
  t.ok(seqs[0]! > 2n ** 53n, `seq ${seqs[0]} is above 2^53`);
  for (let i = 1; i < seqs.length; i++) t.equal(seqs[i]! - seqs[i - 1]!, 1n, 'steps of 1');
  const ids = s.sentIds('books:BTCUSDT');
  t.equal(ids.at(-1), Number(seqs.at(-1)! % 10n ** 15n), 'sentIds: the last 15 digits, as the daemon reads them');
  const z = await sim(t, { bitgetBooks: { checksum: 'zero' } });
  const d = await connect(url(z));
  d.send({ op: 'subscribe', args: [arg('books')] });
  await waitFor(() => of(d, 'books:BTCUSDT').length >= 2, 5000, 'pushes');
  t.ok(of(d, 'books:BTCUSDT').every((f) => f.includes('"checksum":0,')));
});

t.test('errors: another instType or an unknown symbol (30001), a bad request (30012)', async (t) => {
  const s = await sim(t, { venue: 'bitget-usdt-futures' });
  const c = await connect(url(s));
  c.send({ op: 'subscribe', args: [arg('books', 'BTCUSDT', 'SPOT'), arg('trade', 'NOPEUSDT', 'USDT-FUTURES'), arg('trade', 'BTCUSDT', 'USDT-FUTURES')] });
  await waitFor(() => c.frames.length >= 3, 3000, 'three replies');
  t.match(JSON.parse(c.frames[0]!), { event: 'error', arg: arg('books', 'BTCUSDT', 'SPOT'), code: 30001, op: 'subscribe' });
  t.match(JSON.parse(c.frames[1]!), { event: 'error', code: 30001, msg: "instType:USDT-FUTURES,channel:trade,instId:NOPEUSDT doesn't exist" });
  t.same(JSON.parse(c.frames[2]!), { event: 'subscribe', arg: arg('trade', 'BTCUSDT', 'USDT-FUTURES') });
  c.send('{"op":"subscribe"}');
  t.match(JSON.parse(await c.next((f) => f.includes('30012'))), { event: 'error', code: 30012 });
});

t.test('limits: 240 subscribes per hour, 4096-byte requests, 10 messages per second, no ping → cut', async (t) => {
  const s = await sim(t, { subscribesPerHour: 3, pongTimeoutMs: 800, eventsPerSecond: 0 });
  const c = await connect(url(s));
  for (let i = 0; i < 4; i++) c.send({ op: 'subscribe', args: [arg('ticker')] });
  t.match(JSON.parse(await c.next((f) => f.includes('"error"'))), { event: 'error', code: 30006 });
  t.match(s.violations, [{ rule: 'subscribes_per_hour' }]);
  c.send({ op: 'subscribe', args: Array.from({ length: 80 }, () => arg('candle12Hutc', 'BTCUSDT')) });
  await waitFor(() => s.violations.some((v) => (v.rule as string) === 'args_per_subscribe'), 3000, 'the byte cap');
  const closed = await c.closed;
  t.same(closed, { code: 1000, reason: 'ping timeout' });
  t.match(s.violations.at(-1), { rule: 'ping_timeout' });

  const r = await sim(t);
  const d = await connect(url(r));
  for (let i = 0; i < 12; i++) d.send('ping');
  t.match(await d.closed, { code: 1008 });
  t.match(r.violations, [{ rule: 'messages_per_second' }]);
});

t.test('pings keep it open; the forced cut comes after maxLifetimeMs (24 h by default), with no notice', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 1000, maxLifetimeMs: 2500 });
  const c = await connect(url(s));
  const timer = setInterval(() => c.send('ping'), 150);
  t.teardown(() => clearInterval(timer));
  const start = Date.now();
  const closed = await c.closed;
  clearInterval(timer);
  t.match(closed, { code: 1001 });
  t.ok(Date.now() - start >= 2400, 'not before the lifetime: the pings kept it open past the 1 s ping cut');
  t.notOk(c.frames.some((f) => f.includes('notice')), 'no notice');
  t.same(s.violations, []);
});

t.test('skip(): books pushes are swallowed whole; the pseq link shows it', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send({ op: 'subscribe', args: [arg('books')] });
  await waitFor(() => of(c, 'books:BTCUSDT').length >= 3, 5000, 'pushes');
  s.skip('books:BTCUSDT', 4);
  await waitFor(() => s.skippedIds('books:BTCUSDT').length === 4, 3000, 'skipped');
  const skipped = s.skippedIds('books:BTCUSDT');
  const after = JSON.parse(await c.next((f) => f.includes(`"pseq":${skipped.at(-1)},`))) as { data: Array<{ pseq: number; seq: number }> };
  t.equal(after.data[0]!.pseq, skipped.at(-1), 'the push after the skip names the last skipped seq');
});

t.test('more than 100 connections from one IP: the 101st is closed and counted', async (t) => {
  const s = await sim(t, { eventsPerSecond: 0 });
  const clients = await Promise.all(Array.from({ length: 101 }, () => connect(url(s))));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  await waitFor(() => clients.some((c) => c.isClosed()), 3000, 'one closed');
  t.equal(clients.filter((c) => c.isClosed()).length, 1);
  t.match(s.violations, [{ rule: 'connections_per_ip', detail: /101 connections open/ }]);
});
