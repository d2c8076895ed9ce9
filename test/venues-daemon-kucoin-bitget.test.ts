import t from 'tap';
import type { Simulator } from '../src/simulator/index.js';
import type { KucoinSimulator } from '../src/simulator/venues/index.js';
import { startFeeds, type FeedSpec } from './helpers/feeds.js';
import { ledgerEntries, until } from './helpers/stack.js';

// One daemon with Binance spot, KuCoin, both Bitget venues, Gate and Coinbase (issue 10's four venues
// plus Binance spot), each against its own simulator:
// every stream delivers within 10 s, no venue's limit is broken, a refused KuCoin token and a drop
// touch nobody else, and Bitget's forced cut (compressed) is rotated without a gap.

// Room for a loaded machine: a handshake may take seconds there.
const FAST = { handshakeTimeoutMs: 2000, switchoverTimeoutMs: 1500, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };
const LIFETIME = { ...FAST, maxLifetimeMs: 5000, rotateBeforeMs: 3500 };

const SIX: FeedSpec[] = [
  { venue: 'binance-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'bookTicker'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'kucoin-spot', symbols: ['BTC-USDT', 'ETH-USDT'], streams: ['match', 'level2'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'bitget-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'books'], sim: { eventsPerSecond: 10, maxLifetimeMs: 5000 }, feed: { connection: LIFETIME } },
  { venue: 'bitget-usdt-futures', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'books'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'gate-spot', symbols: ['BTC_USDT', 'ETH_USDT'], streams: ['trades', 'order_book_update'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
  { venue: 'coinbase', symbols: ['BTC-USD', 'ETH-USD'], streams: ['market_trades', 'level2'], sim: { eventsPerSecond: 10 }, feed: { connection: FAST } },
];

function violations(sims: Map<string, Simulator>): string[] {
  return [...sims].flatMap(([venue, s]) => s.violations.map((v) => `${venue}: ${v.rule} ${v.detail}`));
}

t.test('six feeds (Binance spot, KuCoin, Bitget spot and futures, Gate, Coinbase) in one daemon: every stream delivers; a refused KuCoin token touches no other venue; the Bitget forced cut leaves no gap', async (t) => {
  const { sims, daemon, config } = await startFeeds(t, SIX);
  const started = Date.now();
  const all = await until(() => daemon.feeds.every((f) => [...f.router.names].every((n) => (f.router.stream(n)?.received ?? 0) > 0)), 10_000);
  t.ok(all, `every stream of every venue delivered within 10 s (${Date.now() - started} ms)`);
  t.equal(daemon.feeds.reduce((n, f) => n + [...f.router.names].length, 0), 24, '4 streams per venue');

  const others = ['binance-spot', 'bitget-usdt-futures', 'gate-spot', 'coinbase'];
  const before = new Map(others.map((v) => [v, sims.get(v)!.totalConnections]));
  const kucoin = sims.get('kucoin-spot') as KucoinSimulator;
  kucoin.expireTokens(1);
  t.equal(kucoin.dropAll({ code: 1001 }), 1);
  const back = await until(async () => (await ledgerEntries(config)).filter((e) => e.venue === 'kucoin-spot' && e.end !== null).length >= 4, 8000);
  t.ok(back, 'the four KuCoin streams each have a closed gap');
  t.equal(kucoin.bulletRequests, 3, 'a token for the start, the refused one, a fresh one');

  // Meanwhile Bitget spot's connections were cut every 5 s: each replaced 3.5 s ahead of the cut.
  t.ok(await until(() => sims.get('bitget-spot')!.totalConnections >= 3, 15_000, 100), 'Bitget spot rotated twice');
  const entries = await ledgerEntries(config);
  t.same(new Set(entries.map((e) => e.venue)), new Set(['kucoin-spot']), 'only KuCoin entries in the ledger: no gap from the Bitget cuts');
  for (const v of others) t.equal(sims.get(v)!.totalConnections, before.get(v), `${v} did not reconnect`);
  t.same(violations(sims), [], 'no venue saw a limit broken');
});
