import t, { type Test } from 'tap';
import { startSimulator, type SimulatorOptions } from '../src/simulator/index.js';
import { connect, data, sleep, waitFor } from './fixtures/sim-client.js';

async function sim(t: Test, opts: SimulatorOptions = {}) {
  const s = await startSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts });
  t.teardown(() => s.close());
  return s;
}

const isData = (f: string): boolean => !f.includes('"result"') && !f.includes('"error"');

t.test('combined URL subscription: {"stream","data"} frames for each stream', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade/ethusdt@aggTrade`);
  const trade = JSON.parse(await c.next((f) => f.includes('"btcusdt@trade"')));
  const agg = JSON.parse(await c.next((f) => f.includes('"ethusdt@aggTrade"')));
  t.same(Object.keys(trade), ['stream', 'data']);
  t.equal(trade.data.e, 'trade');
  t.equal(trade.data.s, 'BTCUSDT');
  t.equal(agg.data.e, 'aggTrade');
  t.equal(agg.data.s, 'ETHUSDT');
  const [info] = s.connections();
  t.equal(info?.combined, true);
  t.same([...info!.streams], ['btcusdt@trade', 'ethusdt@aggTrade']);
  t.equal(info?.path, '/stream');
  t.equal(s.totalConnections, 1);
  t.same(s.upgradeAttempts.map((a) => a.status), [101]);
  await c.close();
});

t.test('raw /ws/<stream> sends bare payloads', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/ws/btcusdt@depth@100ms`);
  const d = JSON.parse(await c.next(() => true));
  t.equal(d.e, 'depthUpdate');
  t.equal(d.stream, undefined);
  t.equal(s.connections()[0]?.combined, false);
  await c.close();
});

t.test('SUBSCRIBE, LIST_SUBSCRIPTIONS, UNSUBSCRIBE, SET_PROPERTY/GET_PROPERTY', async (t) => {
  const s = await sim(t, { limits: { messagesPerSecond: 50 } });
  const c = await connect(`${s.wsUrl}/ws`);
  c.send({ method: 'SUBSCRIBE', params: ['btcusdt@trade', 'btcusdt@bookTicker'], id: 1 });
  t.equal(await c.next((f) => f.includes('"id":1')), '{"result":null,"id":1}');
  const d = data(await c.next((f) => f.includes('"e":"trade"')));
  t.equal(d.s, 'BTCUSDT', 'raw connection: bare payload after SUBSCRIBE');

  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 'list-1' });
  t.same(JSON.parse(await c.next((f) => f.includes('"list-1"'))), { result: ['btcusdt@trade', 'btcusdt@bookTicker'], id: 'list-1' });

  c.send({ method: 'GET_PROPERTY', params: ['combined'], id: 2 });
  t.equal(await c.next((f) => f.includes('"id":2')), '{"result":false,"id":2}');
  c.send({ method: 'SET_PROPERTY', params: ['combined', true], id: 3 });
  t.equal(await c.next((f) => f.includes('"id":3')), '{"result":null,"id":3}');
  const from = c.frames.length;
  const wrapped = JSON.parse(await c.next((f) => isData(f), { from }));
  t.ok(['btcusdt@trade', 'btcusdt@bookTicker'].includes(wrapped.stream), 'combined after SET_PROPERTY');

  c.send({ method: 'UNSUBSCRIBE', params: ['btcusdt@trade'], id: 4 });
  const reply = await c.next((f) => f.includes('"id":4'));
  t.equal(reply, '{"result":null,"id":4}');
  const after = c.frames.indexOf(reply) + 1;
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: null });
  t.same(JSON.parse(await c.next((f) => f.includes('"id":null'))), { result: ['btcusdt@bookTicker'], id: null });
  // Ten more bookTicker frames (half a second of ticks): none of trade among them since the reply.
  const tickers = (): number => c.frames.slice(after).filter((f) => f.includes('"btcusdt@bookTicker"')).length;
  await waitFor(() => tickers() >= 10, 3000, 'bookTicker frames');
  t.notOk(c.frames.slice(after).some((f) => f.includes('"btcusdt@trade"')), 'no trade frames after UNSUBSCRIBE');
  t.same(s.violations, []);
  await c.close();
});

