import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CoinbaseDialectOptions } from '../src/simulator/venues/coinbase.js';
import { startVenueSimulator, type CoinbaseSimulator, type VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { connect, sleep, waitFor, type Client } from './fixtures/sim-client.js';
import { shape } from './helpers/shape.js';

/** Coinbase's documentation examples, by kind (test/fixtures/coinbase; Advanced Trade frames only). */
const FIXTURE = new Map(
  readFileSync(fileURLToPath(new URL('./fixtures/coinbase/docs-examples.ndjson', import.meta.url)), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { kind: string; frame: Record<string, unknown> })
    .filter((e) => 'channel' in e.frame)
    .map((e) => [e.kind, e.frame]),
);

type Msg = { channel: string; sequence_num: number; timestamp: string; events: Array<Record<string, unknown>> };

async function sim(t: Test, opts: Omit<VenueSimulatorOptions, 'venue'> & CoinbaseDialectOptions = {}): Promise<CoinbaseSimulator> {
  const s = await startVenueSimulator({ eventsPerSecond: 20, tickMs: 20, heartbeatIntervalMs: 100, ...opts, venue: 'coinbase' });
  t.teardown(() => s.close());
  return s;
}

const url = (s: CoinbaseSimulator): string => `${s.wsUrl}/`;
const msgs = (c: Client): Msg[] => c.frames.filter((f) => f.startsWith('{"channel"')).map((f) => JSON.parse(f) as Msg);
const of = (c: Client, channel: string): Msg[] => msgs(c).filter((m) => m.channel === channel);
const sub = (channel: string, product_ids?: string[]): Record<string, unknown> => (product_ids === undefined ? { type: 'subscribe', channel } : { type: 'subscribe', product_ids, channel });

t.test('subscribe one channel per message; subscriptions lists them; frames in the docs’ key order; one sequence_num per connection', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send(sub('heartbeats'));
  c.send(sub('level2', ['BTC-USD']));
  c.send(sub('market_trades', ['BTC-USD', 'ETH-USD']));
  c.send(sub('ticker', ['BTC-USD']));
  c.send(sub('candles', ['ETH-USD']));
  await waitFor(() => of(c, 'l2_data').length >= 3 && of(c, 'market_trades').length >= 3 && of(c, 'heartbeats').length >= 2 && of(c, 'candles').length >= 2, 5000, 'every channel');
  const last = of(c, 'subscriptions').at(-1)!;
  t.same(last.events[0]!.subscriptions, { level2: ['BTC-USD'], market_trades: ['BTC-USD', 'ETH-USD'], ticker: ['BTC-USD'], candles: ['ETH-USD'], heartbeats: ['heartbeats'] });
  const seqs = msgs(c).map((m) => m.sequence_num);
  t.same(seqs, seqs.map((_, i) => i), 'sequence_num 0, 1, 2, … across every channel and product');
  const l2 = of(c, 'l2_data');
  t.equal(l2[0]!.events[0]!.type, 'snapshot', 'level2 starts with the book');
  t.equal(l2[1]!.events[0]!.type, 'update');
  t.same(shape(l2[0]), shape(FIXTURE.get('book_snapshot')), 'l2_data as the docs');
  t.same(shape(of(c, 'market_trades')[0]), shape(FIXTURE.get('trade')), 'market_trades as the docs');
  const hb = of(c, 'heartbeats')[0]!;
  t.same(Object.keys(hb), Object.keys(FIXTURE.get('heartbeat')!));
  t.equal(typeof hb.events[0]!.heartbeat_counter, 'number', 'an integer, as the AsyncAPI spec says');
  t.same(Object.keys(of(c, 'ticker')[0]!.events[0]!), ['type', 'tickers']);
  t.same(Object.keys((of(c, 'candles')[0]!.events[0]!.candles as object[])[0]!), Object.keys(((FIXTURE.get('candles')!.events as Array<{ candles: object[] }>)[0]!.candles[0])!));
  const other = await connect(url(s));
  other.send(sub('heartbeats'));
  await waitFor(() => of(other, 'heartbeats').length >= 1, 3000, 'heartbeats');
  t.equal(msgs(other)[0]!.sequence_num, 0, 'another connection counts from 0');
  t.same(s.violations, []);
  await Promise.all([c.close(), other.close()]);
});

t.test('refusals: several channels in one message, unknown product, not JSON', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send({ type: 'subscribe', product_ids: ['BTC-USD'], channels: ['level2', 'ticker'] });
  t.match(JSON.parse(await c.next((f) => f.includes('"type":"error"'))), { message: /one channel/ });
  t.same(s.violations.map((v) => v.rule), ['channels_per_subscribe']);
  c.send(sub('level2', ['NOPE-USD']));
  await c.next((f) => f.includes('NOPE-USD'));
  c.send('{');
  await c.next((f) => f.includes('parse'));
  await c.close();
});

t.test('no subscribe within the deadline: closed with a violation', async (t) => {
  const s = await sim(t, { subscribeDeadlineMs: 300 });
  const late = await connect(url(s));
  const early = await connect(url(s));
  early.send(sub('heartbeats'));
  const closed = await late.closed;
  t.equal(closed.code, 1000);
  t.same(s.violations.map((v) => v.rule), ['subscribe_timeout']);
  await sleep(200);
  t.notOk(early.isClosed(), 'subscribed in time');
  await early.close();
});

t.test('quiet channels: without heartbeats a connection with nothing pushed is closed; with heartbeats it stays', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 600, eventsPerSecond: 0 });
  const quiet = await connect(url(s));
  const beating = await connect(url(s));
  quiet.send(sub('candles', ['BTC-USD']));
  beating.send(sub('candles', ['BTC-USD']));
  beating.send(sub('heartbeats'));
  t.equal((await quiet.closed).code, 1000);
  t.same(s.violations.map((v) => v.rule), ['ping_timeout']);
  await sleep(400);
  t.notOk(beating.isClosed());
  await beating.close();
});

t.test('faults: skipSequence and skip() leave holes in sequence_num; a big snapshot; drop', async (t) => {
  const s = await sim(t, { snapshotLevels: 20_000 });
  const c = await connect(url(s), { maxPayload: 64 * 1024 * 1024 });
  c.send(sub('heartbeats'));
  c.send(sub('level2', ['BTC-USD']));
  await waitFor(() => of(c, 'l2_data').length >= 2, 5000, 'the book');
  const snap = c.frames.find((f) => f.includes('"type":"snapshot"'))!;
  t.ok(snap.length > 3_000_000, `a ${(snap.length / 1e6).toFixed(1)} MB snapshot`);
  const id = s.connections()[0]!.id;
  const holes = (): number[] => {
    const seqs = msgs(c).map((m) => m.sequence_num);
    return seqs.slice(1).map((x, i) => x - seqs[i]! - 1).filter((h) => h > 0);
  };
  s.skipSequence(id, 7);
  await waitFor(() => holes().length === 1, 5000, 'the first hole');
  t.same(holes(), [7], 'skipSequence: 7 numbers left out of the connection’s sequence');
  const n = of(c, 'l2_data').length;
  s.skip('level2:BTC-USD', 2);
  await waitFor(() => holes().length === 2 && of(c, 'l2_data').length >= n + 2, 5000, 'the second hole');
  t.same(holes(), [7, 2], 'skip(): the 2 swallowed pushes are 2 numbers missing too');
  s.drop(id, { code: 4000 });
  t.equal((await c.closed).code, 4000);
});
