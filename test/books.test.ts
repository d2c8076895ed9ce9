import t from 'tap';
import { run as replay } from '../src/cli/commands/replay.js';
import { readLedger } from '../src/ledger/report.js';
import type { BinanceSimulator } from '../src/simulator/index.js';
import { sleep, startStack, until, writeTestConfig } from './helpers/stack.js';

// Local order books against the simulator's matching book: 20 symbols, a skipped depth update on
// one of them resyncs that symbol only; afterwards every book equals the simulator's at the same
// update ID, no book is ever served crossed, and `feedkeeper replay` rebuilds a book from the
// recording alone that equals the simulator's.

const SYMBOLS = Array.from({ length: 20 }, (_, i) => `B${String(i).padStart(3, '0')}USDT`);
const stream = (s: string): string => `${s.toLowerCase()}@depth@100ms`;

interface Answer {
  synced?: boolean;
  lastUpdateId?: number;
  bids?: Array<[string, string]>;
  asks?: Array<[string, string]>;
}

t.test('20 books: a gap on one resyncs it alone; every book equals the exchange\'s; replay rebuilds one', async (t) => {
  const over = {
    symbols: SYMBOLS,
    streams: ['depth@100ms'],
    books: { enabled: true, snapshotLimit: 100, snapshotEveryMs: 300 },
    backfill: { maxWeightPerMinute: 6000 },
  };
  const s = await startStack(t, { sim: { eventsPerSecond: 20, tickMs: 20 }, config: over });
  const sim = s.sim as BinanceSimulator;
  const url = s.daemon.http!.url;
  const get = async (sym: string): Promise<{ status: number; body: Answer }> => {
    const r = await fetch(`${url}/books/binance-spot/${sym}?limit=5000`);
    return { status: r.status, body: (await r.json()) as Answer };
  };
  let crossedServed = 0;
  let served = 0;
  const check = (b: Answer): void => {
    served++;
    const bid = Number(b.bids?.[0]?.[0] ?? -Infinity);
    const ask = Number(b.asks?.[0]?.[0] ?? Infinity);
    if (bid >= ask) crossedServed++;
  };
  const allSynced = async (): Promise<boolean> => {
    for (const sym of SYMBOLS) {
      const r = await get(sym);
      if (r.status !== 200) return false;
      check(r.body);
    }
    return true;
  };
  t.ok(await until(allSynced, 15_000, 100), 'every book syncs');
  const books = s.daemon.feeds[0]!.books!;
  t.same(SYMBOLS.map((x) => books.resyncCount(x)), SYMBOLS.map(() => 0), 'no resync so far');

  const victim = SYMBOLS[7]!;
  sim.skip(stream(victim), 2);
  t.ok(await until(() => books.resyncCount(victim) === 1, 10_000, 20), `${victim} resyncs`);
  t.ok(await until(async () => (await get(victim)).status === 200, 10_000, 50), `${victim} is synced again`);
  t.same(SYMBOLS.filter((x) => x !== victim).map((x) => books.resyncCount(x)), SYMBOLS.slice(1).map(() => 0), 'the other 19 never resynced');
  for (let i = 0; i < 10; i++) {
    await allSynced();
    await sleep(30);
  }
  const gaps = (await readLedger(s.config.ledger.path)).filter((g) => g.cause === 'sequence');
  t.same(gaps.map((g) => g.stream), [stream(victim)], 'a sequence gap in the ledger for that stream alone');

  // Freeze the exchange: every book catches up with the simulator's last update and equals it.
  sim.pause();
  const simBook = (sym: string) => sim.book(sym)!;
  t.ok(await until(async () => (await Promise.all(SYMBOLS.map(get))).every((r, i) => r.body.lastUpdateId === simBook(SYMBOLS[i]!).lastUpdateId), 5000, 50), 'every book reaches the exchange\'s last update ID');
  for (const sym of SYMBOLS) {
    const mine = (await get(sym)).body;
    const truth = simBook(sym);
    check(mine);
    t.same({ bids: mine.bids, asks: mine.asks }, { bids: truth.bids, asks: truth.asks }, `${sym}: equals the exchange's book at ${truth.lastUpdateId} (${truth.bids.length}+${truth.asks.length} levels)`);
  }
  t.equal(crossedServed, 0, `no book served crossed (${served} answers)`);
  const metric = await s.daemon.metrics.registry.getSingleMetricAsString('feedkeeper_book_resyncs_total');
  t.match(metric, /reason="gap"} 1/, 'one resync counted, reason gap');
  t.notMatch(metric, /reason="crossed"} [1-9]/, 'none for a crossed book');

  // A book snapshot after the freeze reaches the recording; then the recording alone rebuilds it.
  await sleep(700);
  await s.daemon.stop('test over');
  const file = writeTestConfig(s.dir, sim, over);
  for (const sym of [victim, SYMBOLS[0]!]) {
    let out = '';
    const code = await replay(['--config', file, '--book', sym], { stdout: (x) => (out += x), env: {} });
    t.equal(code, 0, `replay ${sym}: exit 0`);
    const r = JSON.parse(out) as Answer & { snapshotAt: number };
    const truth = simBook(sym);
    t.equal(r.lastUpdateId, truth.lastUpdateId, `replay ${sym}: at the exchange's last update ID`);
    t.same({ bids: r.bids, asks: r.asks }, { bids: truth.bids, asks: truth.asks }, `replay ${sym}: equals the exchange's book`);
  }
  let early = '';
  t.equal(await replay(['--config', file, '--book', SYMBOLS[1]!, '--at', '2000-01-01'], { stdout: (x) => (early += x), env: {} }), 1, 'no snapshot before T: exit 1');
});