t.test('invalid requests get error replies and the connection stays open', async (t) => {
  const s = await sim(t, { limits: { messagesPerSecond: 100 } });
  const c = await connect(`${s.wsUrl}/ws`);
  const ask = async (msg: string): Promise<{ error: { code: number; msg: string }; id: unknown }> => {
    const from = c.frames.length;
    c.send(msg);
    return JSON.parse(await c.next((f) => f.includes('"error"'), { from }));
  };
  let r = await ask('{"method":"SUBSCRIBE",');
  t.equal(r.error.code, 3, 'invalid JSON');
  t.match(r.error.msg, /^Invalid JSON/);
  r = await ask('{"method":"SUBSCRIBEE","params":[],"id":7}');
  t.same([r.error.code, r.id], [2, 7], 'unknown method');
  t.match(r.error.msg, /^Invalid request: unknown variant/);
  r = await ask('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":{"a":1}}');
  t.same([r.error.code, r.id], [2, null], 'bad id type');
  r = await ask('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":"0123456789012345678901234567890123456"}');
  t.equal(r.error.code, 2, 'id string longer than 36');
  r = await ask('{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":8}');
  t.same([r.error.code, r.id], [2, 8], 'unknown stream type');
  r = await ask('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":9}');
  t.equal(r.error.code, 2, 'upper-case symbol');
  r = await ask('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":10}');
  t.equal(r.error.code, 2, 'params not an array');
  r = await ask('{"method":"SET_PROPERTY","params":["speed",true],"id":11}');
  t.same(r.error, { code: 0, msg: 'Unknown property' });
  r = await ask('{"method":"SET_PROPERTY","params":["combined","yes"],"id":12}');
  t.same(r.error, { code: 1, msg: 'Invalid value type: expected Boolean' });
  r = await ask('{"method":"GET_PROPERTY","params":[1],"id":13}');
  t.equal(r.error.code, 2, 'property name not a string');
  t.notOk(c.isClosed());
  t.same(s.connections()[0]?.streams.size, 0, 'nothing subscribed by failed requests');
  await c.close();
});

t.test('invalid stream in the URL refuses the upgrade with 400', async (t) => {
  const s = await sim(t);
  await t.rejects(connect(`${s.wsUrl}/stream?streams=btcusdt@trade/btcusdt@bogus`), /HTTP 400/);
  await t.rejects(connect(`${s.wsUrl}/nowhere`), /HTTP 404/);
  t.same(s.upgradeAttempts.map((a) => a.status), [400, 404]);
});

