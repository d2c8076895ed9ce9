import { readFileSync } from 'node:fs';
import t from 'tap';
import { BENCH_STREAM_TYPES, benchSymbols, nowMicros, streamTemplate, writeFrame } from '../bench/frames.js';
import { FloodServer } from '../bench/flood-server.js';
import { runPhase } from '../bench/phase.js';
import { buildReport, formatTable, runSuite, SMOKE, type Driver } from '../bench/suite.js';
import { inProcessRelayDriver } from '../bench/relay-run.js';
import { buildRelayReport, formatRelayTable, runRelaySuite, RELAY_SMOKE } from '../bench/relay-suite.js';
import { formatNatsTable, NATS_SMOKE, runNatsSuite } from '../bench/nats-suite.js';
import { natsServerVersion, runNatsBench } from '../bench/nats-bench.js';
import { runHotPath } from '../bench/hot-path.js';
import { runReadPath } from '../bench/read-path.js';
import { shape } from './helpers/shape.js';

/**
 * Keeps bench/ from rotting: the frames the flood source sends are the frames Binance sends, and the
 * whole harness (source, both consumers, every phase, the report) runs in this process at toy
 * scale. Nothing here asserts a speed: the figures belong to `npm run bench` and docs/performance.md.
 */


t.test('flood frames have the keys, order and JSON types of real spot frames, with IDs in sequence', async (t) => {
  const real = new Map<string, string>();
  for (const line of readFileSync(new URL('./fixtures/binance/spot-stream.ndjson', import.meta.url), 'utf8').split('\n')) {
    if (line === '') continue;
    const frame = JSON.parse((JSON.parse(line) as { frame: string }).frame) as { stream: string; data: unknown };
    real.set(frame.stream.slice(frame.stream.indexOf('@') + 1), JSON.stringify(shape(frame.data)));
  }
  const [symbol] = benchSymbols(4);
  const name = (type: string): string => `${symbol!.toLowerCase()}@${type}`;
  const frames = (type: string, n: number): Array<{ stream: string; data: Record<string, number> }> => {
    const tpl = streamTemplate(name(type))!;
    const out = Buffer.alloc(n * tpl.bytes.length);
    let pos = 0;
    const list = [];
    for (let i = 0; i < n; i++) {
      const start = pos;
      pos = writeFrame(out, pos, tpl, nowMicros());
      list.push(JSON.parse(out.toString('latin1', start, pos)) as { stream: string; data: Record<string, number> });
    }
    return list;
  };
  for (const type of ['aggTrade', 'depth@100ms', 'bookTicker']) {
    const [f] = frames(type, 1);
    t.equal(f!.stream, name(type));
    t.equal(JSON.stringify(shape(f!.data)), real.get(type), `${type} has the recorded shape`);
  }
  t.same(Object.keys(frames('trade', 1)[0]!.data), ['e', 'E', 's', 't', 'p', 'q', 'T', 'm', 'M'], 'trade keys as documented');

  const trades = frames('trade', 3).map((f) => f.data);
  t.same(trades.map((d) => d.t - trades[0]!.t), [0, 1, 2], 'trade t is contiguous');
  const aggs = frames('aggTrade', 2).map((f) => f.data);
  t.equal(aggs[1]!.a, aggs[0]!.a + 1, 'aggTrade a is contiguous');
  const depth = frames('depth@100ms', 3).map((f) => f.data);
  for (let i = 1; i < depth.length; i++) t.equal(depth[i]!.U, depth[i - 1]!.u + 1, 'next U = previous u + 1');
  const now = nowMicros();
  t.ok(Math.abs(trades[0]!.E - now) < 60e6, 'E is a send time in µs on the shared clock');
  t.equal(streamTemplate(name('kline_1m')), null, 'a type the source does not send');
  t.equal(BENCH_STREAM_TYPES.length, 4);
});

