import t from 'tap';
import WebSocket from 'ws';
import type { BinanceSimulator } from '../src/simulator/index.js';
import { startStack, until } from './helpers/stack.js';

// The relay serves `<symbol>@depth20@100ms` built from the local book: a bot gets Binance's
// partial-depth shape, equal to the exchange's book, without the daemon subscribing it upstream.

t.test('relay clients get partial depth built from the local books', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 20 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['depth@100ms'], relay: { enabled: true, port: 0 }, books: { enabled: true, snapshotLimit: 100, snapshotEveryMs: 0 }, backfill: { maxWeightPerMinute: 6000 } },
  });
  const sim = s.sim as BinanceSimulator;
  const frames: Array<{ stream: string; data: { lastUpdateId: number; bids: Array<[string, string]>; asks: Array<[string, string]> } }> = [];
  const ws = new WebSocket(`${s.daemon.relay!.url}/stream?streams=btcusdt@depth20@100ms/ethusdt@depth5`);
  t.teardown(() => ws.terminate());
  ws.on('message', (m: Buffer) => frames.push(JSON.parse(m.toString()) as (typeof frames)[number]));
  await new Promise((r) => ws.once('open', r));
  t.ok(await until(() => frames.some((f) => f.stream === 'btcusdt@depth20@100ms') && frames.some((f) => f.stream === 'ethusdt@depth5'), 10_000, 20), 'both streams deliver');
  const btc = frames.filter((f) => f.stream === 'btcusdt@depth20@100ms');
  t.ok(btc.every((f) => f.data.bids.length <= 20 && f.data.asks.length <= 20 && Number(f.data.bids[0]![0]) < Number(f.data.asks[0]![0])), 'at most 20 levels a side, never crossed');
  t.same(Object.keys(btc[0]!.data), ['lastUpdateId', 'bids', 'asks'], "Binance's partial-depth shape");
  sim.pause();
  const truth = sim.book('BTCUSDT', 20)!;
  t.ok(await until(() => frames.some((f) => f.stream === 'btcusdt@depth20@100ms' && f.data.lastUpdateId === truth.lastUpdateId), 5000, 20), 'reaches the exchange\'s last update');
  const last = frames.filter((f) => f.stream === 'btcusdt@depth20@100ms').pop()!;
  t.same({ bids: last.data.bids, asks: last.data.asks }, { bids: truth.bids, asks: truth.asks }, "equals the exchange's top 20");
  const upstream = sim.connections().flatMap((c) => [...c.streams]);
  t.notOk(upstream.some((n) => n.includes('@depth20') || n.includes('@depth5')), 'never subscribed upstream');
});
