import t, { type Test } from 'tap';
import { startVenueSimulator, type BybitSimulator, type VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { connect, refusedUpgrade, waitFor, type Client } from './fixtures/sim-client.js';
import { shape } from './helpers/shape.js';

/** Frames from ../shared/fixtures/bybit/docs-examples.ndjson (Bybit's v5 docs), verbatim. */
const FIXTURE = {
  trade:
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}',
  bookSnapshot:
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},"cts":1672304484976}',
  bookDelta:
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30245.40","0.224"],["30242.10","1.593"],["30240.30","1.305"],["30240.00","0"]],"a":[["30248.70","0"],["30249.30","0.892"],["30249.50","1.778"],["30249.60","0"],["30251.90","2.947"],["30252.20","0.659"],["30252.50","4.591"]],"u":177400507,"seq":66544703342},"cts":1687940967464}',
  spotPong: '{"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}',
  linearPong: '{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260","req_id":"","op":"ping"}',
  spotAck: '{"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"10001","op":"subscribe"}',
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Frame = Record<string, unknown> & { topic?: string; type?: string; data?: unknown };

type Options = Omit<VenueSimulatorOptions, 'venue'> & { venue?: 'bybit-spot' | 'bybit-linear' };

async function sim(t: Test, opts: Options = {}): Promise<BybitSimulator> {
  const s = await startVenueSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts, venue: opts.venue ?? 'bybit-spot' });
  t.teardown(() => s.close());
  return s;
}

const spotUrl = (s: BybitSimulator): string => `${s.wsUrl}/v5/public/spot`;
const linearUrl = (s: BybitSimulator): string => `${s.wsUrl}/v5/public/linear`;
const parse = (f: string): Frame => JSON.parse(f) as Frame;
/** Key order and types of a frame, and of its first data row when data is a list of objects. */
const shapes = (f: Frame): unknown[] => [shape(f), Array.isArray(f.data) ? shape(f.data[0]) : null];
const compact = (f: string): boolean => JSON.stringify(JSON.parse(f)) === f;

/** The frames of a topic received so far. */
const ofTopic = (c: Client, topic: string): Frame[] => c.frames.filter((f) => f.includes(`"topic":"${topic}"`)).map(parse);

t.test('spot: subscribe ack and pong have the fixtures’ keys in order; req_id echoed only when sent', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ req_id: '10001', op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  const ack = await c.next((f) => f.includes('"op":"subscribe"'));
  t.ok(compact(ack), 'compact JSON');
  t.same(shape(JSON.parse(ack)), shape(JSON.parse(FIXTURE.spotAck)));
  const a = parse(ack);
  t.match(a, { success: true, ret_msg: 'subscribe', req_id: '10001' });
  t.match(a.conn_id, UUID);

  c.send({ op: 'subscribe', args: ['tickers.BTCUSDT'] });
  const bare = parse(await c.next((f) => f.includes('"op":"subscribe"') && !f.includes('10001')));
  t.same(Object.keys(bare), ['success', 'ret_msg', 'conn_id', 'op'], 'no req_id when none was sent');

  c.send({ req_id: '100001', op: 'ping' });
  const pong = await c.next((f) => f.includes('"ret_msg":"pong"'));
  t.same(shape(JSON.parse(pong)), shape(JSON.parse(FIXTURE.spotPong)), 'spot pong: no req_id even when sent');
  t.equal(parse(pong).conn_id, a.conn_id, 'one conn_id per connection');
  t.same([...s.connections()[0]!.streams], ['publicTrade:BTCUSDT', 'tickers:BTCUSDT'], 'canonical stream ids');
  await c.close();
});