t.test('stream limit: the excess is refused with an error and recorded', async (t) => {
  const s = await sim(t, { limits: { streamsPerConnection: 3 } });
  const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade/ethusdt@trade`);
  c.send({ method: 'SUBSCRIBE', params: ['bnbusdt@trade', 'xrpusdt@trade', 'adausdt@trade'], id: 1 });
  const r = JSON.parse(await c.next((f) => f.includes('"id":1')));
  t.equal(r.error.code, 2);
  t.match(r.error.msg, /too many streams/);
  t.same([...s.connections()[0]!.streams], ['btcusdt@trade', 'ethusdt@trade', 'bnbusdt@trade']);
  t.equal(s.violations.length, 1);
  t.equal(s.violations[0]?.rule, 'streams_per_connection');
  t.equal(s.violations[0]?.connId, s.connections()[0]?.id);

  // Over the limit in the URL itself: connected, first N subscribed, an error frame with id null.
  const c2 = await connect(`${s.wsUrl}/stream?streams=a1usdt@trade/a2usdt@trade/a3usdt@trade/a4usdt@trade`);
  const e = JSON.parse(await c2.next((f) => f.includes('"error"')));
  t.equal(e.id, null);
  t.equal(s.violations.length, 2);
  await c.close();
  await c2.close();
});

t.test('sequenced IDs exceed 2^32 and are contiguous on the wire (spot)', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@depth/btcusdt@bookTicker`);
  await waitFor(() => c.frames.filter((f) => f.includes('@depth"')).length >= 5, 5000, 'depth frames');
  await waitFor(() => c.frames.filter((f) => f.includes('@trade"')).length >= 5, 5000, 'trade frames');
  await waitFor(() => c.frames.filter((f) => f.includes('@aggTrade"')).length >= 5, 5000, 'aggTrade frames');
  const by = (stream: string) => c.frames.map((f) => JSON.parse(f)).filter((o) => o.stream === stream).map((o) => o.data);
  const trades = by('btcusdt@trade');
  for (let i = 1; i < trades.length; i++) t.equal(trades[i].t, trades[i - 1].t + 1);
  t.ok(trades[0].t > 2 ** 32, 'trade t > 2^32');
  const aggs = by('btcusdt@aggTrade');
  for (let i = 1; i < aggs.length; i++) {
    t.equal(aggs[i].a, aggs[i - 1].a + 1);
    t.equal(aggs[i].f, aggs[i - 1].l + 1, 'aggTrade f follows previous l');
  }
  t.ok(aggs[0].a > 2 ** 32);
  const depth = by('btcusdt@depth');
  for (let i = 1; i < depth.length; i++) t.equal(depth[i].U, depth[i - 1].u + 1, 'spot: next U = previous u + 1');
  t.ok(depth.every((d) => d.u >= d.U && d.U > 2 ** 32));
  const books = by('btcusdt@bookTicker');
  for (let i = 1; i < books.length; i++) t.ok(books[i].u > books[i - 1].u, 'bookTicker u increases');
  t.notOk('e' in books[0], 'spot bookTicker has no e');

  // What arrived is a contiguous run of what was generated.
  const sent = s.sentIds('btcusdt@trade');
  const start = sent.indexOf(trades[0].t);
  t.ok(start >= 0);
  t.same(sent.slice(start, start + trades.length), trades.map((d) => d.t));
  t.same(s.sentIds('btcusdt@depth').slice(0, depth.length), depth.map((d) => d.u), 'depth: sentIds reports u');
  t.ok(s.generated('btcusdt@trade') >= trades.length);
  t.same(s.sentIds('btcusdt@ticker'), [], 'never subscribed: nothing');
  await c.close();
});

t.test('USD-M depth carries pu = previous u', async (t) => {
  const s = await sim(t, { venue: 'binance-usdm' });
  const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker`);
  await waitFor(() => c.frames.filter((f) => f.includes('@depth@100ms"')).length >= 5, 5000, 'depth frames');
  const depth = c.frames.map((f) => JSON.parse(f)).filter((o) => o.stream === 'btcusdt@depth@100ms').map((o) => o.data);
  for (let i = 1; i < depth.length; i++) {
    t.equal(depth[i].pu, depth[i - 1].u);
    t.ok(depth[i].U > depth[i].pu, 'U after pu (not necessarily pu + 1)');
  }
  const book = data(await c.next((f) => f.includes('@bookTicker"')));
  t.equal(book.e, 'bookTicker', 'USD-M bookTicker has e/E');
  t.type(book.E, 'number');
  await c.close();
});

t.test('two subscribers of a stream get identical frames', async (t) => {
  const s = await sim(t);
  const a = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade/btcusdt@depth@100ms`);
  const b = await connect(`${s.wsUrl}/stream?streams=btcusdt@depth@100ms/btcusdt@trade`);
  const r = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  await waitFor(() => b.frames.length >= 10, 5000, 'frames on b');
  // From the first trade both saw, the frames are byte-identical.
  const firstB = JSON.parse(b.frames.find((f) => f.includes('@trade"'))!).data.t as number;
  const tradesA = a.frames.filter((f) => f.includes('@trade"') && JSON.parse(f).data.t >= firstB);
  const tradesB = b.frames.filter((f) => f.includes('@trade"'));
  const n = Math.min(tradesA.length, tradesB.length);
  t.ok(n >= 2);
  t.same(tradesA.slice(0, n), tradesB.slice(0, n));
  // The raw subscriber (connected last) gets the same events, unwrapped.
  await waitFor(() => r.frames.length >= 1, 5000, 'a raw frame');
  const rawFirst = r.frames[0]!;
  const wrapped = b.frames.find((f) => f.includes('@trade"') && JSON.parse(f).data.t === JSON.parse(rawFirst).t);
  t.equal(wrapped, `{"stream":"btcusdt@trade","data":${rawFirst}}`);
  await Promise.all([a.close(), b.close(), r.close()]);
});

