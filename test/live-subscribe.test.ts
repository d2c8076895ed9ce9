import t from 'tap';
import { createMetrics } from '../src/metrics/registry.js';
import { SinkFanout, type Sink } from '../src/pipeline/sinks.js';
import { streamRef } from '../src/pipeline/stream-ref.js';
import { getVenue } from '../src/venues/index.js';
import { readRecording, startStack, until } from './helpers/stack.js';

// The daemon's one way to change subscriptions on a live connection (relay clients, the universe):
// a stream joins a connection with room by SUBSCRIBE, a new connection opens only when none has
// room, a removed stream is UNSUBSCRIBEd, and an added stream survives reconnects.

const FAST = { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };

t.test('a stream added live joins the connection with room, delivers, is recorded, survives a drop, and leaves by UNSUBSCRIBE', async (t) => {
  const { sim, daemon, dir } = await startStack(t, {
    sim: { eventsPerSecond: 10 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade'], limits: { streamsPerConnection: 3 }, connection: FAST },
  });
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('btcusdt@trade')?.received ?? 0) > 0, 5000), 'planned streams deliver');
  t.equal(sim.totalConnections, 1);

  const at = Date.now();
  await feed.subscribe('solusdt@trade');
  t.ok(feed.carries('solusdt@trade'));
  t.equal(sim.totalConnections, 1, 'no new connection: the open one had room');
  t.ok(sim.connections()[0]!.streams.has('solusdt@trade'), 'subscribed on the open connection');
  t.ok(await until(() => (feed.router.stream('solusdt@trade')?.received ?? 0) > 2, 5000), `delivers within 5 s (${Date.now() - at} ms)`);

  // The connection is full (3 of 3): the next stream opens one more connection.
  await feed.subscribe('xrpusdt@trade');
  t.equal(sim.totalConnections, 2, 'a new connection only when none has room');
  t.ok(await until(() => (feed.router.stream('xrpusdt@trade')?.received ?? 0) > 0, 5000), 'the new connection delivers');

  // A drop: the added stream is subscribed again on the replacement, with an exact gap.
  sim.dropAll({ code: 1001 });
  t.ok(await until(() => sim.connections().length === 2 && sim.connections().every((c) => c.state === 'open') && sim.connections().some((c) => c.streams.has('solusdt@trade')), 8000), 'resubscribed after the drop');
  const before = feed.router.stream('solusdt@trade')!.received;
  t.ok(await until(() => feed.router.stream('solusdt@trade')!.received > before, 5000), 'delivering again');

  await feed.unsubscribe('solusdt@trade');
  t.notOk(feed.carries('solusdt@trade'), 'no longer routed');
  t.notOk(sim.connections().some((c) => c.streams.has('solusdt@trade')), 'unsubscribed upstream');
  await feed.unsubscribe('xrpusdt@trade');
  t.ok(await until(() => sim.connections().length === 1, 5000), 'the connection left empty is closed');
  t.same(sim.violations, [], 'no limit broken (message rate, streams per connection)');

  await daemon.stop('test over');
  const lines = readRecording(`${dir}/rec`);
  const ids = lines.filter((l) => l.stream === 'solusdt@trade').map((l) => l.data.t as number);
  t.ok(ids.length > 2, `${ids.length} solusdt trades recorded`);
  t.equal(new Set(ids).size, ids.length, 'once each');
});

t.test('a stream the venue does not have is refused', async (t) => {
  const { daemon } = await startStack(t, { config: { symbols: ['BTCUSDT'], streams: ['trade'], connection: FAST } });
  await t.rejects(daemon.feeds[0]!.subscribe('btcusdt@nonsense'), { code: 'FK_ERR_SUBSCRIBE' });
  t.notOk(daemon.feeds[0]!.carries('btcusdt@nonsense'));
});

t.test('SinkFanout: the recorder first, then each sink; a sink drop is counted, never the recorder\'s', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false });
  const recorded: string[] = [];
  const primary = { write: (f: Buffer) => (recorded.push(f.toString()), true) };
  const got: string[] = [];
  const ok: Sink = { name: 'relay', write: (f) => (got.push(f.toString()), true), healthy: () => true };
  const full: Sink = { name: 'nats', write: () => false, healthy: () => false };
  const fan = new SinkFanout(primary, [ok, full], metrics);
  const before = await metrics.registry.getSingleMetricAsString('feedkeeper_sink_dropped_total');
  t.match(before, /feedkeeper_sink_dropped_total\{sink="relay"\} 0/, 'every sink is shown from the start, at 0');
  t.match(before, /feedkeeper_sink_dropped_total\{sink="nats"\} 0/);
  const ref = streamRef(getVenue('binance-spot')!, 'btcusdt@trade');
  const frame = Buffer.from('{"stream":"btcusdt@trade","data":{"e":"trade","t":1}}');
  t.equal(fan.write(frame, 1, ref), true, "the recorder's answer");
  t.equal(fan.write(frame, 2, ref), true);
  t.same(recorded.length, 2);
  t.same(got.length, 2, 'the working sink got both');
  const m = await metrics.registry.getSingleMetricAsString('feedkeeper_sink_dropped_total');
  t.match(m, /feedkeeper_sink_dropped_total\{sink="nats"\} 2/);
  t.match(m, /feedkeeper_sink_dropped_total\{sink="relay"\} 0/, 'the working sink still at 0');
});