t.test('linear: pong echoes req_id ("" when none), acks carry req_id and an empty ret_msg', async (t) => {
  const s = await sim(t, { venue: 'bybit-linear' });
  const c = await connect(linearUrl(s));
  c.send({ req_id: '100001', op: 'ping' });
  const pong = await c.next((f) => f.includes('pong'));
  t.same(shape(JSON.parse(pong)), shape(JSON.parse(FIXTURE.linearPong)));
  t.equal(parse(pong).req_id, '100001');
  c.send({ op: 'ping' });
  t.equal(parse(await c.next((f) => f.includes('pong'), { from: c.frames.length })).req_id, '');
  c.send({ op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  const ack = parse(await c.next((f) => f.includes('"op":"subscribe"')));
  t.same(Object.keys(ack), ['success', 'ret_msg', 'conn_id', 'req_id', 'op']);
  t.match(ack, { success: true, ret_msg: '', req_id: '' });
  await c.close();
});

t.test('publicTrade frames: fixture key order, IDs below 2^53 with jumps, sentIds in send order', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  await waitFor(() => ofTopic(c, 'publicTrade.BTCUSDT').length >= 8, 5000, 'trades');
  const raw = c.frames.filter((f) => f.includes('publicTrade'));
  t.ok(raw.every(compact), 'compact JSON');
  const frames = raw.map(parse);
  for (const f of frames) t.same(shapes(f), shapes(parse(FIXTURE.trade)));
  const rows = frames.flatMap((f) => f.data as Array<{ i: string; T: number; s: string }>);
  const ids = rows.map((r) => Number(r.i));
  t.ok(ids.every((id, k) => Number.isSafeInteger(id) && String(id) === rows[k]!.i), 'numeric strings below 2^53');
  t.ok(ids.every((id, k) => k === 0 || id > ids[k - 1]!), 'increasing');
  t.ok(ids.some((id, k) => k > 0 && id - ids[k - 1]! > 1), 'not contiguous');
  t.same(s.sentIds('publicTrade:BTCUSDT').slice(0, ids.length), ids);
  t.ok(rows.every((r) => r.s === 'BTCUSDT'));
  await c.close();
});

t.test('orderbook: snapshot first, then deltas; u +1 a push; level 1 puts ts before type', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ op: 'subscribe', args: ['orderbook.50.BTCUSDT', 'orderbook.1.BTCUSDT'] });
  await waitFor(() => ofTopic(c, 'orderbook.50.BTCUSDT').length >= 5 && ofTopic(c, 'orderbook.1.BTCUSDT').length >= 2, 5000, 'books');
  const book = ofTopic(c, 'orderbook.50.BTCUSDT');
  t.equal(book[0]!.type, 'snapshot');
  t.same(shape(book[0]), shape(parse(FIXTURE.bookSnapshot)));
  for (const f of book.slice(1)) {
    t.equal(f.type, 'delta');
    t.same(shape(f), shape(parse(FIXTURE.bookDelta)));
  }
  const us = book.map((f) => (f.data as { u: number }).u);
  t.ok(us.every((u, k) => k === 0 || u === us[k - 1]! + 1), 'u +1');
  t.same(s.sentIds('orderbook.50:BTCUSDT').slice(0, us.length), us);
  const levelOne = ofTopic(c, 'orderbook.1.BTCUSDT');
  t.same(Object.keys(levelOne[0]!), ['topic', 'ts', 'type', 'data', 'cts']);
  t.equal((levelOne[0]!.data as { b: unknown[] }).b.length, 1);

  // A second subscriber gets its own snapshot, at the current u.
  const d = await connect(spotUrl(s));
  d.send({ op: 'subscribe', args: ['orderbook.50.BTCUSDT'] });
  await waitFor(() => ofTopic(d, 'orderbook.50.BTCUSDT').length >= 2, 5000, 'second subscriber');
  const [first, second] = ofTopic(d, 'orderbook.50.BTCUSDT');
  t.same([first!.type, second!.type], ['snapshot', 'delta']);
  t.ok(s.sentIds('orderbook.50:BTCUSDT').includes((first!.data as { u: number }).u), 'the same u sequence');
  await Promise.all([c.close(), d.close()]);
});

