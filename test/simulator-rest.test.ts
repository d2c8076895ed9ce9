import t, { type Test } from 'tap';
import { startSimulator, type BinanceSimulator } from '../src/simulator/index.js';
import { until } from './helpers/stack.js';
import { WebSocket } from 'ws';

// The simulator's market-data REST: aggTrades and historicalTrades served from what the streams
// generated, with REQUEST_WEIGHT, 429 and 418 like Binance.

async function subscribe(t: Test, sim: BinanceSimulator, streams: string[]): Promise<Map<string, number[]>> {
  const seen = new Map<string, number[]>(streams.map((s) => [s, []]));
  const ws = new WebSocket(`${sim.wsUrl}/stream?streams=${streams.join('/')}`);
  t.teardown(() => ws.terminate());
  ws.on('message', (m: Buffer) => {
    const f = JSON.parse(m.toString()) as { stream: string; data: { t?: number; a?: number } };
    seen.get(f.stream)?.push((f.data.t ?? f.data.a)!);
  });
  await new Promise((r) => ws.once('open', r));
  return seen;
}

t.test('aggTrades and historicalTrades serve the events the streams carried', async (t) => {
  const sim = (await startSimulator({ eventsPerSecond: 50, tickMs: 10 })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const seen = await subscribe(t, sim, ['btcusdt@aggTrade', 'btcusdt@trade']);
  t.ok(await until(() => [...seen.values()].every((v) => v.length >= 20), 5000));
  const agg = seen.get('btcusdt@aggTrade')!;
  const res = await fetch(`${sim.httpUrl}/api/v3/aggTrades?symbol=BTCUSDT&fromId=${agg[3]}&limit=5`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('x-mbx-used-weight-1m'), '4', 'aggTrades weighs 4');
  const rows = (await res.json()) as Array<Record<string, unknown>>;
  t.same(rows.map((r) => r.a), agg.slice(3, 8), 'the IDs the stream sent, from fromId');
  t.same(Object.keys(rows[0]!), ['a', 'p', 'q', 'f', 'l', 'T', 'm', 'M'], 'the REST shape');
  const trades = seen.get('btcusdt@trade')!;
  const h = await fetch(`${sim.httpUrl}/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${trades[0]}&limit=3`);
  t.equal(h.headers.get('x-mbx-used-weight-1m'), '29', 'historicalTrades weighs 25');
  const hr = (await h.json()) as Array<Record<string, unknown>>;
  t.same(hr.map((r) => r.id), trades.slice(0, 3));
  t.same(Object.keys(hr[0]!), ['id', 'price', 'qty', 'quoteQty', 'time', 'isBuyerMaker', 'isBestMatch']);
  t.equal((await fetch(`${sim.httpUrl}/api/v3/aggTrades?symbol=BTCUSDT&limit=1001`)).status, 400, 'limit above 1000 refused');
  t.equal((await fetch(`${sim.httpUrl}/api/v3/aggTrades?limit=10`)).status, 400, 'symbol is mandatory');
});

t.test('over the weight limit: 429 with Retry-After; ignoring it: 418', async (t) => {
  const sim = (await startSimulator({ rest: { weightLimit: 10, windowMs: 60_000, banAfterIgnored: 2, banMs: 5000 } })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const get = () => fetch(`${sim.httpUrl}/api/v3/aggTrades?symbol=BTCUSDT&limit=10`);
  t.equal((await get()).status, 200);
  t.equal((await get()).status, 200);
  const r = await get();
  t.equal(r.status, 429, 'the third (weight 12 > 10) is refused');
  t.ok(Number(r.headers.get('retry-after')) >= 1, 'with Retry-After');
  t.equal((await get()).status, 429, 'still in the back-off');
  const ban = await get();
  t.equal(ban.status, 418, 'kept sending: banned');
  t.equal(ban.headers.get('retry-after'), '5');
  t.same(sim.restAnswers.map((a) => a.status), [200, 200, 429, 429, 418]);
  sim.refuseRest(1, 429, 3);
});

t.test('history ages out: fromId older than the history answers from the oldest served', async (t) => {
  const sim = (await startSimulator({ eventsPerSecond: 50, tickMs: 10, tradeHistory: { maxRecords: 10 } })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const seen = await subscribe(t, sim, ['ethusdt@aggTrade']);
  t.ok(await until(() => seen.get('ethusdt@aggTrade')!.length >= 30, 5000));
  const ids = seen.get('ethusdt@aggTrade')!;
  const rows = (await (await fetch(`${sim.httpUrl}/api/v3/aggTrades?symbol=ETHUSDT&fromId=${ids[0]}&limit=5`)).json()) as Array<{ a: number }>;
  t.ok(rows[0]!.a > ids[0]!, `the first ID served (${rows[0]!.a}) is past the one asked for (${ids[0]})`);
  t.equal(rows.length, 5);
});

t.test('futures: /fapi/v1/aggTrades weighs 20; historicalTrades needs a key', async (t) => {
  const sim = (await startSimulator({ venue: 'binance-usdm' })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const a = await fetch(`${sim.httpUrl}/fapi/v1/aggTrades?symbol=BTCUSDT`);
  t.equal(a.status, 200);
  t.equal(a.headers.get('x-mbx-used-weight-1m'), '20');
  t.equal((await fetch(`${sim.httpUrl}/fapi/v1/historicalTrades?symbol=BTCUSDT`)).status, 401);
});
