import t from 'tap';
import { checkRun } from '../src/rehearse/check.js';
import { formatInvariant } from '../src/rehearse/invariant.js';
import type { BitgetSimulator, VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { ledgerEntries, startStack, until } from './helpers/stack.js';

// The daemon against the Bitget dialect: the 24-hour forced cut (compressed to 5 s) rotated
// make-before-break without a gap, pings inside the message budget, exact books gaps by seq/pseq
// (and by +1 where pushes carry no pseq, with seq above 2^53), a checksum mismatch counted.

const SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
const STREAMS = ['trade', 'books', 'books5', 'ticker', 'candle1m'];

async function bitgetStack(t: Parameters<typeof startStack>[0], venue: 'bitget-spot' | 'bitget-usdt-futures', sim: Partial<VenueSimulatorOptions>, connection: Record<string, unknown> = {}) {
  const stack = await startStack(t, {
    sim: { venue, eventsPerSecond: 20, tickMs: 20, ...sim },
    config: {
      venue,
      symbols: SYMBOLS,
      streams: STREAMS,
      connection: { backoff: { initialMs: 100, maxMs: 400 }, ...connection },
    },
  });
  return { ...stack, sim: stack.sim as BitgetSimulator };
}

async function malformed(d: { metrics: { framesMalformed: { get(): Promise<{ values: Array<{ value: number }> }> } } }): Promise<number> {
  return (await d.metrics.framesMalformed.get()).values.reduce((n, v) => n + v.value, 0);
}

t.test('bitget-spot: the forced cut (24 h compressed to 5 s) never causes a gap; pings keep the connection inside 10 msg/s', async (t) => {
  // The server cuts after 5 s and after 2.5 s without a ping (Bitget: 24 h and 2 min); the daemon
  // pings every 300 ms (30 s) and replaces each connection 3.5 s before the cut (room for a
  // loaded machine's handshake).
  const { sim, daemon, config } = await bitgetStack(t, 'bitget-spot', { maxLifetimeMs: 5000, pongTimeoutMs: 2500 }, {
    pingIntervalMs: 300,
    maxLifetimeMs: 5000,
    rotateBeforeMs: 3500,
    handshakeTimeoutMs: 1500,
    switchoverTimeoutMs: 1500,
  });
  const feed = daemon.feeds[0]!;
  const names = [...feed.router.names];
  t.equal(names.length, 10);
  t.ok(await until(() => names.every((n) => (feed.router.stream(n)?.received ?? 0) > 0), 10_000), 'every stream delivered within 10 s');
  t.ok(await until(() => sim.totalConnections >= 5, 20_000, 100), `${sim.totalConnections} connections: four rotations`);
  await daemon.stop('test over');
  const entries = (await ledgerEntries(config)).filter((e) => e.cause !== 'shutdown');
  t.same(entries, [], 'no gap: every replacement took over before the exchange cut the old connection');
  t.same(sim.violations, [], 'no ping timeout, no message rate, no budget broken');
  const run = await checkRun(config, sim);
  t.ok(run.invariant.ok, formatInvariant(run.invariant));
  t.ok(run.invariant.streams.some((s) => s.stream === 'books:BTCUSDT' && s.recorded > 20), 'books checked by seq');
});

t.test('bitget-spot: a books skip is a linked gap ending at the pseq that names it; a checksum mismatch is counted, the stream goes on', async (t) => {
  const { sim, daemon, config } = await bitgetStack(t, 'bitget-spot', {});
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('books:BTCUSDT')?.received ?? 0) > 3, 10_000));
  sim.skip('books:BTCUSDT', 4);
  t.ok(await until(() => sim.skippedIds('books:BTCUSDT').length === 4, 5000));
  const skipped = sim.skippedIds('books:BTCUSDT');
  t.ok(await until(async () => (await ledgerEntries(config)).some((e) => e.cause === 'sequence'), 5000), 'a sequence gap');
  const gap = (await ledgerEntries(config)).find((e) => e.cause === 'sequence')!;
  const sent = sim.sentIds('books:BTCUSDT');
  const lastBefore = sent[sent.indexOf(skipped[0]!) - 1]!;
  t.equal(gap.stream, 'books:BTCUSDT');
  t.same(gap.missed, { field: 'seq', from: lastBefore + 1, to: skipped.at(-1), count: null }, 'from the last seq recorded + 1 to the pseq of the next push');

  const before = await malformed(daemon);
  const received = feed.router.stream('books:ETHUSDT')!.received;
  sim.corruptChecksum('books:ETHUSDT');
  t.ok(await until(async () => (await malformed(daemon)) === before + 1, 5000), 'the mismatch is counted once');
  t.ok(await until(() => feed.router.stream('books:ETHUSDT')!.received > received + 5, 5000), 'the stream goes on');
  t.equal((await ledgerEntries(config)).filter((e) => e.stream === 'books:ETHUSDT').length, 0, 'no ledger entry: the push itself was delivered');
  t.same(sim.violations, []);
});

t.test('bitget-usdt-futures: pushes without pseq and with seq above 2^53: no false gap, a skip is exact', async (t) => {
  const { sim, daemon, config } = await bitgetStack(t, 'bitget-usdt-futures', { bitgetBooks: { pseq: false, checksum: 'absent', bigSeq: true } });
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('books:BTCUSDT')?.received ?? 0) > 30, 10_000), 'thirty pushes');
  t.same(await ledgerEntries(config), [], 'no false gap: +1 per push, read losslessly');
  sim.skip('books:BTCUSDT', 3);
  t.ok(await until(async () => (await ledgerEntries(config)).some((e) => e.cause === 'sequence'), 5000));
  const skipped = sim.skippedIds('books:BTCUSDT');
  const gap = (await ledgerEntries(config)).find((e) => e.cause === 'sequence')!;
  t.same(gap.missed, { field: 'seq', from: skipped[0], to: skipped.at(-1), count: null }, 'the three skipped seqs (their last 15 digits)');
  t.same(sim.violations, []);
});