t.test('restartBook: a snapshot with u=1 to every subscriber, then u counts on', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ op: 'subscribe', args: ['orderbook.200.ETHUSDT'] });
  await waitFor(() => ofTopic(c, 'orderbook.200.ETHUSDT').length >= 2, 5000, 'deltas');
  s.restartBook('orderbook.200:ETHUSDT');
  const from = c.frames.length;
  const restart = parse(await c.next((f) => f.includes('"u":1,'), { from }));
  t.equal(restart.type, 'snapshot');
  const next = parse(await c.next((f) => f.includes('"u":2,'), { from }));
  t.equal(next.type, 'delta');
  t.throws(() => s.restartBook('publicTrade:ETHUSDT'), TypeError);
  t.throws(() => s.restartBook('orderbook.7:ETHUSDT'), TypeError);
  await c.close();
});

t.test('tickers and kline: the docs pages’ key order', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ op: 'subscribe', args: ['tickers.BTCUSDT', 'kline.1.BTCUSDT'] });
  await waitFor(() => ofTopic(c, 'tickers.BTCUSDT').length >= 2 && ofTopic(c, 'kline.1.BTCUSDT').length >= 1, 5000, 'frames');
  const ticker = ofTopic(c, 'tickers.BTCUSDT')[1]!;
  t.same(Object.keys(ticker), ['topic', 'ts', 'type', 'cs', 'data']);
  t.same(Object.keys(ticker.data as object), [
    'symbol',
    'lastPrice',
    'highPrice24h',
    'lowPrice24h',
    'prevPrice24h',
    'volume24h',
    'turnover24h',
    'price24hPcnt',
  ]);
  t.equal(ticker.type, 'snapshot', 'spot tickers are snapshots only');
  const kline = ofTopic(c, 'kline.1.BTCUSDT')[0]!;
  t.same(Object.keys(kline), ['topic', 'data', 'ts', 'type']);
  const k = (kline.data as Array<Record<string, unknown>>)[0]!;
  t.same(Object.keys(k), ['start', 'end', 'interval', 'open', 'close', 'high', 'low', 'volume', 'turnover', 'confirm', 'timestamp']);
  t.equal((k.start as number) % 60_000, 0);
  t.equal(k.end, (k.start as number) + 59_999);
  await c.close();

  const l = await sim(t, { venue: 'bybit-linear' });
  const lc = await connect(linearUrl(l));
  lc.send({ op: 'subscribe', args: ['tickers.BTCUSDT'] });
  await waitFor(() => ofTopic(lc, 'tickers.BTCUSDT').length >= 2, 5000, 'linear tickers');
  const [snap, delta] = ofTopic(lc, 'tickers.BTCUSDT');
  t.same([snap!.type, delta!.type], ['snapshot', 'delta']);
  t.same(Object.keys(snap!), ['topic', 'type', 'data', 'cs', 'ts']);
  t.equal(Object.keys(snap!.data as object).length, 20);
  await lc.close();
});

t.test('spot refuses more than 10 args with a violation; linear accepts them', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  const args = ['BTC', 'ETH', 'SOL', 'XRP', 'DOGE', 'BNB'].flatMap((x) => [`publicTrade.${x}USDT`, `tickers.${x}USDT`]).slice(0, 11);
  c.send({ req_id: 'big', op: 'subscribe', args });
  const reply = parse(await c.next((f) => f.includes('"req_id":"big"')));
  t.same(reply, { success: false, ret_msg: 'args size >10', conn_id: reply.conn_id, req_id: 'big', op: 'subscribe' });
  t.equal(s.connections()[0]!.streams.size, 0, 'nothing subscribed');
  t.same(
    s.violations.map((v) => [v.rule, v.connId]),
    [['args_per_subscribe', s.connections()[0]!.id]],
  );
  c.send({ req_id: 'ten', op: 'subscribe', args: args.slice(0, 10) });
  t.equal(parse(await c.next((f) => f.includes('"req_id":"ten"'))).success, true);
  await c.close();

  const l = await sim(t, { venue: 'bybit-linear' });
  const lc = await connect(linearUrl(l));
  lc.send({ req_id: 'big', op: 'subscribe', args });
  t.equal(parse(await lc.next((f) => f.includes('"req_id":"big"'))).success, true);
  t.equal(l.connections()[0]!.streams.size, 11);
  t.same(l.violations, []);
  await lc.close();
});

