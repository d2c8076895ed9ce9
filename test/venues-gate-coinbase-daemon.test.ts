import t from 'tap';
import type { Simulator } from '../src/simulator/index.js';
import type { CoinbaseSimulator } from '../src/simulator/venues/index.js';
import { startFeeds, type FeedSpec } from './helpers/feeds.js';
import { ledgerEntries, until } from './helpers/stack.js';

// Gate.io and Coinbase beside Binance spot in one daemon, each venue against its own simulator:
// every stream delivers within 10 s, no venue's limit is broken, and a fault on one venue (a Gate
// drop, a Coinbase sequence_num jump) gives gaps on that venue only.

const FAST = { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };

const SPECS: FeedSpec[] = [
  { venue: 'binance-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'bookTicker'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'gate-spot', symbols: ['BTC_USDT', 'ETH_USDT'], streams: ['trades', 'order_book_update'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'coinbase', symbols: ['BTC-USD', 'ETH-USD'], streams: ['market_trades', 'level2'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
];

function violations(sims: Map<string, Simulator>): string[] {
  return [...sims].flatMap(([venue, s]) => s.violations.map((v) => `${venue}: ${v.rule} ${v.detail}`));
}

t.test('binance-spot, gate-spot and coinbase in one daemon: all deliver; a fault on one touches no other', async (t) => {
  const { sims, daemon, config } = await startFeeds(t, SPECS);
  const started = Date.now();
  const all = await until(() => daemon.feeds.every((f) => [...f.router.names].every((n) => (f.router.stream(n)?.received ?? 0) > 0)), 10_000);
  t.ok(all, `every stream of every venue delivered within 10 s (${Date.now() - started} ms)`);
  t.equal(daemon.feeds.flatMap((f) => [...f.router.names]).length, 12);
  t.same(violations(sims), [], 'no venue saw a limit broken');

  const before = { binance: sims.get('binance-spot')!.totalConnections, coinbase: sims.get('coinbase')!.totalConnections };
  t.equal(sims.get('gate-spot')!.dropAll({ code: 1001 }), 1);
  t.ok(await until(async () => (await ledgerEntries(config)).filter((e) => e.venue === 'gate-spot' && e.end !== null).length >= 4, 8000), 'the four Gate streams each have a closed gap');
  let entries = await ledgerEntries(config);
  t.same(new Set(entries.map((e) => e.venue)), new Set(['gate-spot']), 'only Gate entries');
  t.ok(entries.filter((e) => e.stream.startsWith('trades:')).every((e) => e.missed?.field === 'id_market'), 'Gate trade gaps are exact');

  const cb = sims.get('coinbase') as CoinbaseSimulator;
  cb.skipSequence(cb.connections()[0]!.id, 3);
  t.ok(await until(async () => (await ledgerEntries(config)).filter((e) => e.venue === 'coinbase').length >= 4, 8000), 'Coinbase gaps');
  entries = await ledgerEntries(config);
  const cbGaps = entries.filter((e) => e.venue === 'coinbase');
  t.equal(cbGaps.length, 4, 'one per Coinbase stream');
  t.ok(cbGaps.every((e) => e.cause === 'sequence' && e.missed?.count === 3));
  t.equal(entries.filter((e) => e.venue === 'binance-spot').length, 0, 'Binance untouched');
  t.equal(sims.get('binance-spot')!.totalConnections, before.binance, 'Binance did not reconnect');
  t.equal(cb.totalConnections, before.coinbase, 'Coinbase did not reconnect for the Gate drop');
  t.same(violations(sims), []);
});
