import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startVenueSimulator, type GateSimulator, type VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { connect, sleep, waitFor, type Client } from './fixtures/sim-client.js';
import { shape } from './helpers/shape.js';

/** Gate's documentation examples, by kind (test/fixtures/gate). */
const FIXTURE = new Map(
  readFileSync(fileURLToPath(new URL('./fixtures/gate/docs-examples.ndjson', import.meta.url)), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { kind: string; frame: Record<string, unknown> })
    .filter((e) => e.frame.channel !== 'spot.obu' && e.frame.channel !== 'spot.order_book')
    .map((e) => [e.kind, e.frame]),
);

type Frame = { time: number; time_ms: number; channel: string; event: string; result: Record<string, unknown>; id?: number; error?: unknown };

async function sim(t: Test, opts: Omit<VenueSimulatorOptions, 'venue'> & { clockSkewMs?: number; duplicateIdMarket?: boolean } = {}): Promise<GateSimulator> {
  const s = await startVenueSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts, venue: 'gate-spot' });
  t.teardown(() => s.close());
  return s;
}

const url = (s: GateSimulator): string => `${s.wsUrl}/ws/v4/`;
const nowS = (): number => Math.floor(Date.now() / 1000);
const req = (id: number, channel: string, payload: string[], event = 'subscribe', time = nowS()): Record<string, unknown> => ({ time, id, channel, event, payload });
const pushes = (c: Client, channel: string): Frame[] => c.frames.filter((f) => f.includes(`"channel":"${channel}","event":"update"`)).map((f) => JSON.parse(f) as Frame);
const reply = (c: Client, id: number): Promise<Frame> => c.next((f) => f.includes(`"id":${id},`)).then((f) => JSON.parse(f) as Frame);

t.test('subscribe acks echo the id in Gate’s key order; spot.ping → spot.pong as the fixture', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send(req(1, 'spot.trades', ['BTC_USDT', 'ETH_USDT']));
  const ack = await reply(c, 1);
  t.match(ack, { id: 1, channel: 'spot.trades', event: 'subscribe', error: null, result: { status: 'success' } });
  t.same(Object.keys(ack), ['time', 'time_ms', 'id', 'conn_id', 'channel', 'event', 'error', 'result']);
  t.same(Object.keys(ack).filter((k) => k in FIXTURE.get('subscribe_ack')!), Object.keys(FIXTURE.get('subscribe_ack')!), 'the documented keys in the documented order');
  c.send({ time: nowS(), channel: 'spot.ping' });
  const pong = JSON.parse(await c.next((f) => f.includes('spot.pong'))) as Record<string, unknown>;
  t.same(shape(pong), shape(FIXTURE.get('pong')));
  t.same([...s.connections()[0]!.streams].sort(), ['trades:BTC_USDT', 'trades:ETH_USDT']);
  c.send(req(2, 'spot.trades', ['ETH_USDT'], 'unsubscribe'));
  t.match(await reply(c, 2), { event: 'unsubscribe', error: null });
  t.same([...s.connections()[0]!.streams], ['trades:BTC_USDT']);
  await c.close();
});

t.test('spot.trades: the fixture’s keys and order, contiguous id_market, range, the duplicate key; skip() leaves a hole', async (t) => {
  const s = await sim(t);
  const c = await connect(url(s));
  c.send(req(1, 'spot.trades', ['BTC_USDT']));
  await waitFor(() => pushes(c, 'spot.trades').length >= 5, 3000, 'trades');
  const raw = c.frames.find((f) => f.includes('"spot.trades","event":"update"'))!;
  t.equal(raw.split('"id_market":').length - 1, 2, 'id_market twice, as in Gate’s example');
  t.same(shape(JSON.parse(raw)), shape(FIXTURE.get('trade')), 'the fixture’s key order and types');
  const ranges = () => pushes(c, 'spot.trades').map((f) => (f.result.range as string).split('-').map(Number) as [number, number]);
  const r = ranges();
  for (let i = 1; i < r.length; i++) t.equal(r[i]![0], r[i - 1]![1] + 1, `range ${i} follows`);
  s.skip('trades:BTC_USDT', 4);
  const before = r.length;
  await waitFor(() => ranges().length >= before + 4, 3000, 'more trades');
  const after = ranges();
  const holes = after.slice(1).map((x, i) => x[0] - after[i]![1] - 1).filter((h) => h > 0);
  t.same(holes, [4], 'exactly the 4 skipped IDs are missing');
  t.same(s.skippedIds('trades:BTC_USDT').length, 4);
  await c.close();
});