t.test('skip(): a real ID gap on the wire, reported by skippedIds', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  await waitFor(() => c.frames.length >= 2, 5000, 'first trades');
  s.skip('btcusdt@trade', 3);
  await waitFor(() => s.skippedIds('btcusdt@trade').length === 3, 5000, 'skipped');
  const skipped = s.skippedIds('btcusdt@trade');
  await waitFor(() => c.frames.some((f) => JSON.parse(f).t > skipped[2]!), 5000, 'a trade after the gap');
  const ids = c.frames.map((f) => JSON.parse(f).t as number);
  const i = ids.findIndex((id) => id > skipped[2]!);
  t.equal(ids[i - 1], skipped[0]! - 1, 'last before the gap');
  t.equal(ids[i], skipped[2]! + 1, 'first after the gap');
  t.same(skipped, [skipped[0]!, skipped[0]! + 1, skipped[0]! + 2]);
  for (const id of skipped) t.notOk(ids.includes(id), `skipped ${id} never sent`);
  t.ok(s.sentIds('btcusdt@trade').includes(skipped[1]!), 'skipped IDs are in sentIds');
  t.throws(() => s.skip('btcusdt@bogus', 1), TypeError);
  await c.close();
});

t.test('timeUnit=MICROSECOND switches event times to µs', async (t) => {
  const s = await sim(t, { clock: () => 1_700_000_000_123 });
  const c = await connect(`${s.wsUrl}/ws/btcusdt@trade?timeUnit=MICROSECOND`);
  const d = data(await c.next(() => true));
  t.equal(d.E, 1_700_000_000_123_000);
  await c.close();
});

t.test('REST on the same port: status, ping, time, 404, weight header', async (t) => {
  const s = await sim(t, { clock: () => 1_700_000_000_000 });
  let r = await fetch(`${s.httpUrl}/sapi/v1/system/status`);
  t.same(await r.json(), { status: 0, msg: 'normal' });
  t.equal(r.headers.get('x-mbx-used-weight-1m'), '1');
  r = await fetch(`${s.httpUrl}/api/v3/ping`);
  t.same(await r.json(), {});
  r = await fetch(`${s.httpUrl}/api/v3/time`);
  t.same(await r.json(), { serverTime: 1_700_000_000_000 });
  t.ok(Number(r.headers.get('x-mbx-used-weight-1m')) >= 2, 'weight accumulates');
  r = await fetch(`${s.httpUrl}/api/v3/nothing`);
  t.equal(r.status, 404);
  const body = (await r.json()) as { code: number; msg: string };
  t.equal(body.code, -1);
  t.type(body.msg, 'string');
});

t.test('extension points: route() and wsRoute() endpoints get pings and faults', async (t) => {
  const s = await sim(t, { pingIntervalMs: 100, pongTimeoutMs: 5000 });
  s.route('POST', '/fapi/v1/listenKey', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"listenKey":"abc"}');
  });
  t.same(await (await fetch(`${s.httpUrl}/fapi/v1/listenKey`, { method: 'POST' })).json(), { listenKey: 'abc' });

  s.wsRoute('/private/ws', (ws, req, conn) => {
    t.equal(conn.kind, 'custom');
    t.match(req.url, /listenKey=abc/);
    ws.send('{"e":"hello"}');
    ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
  });
  const c = await connect(`${s.wsUrl}/private/ws?listenKey=abc`);
  await c.next((f) => f === '{"e":"hello"}');
  c.send('x');
  await c.next((f) => f === 'echo:x');
  await waitFor(() => c.pings.length >= 1, 3000, 'a ping');
  t.equal(s.stall(), 1);
  const before = c.frames.length;
  const pings = c.pings.length;
  c.send('y');
  await sleep(400);
  t.equal(c.frames.length, before, 'stalled custom endpoint sends nothing, even when asked');
  t.equal(c.pings.length, pings, 'no pings while stalled');
  s.drop(s.connections()[0]!.id, { code: 1000 });
  t.equal((await c.closed).code, 1000, 'and can be dropped');
});
