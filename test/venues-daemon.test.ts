import t from 'tap';
import type { Simulator } from '../src/simulator/index.js';
import { startFeeds, type FeedSpec } from './helpers/feeds.js';
import { ledgerEntries, readRecording, until } from './helpers/stack.js';

/**
 * Several venues in one daemon, each against its own simulator (its own exchange on loopback):
 * every venue delivers, no venue's limit is broken, a fault on one leaves the others untouched, and
 * sequence gaps are exact where the venue's IDs allow it.
 */

type Line = ReturnType<typeof readRecording>[number] & { venue?: string };

const FAST = { handshakeTimeoutMs: 3000, switchoverTimeoutMs: 3000, rotateBeforeMs: 6000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };

const THREE: FeedSpec[] = [
  { venue: 'binance-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'bookTicker'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'bybit-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['publicTrade', 'orderbook.50'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'okx', symbols: ['BTC-USDT', 'ETH-USDT'], streams: ['trades', 'books'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
];

/** Every OKX trade ID a recorded `trades` frame covers (tradeId is the last of `count`). */
function okxTradeIds(lines: Line[], stream: string): number[] {
  const out: number[] = [];
  for (const l of lines) {
    if (l.stream !== stream) continue;
    for (const d of (l.data as { data: Array<{ tradeId: string; count: string }> }).data) {
      const last = Number(d.tradeId);
      for (let id = last - Number(d.count) + 1; id <= last; id++) out.push(id);
    }
  }
  return out;
}

function violations(sims: Map<string, Simulator>): string[] {
  return [...sims].flatMap(([venue, s]) => s.violations.map((v) => `${venue}: ${v.rule} ${v.detail}`));
}

t.test('binance-spot, bybit-spot and okx in one daemon: every stream delivers, no limit broken, a Bybit drop touches nobody else', async (t) => {
  const { sims, daemon, config, dir } = await startFeeds(t, THREE);
  const streams = daemon.feeds.flatMap((f) => f.plan.connections.flatMap((c) => c.streams.map((s) => ({ venue: f.name, stream: s }))));
  t.equal(streams.length, 12, '4 streams per venue');
  const started = Date.now();
  const all = await until(() => daemon.feeds.every((f) => [...f.router.names].every((n) => (f.router.stream(n)?.received ?? 0) > 0)), 10_000);
  t.ok(all, `every stream of every venue delivered within 10 s (${Date.now() - started} ms)`);
  t.ok(await until(() => daemon.feeds.every((f) => [...f.router.names].every((n) => (f.router.stream(n)?.received ?? 0) >= 8)), 10_000), 'eight messages on every stream');

  // A Bybit drop: only Bybit reconnects and only Bybit's streams get gaps.
  const before = { binance: sims.get('binance-spot')!.totalConnections, okx: sims.get('okx')!.totalConnections };
  t.equal(sims.get('bybit-spot')!.dropAll({ code: 1001 }), 1, 'the one Bybit connection dropped');
  const back = await until(async () => {
    const entries = await ledgerEntries(config);
    return entries.filter((e) => e.venue === 'bybit-spot' && e.end !== null).length >= 4;
  }, 8000);
  t.ok(back, 'the four Bybit streams each have a closed gap');
  const entries = await ledgerEntries(config);
  t.same(new Set(entries.map((e) => e.venue)), new Set(['bybit-spot']), 'only Bybit entries in the ledger');
  t.ok(entries.every((e) => e.cause === 'server_close' && e.code === 1001), 'server_close 1001');
  t.ok(entries.filter((e) => e.stream === 'publicTrade:BTCUSDT').every((e) => e.missed === null), 'Bybit trade gaps are time windows (missed null): its IDs are not contiguous');
  t.equal(sims.get('binance-spot')!.totalConnections, before.binance, 'Binance did not reconnect');
  t.equal(sims.get('okx')!.totalConnections, before.okx, 'OKX did not reconnect');
  t.same(violations(sims), [], 'no venue saw a limit broken');

  // One recording per venue, lines tagged with venue and the canonical stream.
  await daemon.stop('test over');
  const lines = readRecording(`${dir}/rec`) as Line[];
  for (const v of ['binance-spot', 'bybit-spot', 'okx']) {
    const mine = lines.filter((l) => l.venue === v);
    t.ok(mine.length > 20, `${v}: ${mine.length} lines`);
  }
  t.ok(lines.some((l) => l.venue === 'okx' && l.stream === 'books:BTC-USDT' && (l.data as { arg?: { channel?: string } }).arg?.channel === 'books'), 'OKX frame kept whole under data');
  t.ok(lines.some((l) => l.venue === 'binance-spot' && l.stream === 'btcusdt@trade' && (l.data as { e?: string }).e === 'trade'), "Binance keeps the envelope's data");
  // Every OKX trade ID the simulator sent before the stop was recorded, once.
  const okxSim = sims.get('okx')!;
  const recorded = okxTradeIds(lines, 'trades:BTC-USDT');
  t.ok(recorded.length > 10, `${recorded.length} OKX trade IDs recorded`);
  t.equal(new Set(recorded).size, recorded.length, 'no OKX trade ID twice');
  const sent = okxSim.sentIds('trades:BTC-USDT');
  t.same(recorded, sent.slice(0, recorded.length), 'the OKX trade IDs in the order sent');
});

t.test('OKX: a skipped trade range and a broken books chain each give one sequence gap with the exact ids', async (t) => {
  const specs: FeedSpec[] = [{ venue: 'okx', symbols: ['BTC-USDT'], streams: ['trades', 'books'], sim: { eventsPerSecond: 20 }, feed: { connection: FAST } }];
  const { sims, daemon, config } = await startFeeds(t, specs);
  const sim = sims.get('okx')!;
  const router = daemon.feed('okx')!.router;
  t.ok(await until(() => (router.stream('trades:BTC-USDT')?.received ?? 0) > 3 && (router.stream('books:BTC-USDT')?.received ?? 0) > 3, 8000), 'delivering');
  sim.skip('trades:BTC-USDT', 3);
  sim.skip('books:BTC-USDT', 2);
  const got = await until(async () => (await ledgerEntries(config)).filter((e) => e.cause === 'sequence').length >= 2, 8000);
  t.ok(got, 'two sequence gaps');
  const entries = (await ledgerEntries(config)).filter((e) => e.cause === 'sequence');
  const trade = entries.filter((e) => e.stream === 'trades:BTC-USDT');
  t.equal(trade.length, 1, 'one trade gap');
  const skippedTrades = sim.skippedIds('trades:BTC-USDT');
  t.ok(skippedTrades.length >= 3, `${skippedTrades.length} trade IDs skipped`);
  t.same(trade[0]!.missed, { field: 'tradeId', from: skippedTrades[0], to: skippedTrades[skippedTrades.length - 1], count: skippedTrades.length }, 'exact trade range and count');
  const books = entries.filter((e) => e.stream === 'books:BTC-USDT');
  t.equal(books.length, 1, 'one books gap');
  const skippedSeq = sim.skippedIds('books:BTC-USDT');
  t.equal(books[0]!.missed?.field, 'seqId');
  t.equal(books[0]!.missed?.to, skippedSeq[skippedSeq.length - 1], 'to: the seqId of the last update missed (the next prevSeqId)');
  t.equal(books[0]!.missed?.count, null, 'count unknown: seqIds step arbitrarily');
  t.ok(books[0]!.missed!.from <= skippedSeq[0]!, 'from: just after the last seqId received');
  t.equal(entries.every((e) => e.venue === 'okx'), true);
  t.same(sim.violations, []);
});

t.test('OKX: a 64008 notice switches over with nothing lost or doubled', async (t) => {
  const specs: FeedSpec[] = [{ venue: 'okx', symbols: ['BTC-USDT', 'ETH-USDT'], streams: ['trades', 'books'], sim: { eventsPerSecond: 20, shutdownGraceMs: 3000 }, feed: { connection: FAST } }];
  const { sims, daemon, config, dir } = await startFeeds(t, specs);
  const sim = sims.get('okx')!;
  const feed = daemon.feed('okx')!;
  t.ok(await until(() => (feed.router.stream('trades:BTC-USDT')?.received ?? 0) > 3, 8000), 'delivering');
  t.equal(sim.serverShutdown(), 1, 'notice sent');
  const switched = await until(() => sim.totalConnections === 2 && sim.connections().length === 1, 8000);
  t.ok(switched, 'a replacement took over and the old connection is gone');
  await until(() => false, 500);
  await daemon.stop('test over');
  const entries = await ledgerEntries(config);
  t.same(
    entries.filter((e) => e.cause !== 'shutdown'),
    [],
    'no gap but the shutdown ones',
  );
  const lines = readRecording(`${dir}/rec`) as Line[];
  for (const s of ['trades:BTC-USDT', 'trades:ETH-USDT']) {
    const ids = okxTradeIds(lines, s);
    t.equal(new Set(ids).size, ids.length, `${s}: no ID twice`);
    t.same(ids, sim.sentIds(s).slice(0, ids.length), `${s}: every ID in order`);
  }
  t.same(sim.violations, []);
});

t.test('Bybit: 25 spot symbols subscribe in requests of at most 10 args; its own pings keep it alive', async (t) => {
  const symbols = Array.from({ length: 25 }, (_, i) => `S${String(i).padStart(2, '0')}USDT`);
  const specs: FeedSpec[] = [
    {
      venue: 'bybit-spot',
      symbols,
      streams: ['publicTrade'],
      sim: { eventsPerSecond: 2, pongTimeoutMs: 1500, instruments: symbols },
      feed: { connection: { ...FAST, pingIntervalMs: 500, staleAfterMs: 4000 } },
    },
  ];
  const { sims, daemon } = await startFeeds(t, specs);
  const sim = sims.get('bybit-spot')!;
  const router = daemon.feed('bybit-spot')!.router;
  t.ok(await until(() => [...router.names].every((n) => (router.stream(n)?.received ?? 0) > 0), 10_000), 'all 25 streams deliver');
  t.equal(sim.connections()[0]?.streams.size, 25, 'one connection with 25 topics');
  // Four times the simulator's ping deadline: a daemon that forgot to ping would have been cut.
  await until(() => false, 6000);
  t.equal(sim.totalConnections, 1, 'never cut: the daemon pings within the deadline');
  t.same(sim.violations, [], 'no request over 10 args, no ping timeout');
});
