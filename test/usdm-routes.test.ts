import t from 'tap';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import { plan } from '../src/plan/planner.js';
import { getVenue } from '../src/venues/index.js';
import { startSimulator } from '../src/simulator/index.js';
import { startStack, until } from './helpers/stack.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const usdm = getVenue('binance-usdm')!;

t.test('USD-M: book streams go to /public, the rest to /market, never on one connection', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-routes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.json');
  const symbols = Array.from({ length: 150 }, (_, i) => `R${String(i).padStart(3, '0')}USDT`);
  writeFileSync(file, JSON.stringify({ venue: 'binance-usdm', symbols, streams: ['aggTrade', 'depth@100ms', 'bookTicker', 'kline_1m'] }));
  const p = plan(loadConfig({ files: [file], env: {} }), usdm);
  const byPath = new Map<string, string[]>();
  for (const c of p.connections) byPath.set(c.path, [...(byPath.get(c.path) ?? []), ...c.streams]);
  t.same([...byPath.keys()].sort(), ['/market/stream', '/public/stream']);
  t.ok(byPath.get('/public/stream')!.every((s) => /@(depth@100ms|bookTicker)$/.test(s)), 'only book data on /public');
  t.ok(byPath.get('/market/stream')!.every((s) => /@(aggTrade|kline_1m)$/.test(s)), 'the rest on /market');
  t.equal(byPath.get('/public/stream')!.length, 300);
  t.equal(byPath.get('/market/stream')!.length, 300);
  t.ok(p.connections.every((c) => c.streams.length <= 200), 'USD-M: at most 200 streams per connection');
  t.equal(p.connections.length, 4, '300 + 300 streams at 200 per connection: 2 + 2');
});

t.test('USD-M end to end: every stream delivers on its route', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { venue: 'binance-usdm', eventsPerSecond: 2 },
    config: { venue: 'binance-usdm', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['aggTrade', 'depth@100ms', 'bookTicker', 'kline_1m'] },
  });
  const names = [...daemon.router.names];
  t.ok(await until(() => names.every((n) => daemon.router.stream(n)!.received > 0), 8000), `all ${names.length} streams delivered`);
  t.same(sim.connections().map((c) => c.path).sort(), ['/market/stream', '/public/stream']);
  t.same(sim.violations, []);
});

t.test('the simulator reproduces the silent failure: a /market stream on /public is accepted and never delivers', async (t) => {
  const sim = await startSimulator({ venue: 'binance-usdm', eventsPerSecond: 20, tickMs: 50 });
  t.teardown(() => sim.close());
  const ws = new WebSocket(`${sim.wsUrl}/public/stream?streams=btcusdt@aggTrade/btcusdt@depth@100ms`);
  const seen = new Set<string>();
  ws.on('message', (d) => seen.add((JSON.parse(d.toString()) as { stream: string }).stream));
  await new Promise((r) => ws.once('open', r));
  await until(() => seen.has('btcusdt@depth@100ms'), 3000);
  await new Promise((r) => setTimeout(r, 500));
  ws.close();
  t.ok(seen.has('btcusdt@depth@100ms'), 'depth delivers on /public');
  t.notOk(seen.has('btcusdt@aggTrade'), 'aggTrade never does, and nothing says so');
});
