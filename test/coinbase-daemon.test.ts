import t from 'tap';
import { createLogger } from '../src/log.js';
import type { CoinbaseSimulator } from '../src/simulator/venues/index.js';
import { ledgerEntries, readRecording, startStack, until } from './helpers/stack.js';

// The daemon against the Coinbase Advanced Trade dialect: heartbeats always on (quiet channels would
// close), every subscribe inside the deadline, a sequence_num jump on one connection giving one gap
// per stream of that connection with the missed count, and a multi-MB level2 snapshot taken whole.

const PRODUCTS = ['BTC-USD', 'ETH-USD'];
const STREAMS = ['market_trades', 'level2', 'ticker', 'candles'];

async function coinbaseStack(t: Parameters<typeof startStack>[0], sim: Record<string, unknown> = {}, config: Record<string, unknown> = {}) {
  // The dialect's own options (heartbeatIntervalMs, snapshotLevels…) pass through startSimulator.
  const simOpts = { venue: 'coinbase', eventsPerSecond: 20, tickMs: 20, heartbeatIntervalMs: 100, ...sim };
  const stack = await startStack(t, {
    sim: simOpts,
    config: { venue: 'coinbase', symbols: PRODUCTS, streams: STREAMS, connection: { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 400 } }, ...config },
  });
  return { ...stack, sim: stack.sim as CoinbaseSimulator };
}

t.test('coinbase: every stream delivers; heartbeats keep the quiet-channel cut away; nothing refused', async (t) => {
  // Quiet channels close after 0.6 s here, and candles barely move.
  const { sim, daemon, config } = await coinbaseStack(t, { pongTimeoutMs: 600, subscribeDeadlineMs: 1000 });
  const feed = daemon.feeds[0]!;
  const names = [...feed.router.names];
  t.equal(names.length, 8);
  t.ok(await until(() => names.every((n) => (feed.router.stream(n)?.received ?? 0) > 0), 10_000), 'every stream delivered within 10 s');
  const start = Date.now();
  t.ok(await until(() => Date.now() - start > 4 * 600, 5000), 'four quiet periods');
  t.equal(sim.totalConnections, 1, 'never cut');
  t.same(sim.violations, [], 'no late subscribe, no message over 8/s per IP, no channel closed');
  t.same(await ledgerEntries(config), [], 'no gap');
});

t.test('coinbase: a sequence_num jump gives one gap per stream of that connection, with the missed count', async (t) => {
  // Four streams per connection: two connections, the jump on one of them.
  const { sim, daemon, config } = await coinbaseStack(t, {}, { limits: { streamsPerConnection: 4 } });
  const feed = daemon.feeds[0]!;
  const names = [...feed.router.names];
  t.ok(await until(() => names.every((n) => (feed.router.stream(n)?.received ?? 0) > 2), 10_000), 'delivering');
  const conns = sim.connections();
  t.equal(conns.length, 2);
  const hit = conns[0]!;
  const hitStreams = [...hit.streams].sort();
  t.equal(hitStreams.length, 4);
  sim.skipSequence(hit.id, 5);
  t.ok(await until(async () => (await ledgerEntries(config)).length >= 4, 5000), 'gaps written');
  await new Promise((r) => setTimeout(r, 300)); // anything more would show now
  const entries = await ledgerEntries(config);
  t.same(entries.map((e) => e.stream).sort(), hitStreams, 'one gap per stream of that connection, none on the other');
  for (const e of entries) {
    t.equal(e.cause, 'sequence');
    t.equal(e.missed?.field, 'sequence_num');
    t.equal(e.missed?.count, 5, `${e.stream}: 5 messages missed on its connection`);
    t.equal(e.missed!.to - e.missed!.from + 1, 5);
    t.match(e.detail, /on which of its streams is unknown/);
  }
  t.same(sim.violations, []);
});

t.test('coinbase: a multi-MB BTC-USD level2 snapshot arrives whole and is recorded', async (t) => {
  const { sim, daemon, config, dir } = await coinbaseStack(t, { snapshotLevels: 30_000 }, { symbols: ['BTC-USD'], streams: ['level2'] });
  const router = daemon.feeds[0]!.router;
  t.ok(await until(() => (router.stream('level2:BTC-USD')?.received ?? 0) > 3, 15_000), 'the snapshot and updates after it');
  await daemon.stop('test over');
  const lines = readRecording(`${dir}/rec`).filter((l) => l.stream === 'level2:BTC-USD');
  const first = lines[0]!.data as { channel: string; events: Array<{ type: string; updates: unknown[] }> };
  t.equal(first.channel, 'l2_data');
  t.equal(first.events[0]!.type, 'snapshot', 'the first recorded level2 message is the snapshot');
  t.equal(first.events[0]!.updates.length, 60_000, 'every level of it');
  t.ok(JSON.stringify(first).length > 5_000_000, `${(JSON.stringify(first).length / 1e6).toFixed(1)} MB`);
  t.same(await ledgerEntries(config).then((e) => e.filter((x) => x.cause !== 'shutdown')), [], 'no gap: the client took it');
  t.equal(sim.totalConnections, 1, 'no reconnect (a client whose max message size is too small would be cut here)');
});

t.test('coinbase: a snapshot over the client’s 16 MiB is no silent failure: connection_lost names the limit, the daemon retries', async (t) => {
  const logs: string[] = [];
  const logger = createLogger('warn', { write: (l: string) => void logs.push(l) });
  const simOpts = { venue: 'coinbase', eventsPerSecond: 20, tickMs: 20, heartbeatIntervalMs: 100, snapshotLevels: 90_000 };
  const { sim } = await startStack(t, {
    sim: simOpts,
    logger,
    config: { venue: 'coinbase', symbols: ['BTC-USD'], streams: ['level2'], log: { level: 'warn' }, connection: { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 400 } } },
  });
  const lost = (): Array<{ event: string; cause: string; detail: string }> =>
    logs.map((l) => JSON.parse(l) as { event: string; cause: string; detail: string }).filter((l) => l.event === 'connection_lost');
  t.ok(await until(() => lost().length > 0, 20_000), 'the connection loss is logged');
  t.equal(lost()[0]!.cause, 'network_error');
  t.match(lost()[0]!.detail, /over 16777216 bytes/, 'the detail names the limit');
  t.ok(await until(() => sim.totalConnections >= 2, 10_000), 'and the daemon tries again');
});
