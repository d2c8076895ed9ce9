import t from 'tap';
import type { GateSimulator } from '../src/simulator/venues/index.js';
import { ledgerEntries, readRecording, startStack, until } from './helpers/stack.js';

// The daemon against the Gate.io dialect: the server's clock (5 min off this host's) taken from the
// pong, application pings that keep the silent one-minute timeout (compressed to 2 s) from ever
// firing, exact trade and book gaps, and the cut a client that stops pinging gets.

const SYMBOLS = ['BTC_USDT', 'ETH_USDT'];
const STREAMS = ['trades', 'order_book_update', 'book_ticker'];
const SKEW_MS = 5 * 60_000;
/**
 * The silent timeout, compressed: 2 s against pings every 300 ms, so that an event-loop stall of the
 * test process (the simulator and the daemon share it) under a loaded machine is not a missed ping
 * (at 1.2 s it failed once at load 9).
 */
const TIMEOUT_MS = 2000;

async function gateStack(t: Parameters<typeof startStack>[0], pingIntervalMs: number) {
  // The Gate dialect's own option (clockSkewMs) passes through startSimulator.
  const sim = { venue: 'gate-spot', eventsPerSecond: 20, tickMs: 20, pongTimeoutMs: TIMEOUT_MS, clockSkewMs: SKEW_MS };
  const stack = await startStack(t, {
    sim,
    config: {
      venue: 'gate-spot',
      symbols: SYMBOLS,
      streams: STREAMS,
      connection: { pingIntervalMs, handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 400 } },
    },
  });
  return { ...stack, sim: stack.sim as GateSimulator };
}

t.test('gate-spot: every stream delivers; the server clock is used; pings keep the silent timeout away: no gap', async (t) => {
  const { sim, daemon, config } = await gateStack(t, 300);
  const feed = daemon.feeds[0]!;
  const names = [...feed.router.names];
  t.equal(names.length, 6);
  t.ok(await until(() => names.every((n) => (feed.router.stream(n)?.received ?? 0) > 0), 10_000), 'every stream delivered within 10 s');
  t.same(sim.violations, [], 'no request refused for its time although the host clock is 5 min off');
  // Three silent-timeout periods pass with the connection up.
  const start = Date.now();
  t.ok(await until(() => Date.now() - start > 3 * TIMEOUT_MS && names.every((n) => (feed.router.stream(n)?.received ?? 0) > 20), 15_000), 'delivering for three timeout periods');
  t.equal(sim.totalConnections, 1, 'never cut');
  t.same(sim.violations, [], 'no ping_timeout');
  t.same(await ledgerEntries(config), [], 'no gap');
});

t.test('gate-spot: skipped trades and book updates give one exact gap each; the duplicate id_market never moves the key', async (t) => {
  const { sim, daemon, config, dir } = await gateStack(t, 300);
  const router = daemon.feeds[0]!.router;
  t.ok(await until(() => ['trades:BTC_USDT', 'order_book_update:BTC_USDT'].every((n) => (router.stream(n)?.received ?? 0) > 3), 8000), 'delivering');
  sim.skip('trades:BTC_USDT', 5);
  sim.skip('order_book_update:BTC_USDT', 3);
  t.ok(await until(async () => (await ledgerEntries(config)).filter((e) => e.cause === 'sequence').length >= 2, 8000), 'two sequence gaps');
  const entries = (await ledgerEntries(config)).filter((e) => e.cause === 'sequence');
  const skipped = sim.skippedIds('trades:BTC_USDT');
  t.equal(skipped.length, 5);
  t.same(entries.filter((e) => e.stream === 'trades:BTC_USDT').map((e) => e.missed), [{ field: 'id_market', from: skipped[0], to: skipped[4], count: 5 }], 'exact trade range and count');
  const book = entries.filter((e) => e.stream === 'order_book_update:BTC_USDT');
  t.equal(book.length, 1, 'one book gap');
  t.equal(book[0]!.missed?.field, 'u');
  t.equal(book[0]!.missed?.to, sim.skippedIds('order_book_update:BTC_USDT').at(-1), 'to: the last update ID missed');
  t.equal(entries.length, 2, 'nothing else');
  await daemon.stop('test over');
  // The recorded trades keep Gate's duplicate key; the router's key followed range.
  const lines = readRecording(`${dir}/rec`).filter((l) => l.stream === 'trades:ETH_USDT');
  t.ok(lines.length > 3);
  const sent = sim.sentIds('trades:ETH_USDT');
  const ranges = lines.map((l) => ((l.data as { result: { range: string } }).result.range.split('-').map(Number)));
  const ids = ranges.flatMap(([a, b]) => Array.from({ length: b! - a! + 1 }, (_, i) => a! + i));
  t.same(ids, sent.slice(0, ids.length), 'ETH trades recorded once each, in order, no gap');
});

t.test('gate-spot: a client that pings too rarely is cut silently: a network_error gap, exact, then back', async (t) => {
  // 50 s between pings against a 2 s timeout: the server cuts without a close frame.
  const { sim, daemon, config } = await gateStack(t, 50_000);
  const router = daemon.feeds[0]!.router;
  t.ok(await until(() => sim.violations.some((v) => (v.rule as string) === 'ping_timeout'), 8000), 'the server cut it');
  t.ok(await until(async () => (await ledgerEntries(config)).filter((e) => e.stream === 'trades:BTC_USDT' && e.end !== null).length >= 1, 8000), 'the trade gap closed after the reconnect');
  const g = (await ledgerEntries(config)).find((e) => e.stream === 'trades:BTC_USDT')!;
  t.equal(g.cause, 'network_error', 'a 1006: the network, as far as the client can tell');
  t.equal(g.missed?.field, 'id_market');
  t.ok(sim.totalConnections >= 2);
  t.ok((router.stream('trades:BTC_USDT')?.received ?? 0) > 0);
});