t.test('order_book_update: U = previous u + 1; book_ticker: u grows; payload checked', async (t) => {
  const s = await sim(t, { duplicateIdMarket: false });
  const c = await connect(url(s));
  c.send(req(1, 'spot.order_book_update', ['BTC_USDT', '100ms']));
  c.send(req(2, 'spot.book_ticker', ['BTC_USDT']));
  c.send(req(3, 'spot.order_book_update', ['BTC_USDT', '5s']));
  t.match(await reply(c, 3), { error: { code: 2 }, result: { status: 'fail' } });
  await waitFor(() => pushes(c, 'spot.order_book_update').length >= 5 && pushes(c, 'spot.book_ticker').length >= 3, 3000, 'books');
  const books = pushes(c, 'spot.order_book_update').map((f) => f.result as { U: number; u: number });
  for (let i = 1; i < books.length; i++) t.equal(books[i]!.U, books[i - 1]!.u + 1);
  const inc = { ...(FIXTURE.get('book_snapshot')!.result as Record<string, unknown>) };
  delete inc.full;
  delete inc.l;
  t.same(Object.keys(books[0]!), Object.keys(inc), 'the fixture’s keys without full and l (incremental)');
  const tickers = pushes(c, 'spot.book_ticker');
  t.same(shape(tickers[0]), shape(FIXTURE.get('book_ticker')));
  const us = tickers.map((f) => f.result.u as number);
  t.ok(us.every((u, i) => i === 0 || u > us[i - 1]!));
  await c.close();
});

t.test('time: a request more than 60 s off the server’s clock is refused (code 2) and a violation', async (t) => {
  const s = await sim(t, { clockSkewMs: 5 * 60_000 });
  const c = await connect(url(s));
  c.send(req(1, 'spot.trades', ['BTC_USDT']));
  const refused = await reply(c, 1);
  t.match(refused, { error: { code: 2, message: /time/ }, result: { status: 'fail' }, payload: ['BTC_USDT'] });
  t.ok(Math.abs(refused.time - (nowS() + 300)) <= 2, 'the reply carries the server’s clock');
  t.same(s.violations.map((v) => v.rule), ['request_time']);
  c.send(req(2, 'spot.trades', ['BTC_USDT'], 'subscribe', refused.time));
  t.match(await reply(c, 2), { error: null });
  c.send({ id: 3, channel: 'spot.trades', event: 'subscribe', payload: ['BTC_USDT'] });
  t.match(await reply(c, 3), { error: { code: 2 } }, 'no time at all');
  c.send(req(4, 'spot.trades', ['NOPE_USDT'], 'subscribe', refused.time));
  t.match(await reply(c, 4), { error: { code: 2, message: /NOPE_USDT/ } });
  c.send('not json');
  await c.next((f) => f.includes('"code":1'));
  await c.close();
});

t.test('the silent timeout: nothing from the client for keepaliveMs → cut without a close frame; pings keep it open, data does not', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 1200 });
  const fed = await connect(url(s));
  const pinging = await connect(url(s));
  fed.send(req(1, 'spot.trades', ['BTC_USDT']));
  const fedId = s.connections()[0]!.id;
  const timer = setInterval(() => pinging.send({ time: nowS(), channel: 'spot.ping' }), 300);
  t.teardown(() => clearInterval(timer));
  const opened = Date.now();
  t.equal((await fed.closed).code, 1006, 'no close frame: the client sees 1006');
  t.ok(Date.now() - opened >= 1100, 'not before the timeout');
  t.ok(pushes(fed, 'spot.trades').length > 0, 'data was flowing: it does not count');
  t.same(s.violations.map((v) => [v.rule, v.connId]), [['ping_timeout', fedId]]);
  // Its deadline was checked with fed's; one more pong after it.
  await pinging.next((f) => f.includes('spot.pong'), { from: pinging.frames.length });
  t.notOk(pinging.isClosed(), 'application pings keep it open');
  await pinging.close();
});

t.test('faults: drop, stall and serverShutdown (no notice, a plain close)', async (t) => {
  const s = await sim(t);
  const a = await connect(url(s));
  const b = await connect(url(s));
  const [ia, ib] = s.connections().map((x) => x.id);
  s.drop(ia!, { code: 4000 });
  t.equal((await a.closed).code, 4000);
  s.drop(ib!, { abrupt: true });
  t.equal((await b.closed).code, 1006);
  const c = await connect(url(s));
  c.send(req(1, 'spot.trades', ['BTC_USDT']));
  await waitFor(() => pushes(c, 'spot.trades').length >= 2, 3000, 'data');
  t.equal(s.stall(), 1);
  await sleep(100);
  const n = c.frames.length;
  await sleep(400);
  t.equal(c.frames.length, n, 'stalled: nothing');
  c.ws.terminate();
  const d = await connect(url(s));
  d.send(req(1, 'spot.trades', ['BTC_USDT']));
  await reply(d, 1);
  t.equal(s.serverShutdown(undefined, { graceMs: 200 }), 1);
  t.equal((await d.closed).code, 1001);
  t.notOk(d.frames.some((f) => f.includes('notice')), 'no notice');
});