t.test('unknown topics and symbols are refused by name; nothing of the request is subscribed', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ req_id: '1', op: 'subscribe', args: ['publicTrade.BTCUSDT', 'orderbook.40.BTCUSDT'] });
  const r1 = parse(await c.next((f) => f.includes('"req_id":"1"')));
  t.match(r1, { success: false, ret_msg: /orderbook\.40\.BTCUSDT/ });
  c.send({ req_id: '2', op: 'subscribe', args: ['publicTrade.NOPEUSDT'] });
  t.match(parse(await c.next((f) => f.includes('"req_id":"2"'))), { success: false, ret_msg: /publicTrade\.NOPEUSDT/ });
  t.equal(s.connections()[0]!.streams.size, 0);
  c.send({ req_id: '3', op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  await c.next((f) => f.includes('"req_id":"3"'));
  c.send({ req_id: '4', op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  t.match(parse(await c.next((f) => f.includes('"req_id":"4"'))), { success: false, ret_msg: /already subscribed/ });
  c.send({ req_id: '5', op: 'unsubscribe', args: ['publicTrade.BTCUSDT'] });
  t.match(parse(await c.next((f) => f.includes('"req_id":"5"'))), { success: true, ret_msg: 'unsubscribe', op: 'unsubscribe' });
  t.equal(s.connections()[0]!.streams.size, 0);
  t.throws(() => s.skip('publicTrade:NOPEUSDT', 1), TypeError);
  await c.close();
});

t.test('a client that stops pinging is cut with ping_timeout; a pinging one stays', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 1500 });
  const pinging = await connect(spotUrl(s));
  const silent = await connect(spotUrl(s));
  const [pingId, silentId] = s.connections().map((c) => c.id);
  const timer = setInterval(() => pinging.send({ op: 'ping' }), 300);
  t.teardown(() => clearInterval(timer));
  silent.send({ op: 'subscribe', args: ['publicTrade.BTCUSDT'] }); // data and subscribes do not count
  const opened = Date.now();
  const closed = await silent.closed;
  t.ok(Date.now() - opened >= 1400, 'not before the timeout');
  t.same(closed, { code: 1008, reason: 'ping timeout' });
  t.same(
    s.violations.map((v) => [v.rule, v.connId]),
    [['ping_timeout', silentId]],
  );
  t.notOk(pinging.isClosed());
  await waitFor(() => s.connections().length === 1, 2000, 'the server notices the close');
  t.equal(s.connections()[0]!.id, pingId);
  await pinging.close();
});

t.test('more than the allowed connection attempts → 429 and a violation; other paths 404', async (t) => {
  const s = await sim(t, { limits: { connectionAttempts: 2, connectionAttemptWindowMs: 60_000 } });
  const a = await connect(spotUrl(s));
  const b = await connect(spotUrl(s));
  const r = await refusedUpgrade(spotUrl(s));
  t.equal(r.status, 429);
  t.ok(Number(r.headers['retry-after']) > 0);
  t.same(
    s.violations.map((v) => [v.rule, v.connId]),
    [['connection_attempts', 0]],
  );
  t.same(
    s.upgradeAttempts.map((x) => x.status),
    [101, 101, 429],
  );
  await Promise.all([a.close(), b.close()]);

  const other = await sim(t);
  t.equal((await refusedUpgrade(`${other.wsUrl}/v5/public/linear`)).status, 404, 'linear path on the spot venue');
  t.equal((await refusedUpgrade(`${other.wsUrl}/ws`)).status, 404);
});

t.test('more than 10 messages a second closes the connection', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  for (let i = 0; i < 11; i++) c.send({ req_id: String(i), op: 'ping' });
  t.equal((await c.closed).code, 1008);
  t.same(
    s.violations.map((v) => v.rule),
    ['messages_per_second'],
  );
});

