import t, { type Test } from 'tap';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { ConfigError, ErrorCodes, PlanOverBudgetError } from '../src/errors.js';
import { plan, type Plan } from '../src/plan/planner.js';
import { formatPlan, planToJSON } from '../src/plan/report.js';
import { binanceSpot } from '../src/venues/binance/spot.js';
import { binanceUsdm } from '../src/venues/binance/usdm.js';

const spotDefaults = loadConfig({ files: [], env: {} });

function symbols(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `S${i}USDT`);
}

function config(n: number, streams: string[], limits: Partial<Config['limits']> = {}, base: Config = spotDefaults): Config {
  return { ...base, symbols: symbols(n), streams, limits: { ...base.limits, ...limits } };
}

/**
 * Invariants every plan keeps, whatever the input. Streams are grouped by their route (spot: all on
 * /stream; USD-M: book data on /public/stream, the rest on /market/stream); within a route the plan
 * uses as few connections as the limit allows and keeps a symbol's streams together.
 */
function checkInvariants(t: Test, p: Plan, c: Config): void {
  const venue = c.venue === 'binance-usdm' ? binanceUsdm : binanceSpot;
  const routes = new Map<string, string[]>();
  for (const type of c.streams) {
    const route = venue.streamType(type)!.route;
    routes.set(route, [...(routes.get(route) ?? []), type]);
  }
  let expected = 0;
  for (const [route, types] of routes) {
    const conns = p.connections.filter((conn) => conn.path === route);
    const capacity = Math.floor(c.limits.streamsPerConnection / types.length);
    t.equal(conns.length, Math.ceil(c.symbols.length / capacity), `${route}: as few connections as the limit allows`);
    expected += conns.length;
    const sizes = conns.map((conn) => conn.symbols.length);
    t.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${route}: symbols spread evenly`);
    t.same(conns.flatMap((conn) => conn.symbols), c.symbols, `${route}: every symbol once, in order`);
    for (const conn of conns) {
      t.same(
        conn.streams,
        conn.symbols.flatMap((s) => types.map((type) => `${s.toLowerCase()}@${type}`)),
        `${conn.id}: each symbol's streams of this route together, on this connection`,
      );
    }
  }
  t.equal(p.connections.length, expected, 'no connection outside the routes');
  t.ok(p.connections.every((conn) => conn.streams.length <= c.limits.streamsPerConnection), 'no connection over the limit');
  t.same(p.connections.map((conn) => conn.id), p.connections.map((_, i) => `c${i}`), 'ids c0, c1, ...');
  t.equal(p.totalStreams, c.symbols.length * c.streams.length);
}

t.test('packing at 1, 1024, 1025 and 10,000 streams', async (t) => {
  let c = config(1, ['trade']);
  let p = plan(c, binanceSpot);
  t.equal(p.connections.length, 1);
  t.same(p.connections[0], { id: 'c0', path: '/stream', symbols: ['S0USDT'], streams: ['s0usdt@trade'] });
  checkInvariants(t, p, c);

  c = config(1024, ['trade']);
  p = plan(c, binanceSpot);
  t.equal(p.connections.length, 1, '1024 streams fit one connection');
  t.equal(p.connections[0]!.streams.length, 1024);
  t.equal(p.usage.streamsPerConnection.maxPercent, 100);
  checkInvariants(t, p, c);

  c = config(1025, ['trade']);
  p = plan(c, binanceSpot);
  t.same(p.connections.map((x) => x.streams.length), [513, 512], '1025 streams: two connections, evenly');
  checkInvariants(t, p, c);

  c = config(10_000, ['trade']);
  p = plan(c, binanceSpot);
  t.equal(p.connections.length, 10);
  t.ok(p.connections.every((x) => x.streams.length === 1000));
  checkInvariants(t, p, c);

  c = config(2500, ['trade', 'aggTrade', 'bookTicker', 'depth@100ms']);
  p = plan(c, binanceSpot);
  t.equal(p.connections.length, 10, '2500 symbols × 4 = 10,000 streams, 256 symbols a connection at most');
  t.same(new Set(p.connections.map((x) => x.symbols.length)), new Set([250]));
  checkInvariants(t, p, c);
});

t.test('625 symbols × 4 streams at 1024 → 3 connections of 209/208/208 symbols', async (t) => {
  const c = config(625, ['trade', 'aggTrade', 'bookTicker', 'depth@100ms']);
  const p = plan(c, binanceSpot);
  t.same(p.connections.map((x) => x.symbols.length), [209, 208, 208]);
  t.same(p.connections.map((x) => x.streams.length), [836, 832, 832]);
  t.equal(p.symbolsPerConnection, 209);
  t.equal(p.totalStreams, 2500);
  t.equal(p.usage.streamsPerConnection.max, 836);
  t.equal(p.usage.streamsPerConnection.maxPercent, 81.6);
  t.equal(Math.round(p.usage.streamsPerConnection.mean * 100) / 100, 833.33);
  checkInvariants(t, p, c);
});

