import t from 'tap';
import type { BinanceSimulator } from '../src/simulator/index.js';
import { startStack, until } from './helpers/stack.js';

// USD-M and COIN-M local books follow the `pu` chain: synced, a gap on one symbol resyncs it alone,
// and with the exchange paused every book equals the simulator's.

for (const [venue, symbols] of [
  ['binance-usdm', ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']],
  ['binance-coinm', ['BTCUSD_PERP', 'ETHUSD_PERP']],
] as const) {
  t.test(`${venue}: books on the pu chain`, async (t) => {
    const s = await startStack(t, {
      sim: { venue, eventsPerSecond: 20, tickMs: 20 },
      config: { venue, symbols: [...symbols], streams: ['depth@100ms'], books: { enabled: true, snapshotLimit: 100, snapshotEveryMs: 0 }, backfill: { maxWeightPerMinute: 6000 } },
    });
    const sim = s.sim as BinanceSimulator;
    const url = s.daemon.http!.url;
    const get = async (sym: string): Promise<{ status: number; body: { lastUpdateId?: number; bids?: unknown; asks?: unknown } }> => {
      const r = await fetch(`${url}/books/${venue}/${sym}?limit=5000`);
      return { status: r.status, body: (await r.json()) as { lastUpdateId?: number } };
    };
    t.ok(await until(async () => (await Promise.all(symbols.map(get))).every((r) => r.status === 200), 15_000, 100), 'every book syncs');
    const books = s.daemon.feeds[0]!.books!;
    sim.skip(`${symbols[0]!.toLowerCase()}@depth@100ms`, 1);
    t.ok(await until(() => books.resyncCount(symbols[0]!) === 1, 10_000, 20), `${symbols[0]} resyncs after a broken pu chain`);
    t.ok(await until(async () => (await get(symbols[0]!)).status === 200, 10_000, 50), 'and syncs again');
    t.same(symbols.slice(1).map((x) => books.resyncCount(x)), symbols.slice(1).map(() => 0), 'the others never resynced');
    sim.pause();
    t.ok(await until(async () => (await Promise.all(symbols.map(get))).every((r, i) => r.body.lastUpdateId === sim.book(symbols[i]!)!.lastUpdateId), 5000, 50), 'every book reaches the last update ID');
    for (const sym of symbols) {
      const mine = (await get(sym)).body;
      const truth = sim.book(sym)!;
      t.same({ bids: mine.bids, asks: mine.asks }, { bids: truth.bids, asks: truth.asks }, `${sym}: equals the exchange's book`);
    }
  });
}