t.test('skip(): the IDs are generated, listed as skipped, and sent to nobody', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  await waitFor(() => ofTopic(c, 'publicTrade.BTCUSDT').length >= 2, 5000, 'trades');
  s.skip('publicTrade:BTCUSDT', 4);
  await waitFor(() => s.skippedIds('publicTrade:BTCUSDT').length === 4 && ofTopic(c, 'publicTrade.BTCUSDT').length >= 6, 5000, 'skip');
  const seen = ofTopic(c, 'publicTrade.BTCUSDT').flatMap((f) => (f.data as Array<{ i: string }>).map((r) => Number(r.i)));
  const skipped = s.skippedIds('publicTrade:BTCUSDT');
  t.notOk(
    skipped.some((id) => seen.includes(id)),
    'never sent',
  );
  const sent = s.sentIds('publicTrade:BTCUSDT');
  t.same(
    sent.filter((id) => !skipped.includes(id)).slice(0, seen.length),
    seen,
    'received = generated minus skipped',
  );
  await c.close();
});

t.test('serverShutdown: no notice on Bybit, data until graceMs, then close 1001', async (t) => {
  const s = await sim(t);
  const c = await connect(spotUrl(s));
  c.send({ op: 'subscribe', args: ['publicTrade.BTCUSDT'] });
  await c.next((f) => f.includes('publicTrade.BTCUSDT"'));
  const started = Date.now();
  t.equal(s.serverShutdown(undefined, { graceMs: 500 }), 1);
  t.equal(s.connections()[0]!.state, 'shutting-down');
  const from = c.frames.length;
  await c.next((f) => f.includes('publicTrade'), { from });
  t.equal((await c.closed).code, 1001);
  t.ok(Date.now() - started >= 450);
  t.notOk(
    c.frames.slice(from).some((f) => !f.includes('"topic"')),
    'nothing but data',
  );
});

t.test('drop, dropAll and maintenance', async (t) => {
  const s = await sim(t);
  const a = await connect(spotUrl(s));
  const b = await connect(spotUrl(s));
  const [ia, ib] = s.connections().map((c) => c.id);
  s.drop(ia!, { code: 4000 });
  t.equal((await a.closed).code, 4000);
  s.drop(ib!, { abrupt: true });
  t.equal((await b.closed).code, 1006);
  const c = await connect(spotUrl(s));
  s.maintenance(800);
  t.equal((await c.closed).code, 1001);
  t.equal((await refusedUpgrade(spotUrl(s))).status, 503);
  await waitFor(() => s.connections().length === 0, 2000, 'all gone');
  s.advance(850); // the window is over
  const d = await connect(spotUrl(s));
  t.equal(s.dropAll(), 1);
  t.equal((await d.closed).code, 1001);
});

t.test('refuseUpgrades, route and wsRoute', async (t) => {
  const s = await sim(t);
  s.refuseUpgrades(1, 418, 30);
  const r = await refusedUpgrade(spotUrl(s));
  t.same([r.status, r.headers['retry-after']], [418, '30']);
  s.route('GET', '/v5/market/time', (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"retCode":0}');
  });
  t.same(await (await fetch(`${s.httpUrl}/v5/market/time`)).json(), { retCode: 0 });
  t.equal((await fetch(`${s.httpUrl}/nope`)).status, 404);
  s.wsRoute('/v5/public/spot/custom', (ws) => ws.on('message', (m) => ws.send(`echo ${m.toString()}`)));
  const c = await connect(`${spotUrl(s)}/custom`);
  c.send('hi');
  t.equal(await c.next(() => true), 'echo hi');
  t.match(s.connections()[0], { kind: 'custom', path: '/v5/public/spot/custom' });
  t.same(
    s.upgradeAttempts.map((a) => a.status),
    [418, 101],
  );
  await c.close();
});

t.test('an option out of range is refused with a RangeError naming it', async (t) => {
  await t.rejects(startVenueSimulator({ venue: 'bybit-spot', tickMs: 0 }), { name: 'RangeError', message: /^tickMs:/ });
  await t.rejects(startVenueSimulator({ venue: 'okx', subscribesPerHour: 0 }), { name: 'RangeError', message: /^subscribesPerHour:/ });
  await t.rejects(startVenueSimulator({ venue: 'toString' } as unknown as VenueSimulatorOptions), { name: 'RangeError', message: /^venue:/ });
});