t.test('never over the limit, whatever the shape', async (t) => {
  for (const limit of [1, 3, 7, 200, 1000, 1024]) {
    for (const types of [['trade'], ['trade', 'bookTicker'], ['trade', 'aggTrade', 'bookTicker']]) {
      if (types.length > limit) continue;
      for (const n of [1, 2, 5, 99, 100, 101, 333, 1024, 1025]) {
        const c = config(n, types, { streamsPerConnection: limit, connectionAttempts: 300 });
        const capacity = Math.floor(limit / types.length);
        if (Math.ceil(n / capacity) > 300) continue;
        const p = plan(c, binanceSpot);
        const ok =
          p.connections.every((x) => x.streams.length <= limit) &&
          p.connections.length === Math.ceil(n / capacity) &&
          p.connections.every((x) => x.streams.length === x.symbols.length * types.length);
        if (!ok) t.fail(`limit ${limit}, ${types.length} types, ${n} symbols`);
      }
    }
  }
  t.pass('all shapes within the limit');
});

t.test('a symbol whose streams alone exceed the limit is a config error on streams', async (t) => {
  const c = config(2, ['trade', 'aggTrade', 'bookTicker'], { streamsPerConnection: 2 });
  t.throws(() => plan(c, binanceSpot), { name: 'ConfigError', key: 'streams', message: /3 stream types per symbol exceed limits\.streamsPerConnection \(2\)/ });
  t.throws(() => plan(c, binanceSpot), ConfigError);
});

t.test('over the connection-attempt budget: refused, with the hosts it would take', async (t) => {
  const c = config(1000, ['trade'], { streamsPerConnection: 1 });
  let err: unknown;
  try {
    plan(c, binanceSpot);
  } catch (e) {
    err = e;
  }
  t.type(err, PlanOverBudgetError);
  const e = err as PlanOverBudgetError;
  t.equal(e.code, ErrorCodes.FK_ERR_PLAN_OVER_BUDGET);
  t.equal(e.connections, 1000);
  t.equal(e.ipsNeeded, 4, 'ceil(1000 / 300)');
  t.match(e.message, /needs 1000 connections/);
  t.match(e.message, /300 connection attempts per 5 min/);
  t.match(e.message, /split the symbols across 4 hosts \(IPs\)/i);

  const atBudget = config(300, ['trade'], { streamsPerConnection: 1 });
  t.equal(plan(atBudget, binanceSpot).connections.length, 300, 'exactly the budget is allowed');
  t.equal(plan(atBudget, binanceSpot).usage.connectionAttempts.percent, 100);

  const smallBudget = config(3, ['trade'], { streamsPerConnection: 1, connectionAttempts: 2 });
  t.throws(() => plan(smallBudget, binanceSpot), { code: ErrorCodes.FK_ERR_PLAN_OVER_BUDGET, ipsNeeded: 2 });
});

t.test('USD-M defaults to 200 streams per connection', async (t) => {
  const usdm = loadConfig({ files: [], env: { FEEDKEEPER_VENUE: 'binance-usdm' } });
  const c = config(100, ['trade', 'aggTrade', 'bookTicker', 'depth@100ms'], {}, usdm);
  const p = plan(c, binanceUsdm);
  t.equal(p.connections.length, 2, '400 streams at 200 per connection');
  t.same(p.connections.map((x) => [x.path, x.streams.length]), [
    ['/market/stream', 200],
    ['/public/stream', 200],
  ], 'trade and aggTrade on /market, book data on /public');
  t.equal(p.usage.streamsPerConnection.limit, 200);
  t.equal(p.usage.subscribe.sendRatePerSecond, 9, '10 msg/s, one kept for pongs');
  checkInvariants(t, p, c);
});

t.test('usage figures', async (t) => {
  const c = config(1024, ['trade']);
  const p = plan(c, binanceSpot);
  t.same(p.usage.connectionAttempts, { connections: 1, budget: 300, windowMs: 300_000, percent: 0.3 });
  t.equal(p.usage.subscribe.messagesPerConnection, 6, 'ceil(1024 / 200)');
  t.equal(p.usage.subscribe.messagesTotal, 6);
  t.equal(p.usage.subscribe.sendRatePerSecond, 4, '5 msg/s, one kept for pongs');
  t.equal(p.usage.subscribe.secondsPerConnection, 1.5);

  const def = plan(spotDefaults, binanceSpot);
  t.equal(def.connections.length, 1);
  t.equal(def.totalStreams, 12);
  t.same(def.connections[0]!.streams.slice(0, 2), ['btcusdt@trade', 'btcusdt@bookTicker'], 'wire names via venue.streamName');
});

t.test('the same config gives the same plan', async (t) => {
  const c = config(625, ['trade', 'bookTicker']);
  t.same(planToJSON(plan(c, binanceSpot)), planToJSON(plan(c, binanceSpot)));
});

t.test('report', async (t) => {
  const c = config(625, ['trade', 'aggTrade', 'bookTicker', 'depth@100ms']);
  const p = plan(c, binanceSpot);
  const text = formatPlan(p);
  t.match(text, /binance-spot: 625 symbols × 4 stream types = 2500 streams on 3 connections/);
  t.match(text, /c0\s+\/stream\s+836\s+209\s+S0USDT \.\. S208USDT/);
  t.match(text, /c2\s+\/stream\s+832\s+208\s+S417USDT \.\. S624USDT/);
  t.match(text, /streams per connection \(max\)\s+836 of 1024\s+81\.6%/);
  t.match(text, /connection attempts per 300 s\s+3 of 300\s+1%/);
  const json = JSON.parse(JSON.stringify(planToJSON(p))) as { venue: string; connections: unknown[] };
  t.equal(json.venue, 'binance-spot');
  t.equal(json.connections.length, 3);
});