t.test('flood source answers SUBSCRIBE and the baseline consumer reads it for half a second', async (t) => {
  const server = await FloodServer.start();
  t.teardown(() => server.close());
  server.setMode({ kind: 'flood' });
  const r = await runPhase({ role: 'baseline', kind: 'throughput', url: server.url, streams: 8, connections: 1, warmupMs: 0, windowMs: 500, readyTimeoutMs: 10_000 });
  t.equal(r.role, 'baseline');
  t.equal(r.connections, 1);
  t.ok(r.messages > 0, 'messages arrived');
  t.ok(server.sent >= r.messages, 'no more handled than sent');
  t.type(r.cpuSecPerMillion, 'number');
  t.type(r.rssMb, 'number');
});

t.test('the whole suite, both consumers, every phase, at toy scale: the report has its shape', async (t) => {
  const server = await FloodServer.start();
  t.teardown(() => server.close());
  const driver: Driver = {
    url: server.url,
    setMode: async (mode) => server.setMode(mode),
    sourceStats: async () => server.stats(),
    run: (spec, window) => runPhase(spec, { window }),
  };
  // Two pairs at 1 connection (where the target is judged), as --quick runs three.
  const report = buildReport(await runSuite({ ...SMOKE, targetReps: 2 }, driver));
  const json = JSON.parse(JSON.stringify(report)) as typeof report;
  const at1 = json.throughput.byConnections['1']!;
  t.equal(at1.ratios.length, 2, 'a ratio per pair at 1 connection');
  t.equal(json.runs.filter((m) => m.kind === 'throughput' && m.role === 'feedkeeper').length, 2, 'two feedkeeper throughput runs');
  t.ok(at1.ratio >= Math.min(...at1.ratios) - 0.001 && at1.ratio <= Math.max(...at1.ratios) + 0.001, 'the reported ratio is their median');
  t.match(formatTable(report), /fk \/ base of each of 2 pairs/);

  for (const k of ['baseline', 'feedkeeper', 'ratio'] as const) t.type(json.throughput[k], 'number', `throughput.${k}`);
  t.ok(json.throughput.byConnections['1'], 'per connection count');
  t.type(json.latencyMs.p99, 'number');
  t.type(json.latencyMs.p50, 'number');
  t.type(json.latencyMs.max, 'number');
  t.type(json.latencyMs.baseline.p99, 'number');
  t.type(json.rssMb['8'], 'number', 'rssMb per stream count');
  t.type(json.rssMb.baseline['8'], 'number');
  t.type(json.rssMb.ratio['8'], 'number');
  t.type(json.rssUnderFloodMb.feedkeeper, 'number');
  t.type(json.cpuSecPerMillion.flood.feedkeeper, 'number');
  t.type(json.cpuSecPerMillion.paced.baseline, 'number');
  t.type(json.targets.throughput.met, 'boolean');
  t.type(json.targets.latencyP99.met, 'boolean');
  t.equal(json.targets.rss, null, 'no 15,000-stream figure at toy scale');
  t.equal(json.meta.mode, 'smoke');
  t.ok(json.runs.length >= 9, 'every phase reported');
  const one = json.throughput.byConnections['1']!;
  t.ok(one.floor > 0, 'the ws floor measured');
  t.type(one.floorShare, 'number');
  for (const k of ['baseline', 'feedkeeper', 'floor'] as const) t.ok(one.cpuUsPerMessage[k] > 0, `CPU per message: ${k}`);
  // A line is the frame plus `{"recv":<13 digits>,"venue":"binance-spot",`: more than the frame.
  t.ok(one.bytesPerMessage > 60 && one.bytesPerMessage < 2000, `recording bytes per message: ${one.bytesPerMessage}`);
  t.ok(json.compression !== null && json.compression.ratio > 1 && json.compression.cpuUsPerMessage > 0, 'compression ratio and CPU per message');

  // Correctness, not speed: the source's IDs are contiguous, so feedkeeper never sees a sequence
  // gap, and at a paced 2,000 msg/s nothing may be lost.
  for (const m of json.runs.filter((r) => r.role === 'feedkeeper')) {
    t.ok(m.integrity, `${m.kind}: integrity checked`);
    t.equal(m.integrity?.gaps.sequence, undefined, `${m.kind}/${m.source}: no sequence gap`);
    if (m.source !== 'paced') continue;
    t.same(m.integrity?.gaps, {}, `${m.kind}: no gap`);
    t.equal(m.integrity?.dropped, 0, `${m.kind}: nothing dropped`);
    t.equal(m.integrity?.written, m.integrity?.received, `${m.kind}: every message received was written`);
  }
  t.match(formatTable(report), /throughput, 1 connection/);
});

