import t from 'tap';
import { ledgerEntries, readRecording, startStack, until } from './helpers/stack.js';

// Per-stream silence (src/connection/silence-watch.ts): the simulator loses one stream's
// subscription on a live connection without a word (dropSubscription); the connection keeps
// delivering its other streams, so only a per-stream check can see it.

const FAST = { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };

t.test('a depth stream silently dropped upstream is back within silence.afterMs + 5 s, with one exact silent gap', async (t) => {
  const { sim, daemon, config, dir } = await startStack(t, {
    sim: { eventsPerSecond: 10 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade', 'depth@100ms'], silence: { afterMs: 1000 }, connection: FAST },
  });
  const feed = daemon.feeds[0]!;
  const stream = 'btcusdt@depth@100ms';
  t.ok(await until(() => (feed.router.stream(stream)?.received ?? 0) > 5, 5000), 'delivering');
  const connections = sim.totalConnections;

  t.equal(sim.dropSubscription!(stream), 1, 'lost on the one connection');
  const droppedAt = Date.now();
  const before = feed.router.stream(stream)!.received;
  // Frames already on the wire may still arrive: wait for the count to settle, then for new ones.
  t.ok(await until(() => sim.connections()[0]!.streams.has(stream), 6000 + 1000), `subscribed again (${Date.now() - droppedAt} ms after the drop)`);
  t.ok(await until(() => feed.router.stream(stream)!.received > before + 2 && !feed.router.stream(stream)!.gapOpen, 6000), 'delivering again, the gap closed');
  const back = Date.now() - droppedAt;
  t.ok(back < 1000 + 5000, `back within silence.afterMs + 5 s (${back} ms)`);
  t.equal(sim.totalConnections, connections, 'no reconnect: the connection stayed up');

  await daemon.stop('test over');
  const gaps = (await ledgerEntries(config)).filter((e) => e.cause !== 'shutdown');
  t.equal(gaps.length, 1, 'one gap in the ledger');
  const g = gaps[0]!;
  t.match(g, { stream, cause: 'silent', missed: { field: 'U' } });
  t.not(g.end, null);

  // The range is exact: it starts after the last update recorded before and ends before the first after.
  const depth = readRecording(`${dir}/rec`).filter((l) => l.stream === stream).map((l) => l.data as { U: number; u: number });
  const i = depth.findIndex((d, k) => k > 0 && d.U !== depth[k - 1]!.u + 1);
  t.ok(i > 0, 'the recording has the jump');
  t.equal(g.missed!.from, depth[i - 1]!.u + 1, 'missed.from = last u before + 1');
  t.equal(g.missed!.to, depth[i]!.U - 1, 'missed.to = first U after - 1');
  t.equal(depth.filter((d, k) => k > 0 && d.U !== depth[k - 1]!.u + 1).length, 1, 'no other jump');
  t.ok(g.start <= droppedAt + 200 && g.start >= droppedAt - 1000, 'the gap starts at the last message before the drop');

  const text = await daemon.metrics.registry.metrics();
  t.match(text, /feedkeeper_stream_silences_total\{venue="binance-spot"\} 1/);
  t.same(sim.violations, []);
});

t.test('trades are never held to a cadence: a silent trade stream is left alone', async (t) => {
  const { sim, daemon, config } = await startStack(t, {
    sim: { eventsPerSecond: 10 },
    config: { symbols: ['BTCUSDT'], streams: ['trade', 'depth@100ms'], silence: { afterMs: 300 }, connection: FAST },
  });
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('btcusdt@trade')?.received ?? 0) > 2, 5000));
  sim.dropSubscription!('btcusdt@trade');
  // Silent for three thresholds (the watch looks every 75 ms) while depth kept the connection delivering.
  const quiet = (name: string): number => Date.now() - feed.router.stream(name)!.lastRecv;
  t.ok(await until(() => quiet('btcusdt@trade') > 900 && quiet('btcusdt@depth@100ms') < 300, 5000), 'the trade stream silent, the depth stream not');
  t.notOk(sim.connections()[0]!.streams.has('btcusdt@trade'), 'not resubscribed');
  await daemon.ledger.flush();
  t.same((await ledgerEntries(config)).map((e) => e.cause), [], 'no silent gap');
});

t.test('Bybit (no live subscribe): a silent book stream gets its connection replaced make-before-break, the others without a gap', async (t) => {
  const { sim, daemon, config } = await startStack(t, {
    sim: { venue: 'bybit-spot', eventsPerSecond: 10 },
    config: { venue: 'bybit-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['publicTrade', 'orderbook.1'], silence: { afterMs: 500, cadences: 1 }, connection: { ...FAST, switchoverTimeoutMs: 2000 } },
  });
  const feed = daemon.feeds[0]!;
  const stream = 'orderbook.1:BTCUSDT';
  t.ok(await until(() => (feed.router.stream(stream)?.received ?? 0) > 3 && (feed.router.stream('publicTrade:ETHUSDT')?.received ?? 0) > 3, 8000), 'delivering');
  t.equal(sim.dropSubscription!(stream), 1);
  const before = feed.router.stream(stream)!.received;
  t.ok(await until(() => feed.router.stream(stream)!.received > before + 2 && !feed.router.stream(stream)!.gapOpen, 15_000), 'back on the replacement connection');
  t.equal(sim.totalConnections, 2, 'one replacement');
  await daemon.stop('test over');
  const gaps = (await ledgerEntries(config)).filter((e) => e.cause !== 'shutdown');
  t.same(gaps.map((g) => `${g.stream} ${g.cause}`), [`${stream} silent`], 'one silent gap, on that stream only');
  const text = await daemon.metrics.registry.metrics();
  t.match(text, /feedkeeper_reconnects_total\{[^}]*reason="silent_stream"[^}]*\} 1/);
});