t.test('the relay fan-out at toy scale: every client gets every message, the report has its shape', async (t) => {
  const server = await FloodServer.start();
  t.teardown(() => server.close());
  const report = buildRelayReport(await runRelaySuite(RELAY_SMOKE, inProcessRelayDriver(server)));
  t.same(report.rows.map((r) => r.clients), RELAY_SMOKE.clients, 'a row per client count');
  for (const run of report.runs) {
    t.same(run.integrity.gaps, {}, `${run.clients} clients: no gap upstream`);
    t.equal(run.integrity.dropped, 0, `${run.clients} clients: the recorder dropped nothing`);
    if (run.clients === 0) continue;
    t.ok(run.perClient !== null && run.perClient.min > 0, `${run.clients} clients: each received`);
    t.equal(run.lost, 0, `${run.clients} clients: every message the relay sent arrived`);
    t.same(run.clientsDropped, {}, `${run.clients} clients: none dropped`);
    t.equal(run.clientsClosed, 0);
    t.type(run.added?.p99Ms, 'number', 'added latency measured inside the relay');
    t.type(run.endToEnd?.p99Ms, 'number', 'end-to-end latency measured by the clients');
  }
  t.type(report.rows[0]!.rssMb, 'number');
  t.equal(report.target.met, null, 'the target is not judged at toy scale');
  t.match(formatRelayTable(report), /relay fan-out/);
});

t.test('the NATS sink phase at toy scale: both publishers, every message acknowledged, the report has its shape', { skip: natsServerVersion() === null ? 'nats-server not installed' : false }, async (t) => {
  const report = await runNatsSuite(NATS_SMOKE, runNatsBench);
  t.same(report.runs.map((r) => r.publisher), ['frames', 'client'], 'a pair, frames first');
  for (const r of report.runs) {
    t.equal(r.acked, NATS_SMOKE.messages, `${r.publisher}: every message acknowledged`);
    t.equal(r.dropped + r.failures, 0, `${r.publisher}: nothing dropped or failed`);
    t.ok(r.messagesPerSecond > 0 && r.clientCpuMicros > 0, `${r.publisher}: figures`);
  }
  t.type(report.ratio.messagesPerSecond, 'number');
  // The broker floor: the sink's frames prebuilt (checked byte for byte against FramePublisher's), one raw socket.
  const floor = report.floor;
  t.equal(floor.publisher, 'floor');
  t.equal(floor.acked, NATS_SMOKE.messages, 'floor: every message acknowledged');
  t.equal(floor.errors + floor.duplicates, 0, 'floor: no error, no duplicate');
  t.equal(floor.stored, NATS_SMOKE.messages, 'floor: every message in the stream');
  t.ok(floor.sampled > 0, 'floor: acks read as text');
  t.ok(floor.messagesPerSecond > 0 && floor.serverCpuMicros > 0, 'floor: figures');
  t.type(floor.framesRatio.messagesPerSecond, 'number');
  t.equal(report.target.met, null, 'the target is not judged at toy scale');
  t.match(formatNatsTable(report), /NATS sink: 3,000 acknowledged publishes/);
  t.match(formatNatsTable(report), /broker floor \(raw socket\)/);
});

t.test('the hot-path harness: every message through the frame reader, router and recorder is written', async (t) => {
  // 20,000 messages of 64 streams: a chunk cut mid-frame every 64 KiB, the recorder flushed by the harness.
  const r = await runHotPath(20_000, 64);
  t.equal(r.written, 20_000, 'every message written');
  t.equal(r.dropped, 0);
  t.ok(r.nsPerMessage > 0, 'a time measured');
});

t.test('the read-path harness: every message through a real socket, FeedSocket, router and recorder is written', async (t) => {
  const r = await runReadPath(20_000);
  t.equal(r.written, 20_000, 'every message written');
});
