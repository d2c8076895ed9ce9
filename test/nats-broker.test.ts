import t, { type Test } from 'tap';
import { connect } from '@nats-io/transport-node';
import { readStream, type StoredMessage } from '../src/sinks/nats/reader.js';
import { natsSkipReason, startNatsServer } from './nats-server.js';
import { ledgerEntries, readRecording, sleep, startStack, until } from './helpers/stack.js';

// The broker SIGKILLed and restarted under a running daemon (the "10 s" outage compressed
// to about 1.5 s: what matters is that publishes fail, the buffer fills and is sent again after
// the reconnect, which 1.5 s at 400 messages/s already exercises with hundreds of messages).
// Within the buffer: nothing lost, nothing stored twice, the recording untouched. Past the
// buffer: what the stream lacks is exactly the ledger's sink_dropped ranges.

const skip = natsSkipReason();
if (skip !== null) t.plan(0, skip);

const STREAMS = [
  ['btcusdt@trade', 't', 'md.binance-spot.trade.BTCUSDT'],
  ['ethusdt@trade', 't', 'md.binance-spot.trade.ETHUSDT'],
  ['btcusdt@aggTrade', 'a', 'md.binance-spot.aggTrade.BTCUSDT'],
  ['ethusdt@aggTrade', 'a', 'md.binance-spot.aggTrade.ETHUSDT'],
] as const;

async function stored(url: string): Promise<StoredMessage[]> {
  const nc = await connect({ servers: url });
  const out: StoredMessage[] = [];
  try {
    await readStream(nc, 'FEEDKEEPER', { onMessage: (m) => out.push(m) });
  } finally {
    await nc.close();
  }
  return out;
}

function idsOn(msgs: StoredMessage[], subject: string, field: string): number[] {
  return msgs.filter((m) => m.subject === subject).map((m) => (JSON.parse(Buffer.from(m.data).toString()) as { data: Record<string, number> }).data[field]!);
}

async function outage(maxBufferBytes: number, t: Test) {
  const nats = await startNatsServer(t);
  const stack = await startStack(t, {
    sim: { eventsPerSecond: 200, tickMs: 10 },
    config: {
      symbols: ['BTCUSDT', 'ETHUSDT'],
      streams: ['trade', 'aggTrade'],
      collector: { id: 'sg-1' },
      sinks: { nats: { enabled: true, servers: [nats.url], reconnectWaitMs: 100, ackTimeoutMs: 1000, maxBufferBytes, drainTimeoutMs: 3000 } },
    },
  });
  const { daemon, sim } = stack;
  const acked = async (): Promise<number> => ((await daemon.metrics.registry.getSingleMetric('feedkeeper_nats_acked_total')!.get()).values[0]?.value ?? 0);
  t.ok(await until(async () => (await acked()) >= 200, 30_000), 'publishing');
  await nats.kill();
  const killedAt = Date.now();
  t.ok(await until(() => !daemon.nats!.connected(), 10_000), 'the sink sees the broker gone');
  const sentBefore = sim.sentIds('btcusdt@trade').length;
  await until(() => Date.now() - killedAt >= 1500, 3000);
  t.ok(sim.sentIds('btcusdt@trade').length - sentBefore >= 30, 'the market went on during the outage');
  await nats.start();
  t.ok(await until(() => daemon.nats!.connected() && daemon.nats!.pendingMessages() < 50, 30_000), 'reconnected and the buffer sent');
  await sleep(300);
  await daemon.stop('test');
  return { ...stack, nats, msgs: await stored(nats.url) };
}

t.test('within the buffer: nothing lost, nothing twice, the recording untouched', { skip: skip ?? false }, async (t) => {
  const { msgs, config } = await outage(64 * 1024 * 1024, t);
  const rec = readRecording(config.recorder.dir);
  for (const [stream, field, subject] of STREAMS) {
    const recorded = rec.filter((l) => l.stream === stream).map((l) => l.data[field] as number);
    const ids = idsOn(msgs, subject, field);
    t.same(ids, recorded, `${stream}: the stream holds every recorded ID once, in order (${ids.length})`);
    for (let i = 1; i < recorded.length; i++) if (recorded[i] !== recorded[i - 1]! + 1) t.fail(`${stream}: the recording has a hole at ${recorded[i]}`);
  }
  const entries = await ledgerEntries(config);
  t.same(entries.filter((e) => e.cause !== 'shutdown'), [], 'no ledger entry but the shutdown ones: the recording saw no outage');
});

t.test('past the buffer: the sink_dropped ranges are exactly what the stream lacks', { skip: skip ?? false }, async (t) => {
  // 16 KiB: about 70 lines of ~230 bytes, far less than 1.5 s of 400 messages/s.
  const { msgs, config, daemon } = await outage(16 * 1024, t);
  const rec = readRecording(config.recorder.dir);
  const entries = (await ledgerEntries(config)).filter((e) => e.cause === 'sink_dropped');
  t.ok(entries.length > 0, `sink_dropped entries (${entries.length})`);
  const dropped = (await daemon.metrics.registry.getSingleMetric('feedkeeper_sink_dropped_total')!.get()).values.find((v) => v.labels.sink === 'nats')?.value ?? 0;
  let missingTotal = 0;
  for (const [stream, field, subject] of STREAMS) {
    const recorded = rec.filter((l) => l.stream === stream).map((l) => l.data[field] as number);
    const ids = idsOn(msgs, subject, field);
    t.equal(new Set(ids).size, ids.length, `${stream}: nothing stored twice`);
    const have = new Set(ids);
    const missing = recorded.filter((id) => !have.has(id));
    const ranges = entries.filter((e) => e.stream === stream).flatMap((e) => {
      const m = e.missed!;
      t.equal(m.count, m.to - m.from + 1, `${stream}: count matches the range ${m.from}..${m.to}`);
      return Array.from({ length: m.to - m.from + 1 }, (_, i) => m.from + i);
    });
    t.same(missing, ranges, `${stream}: missing from the stream = the ledger's sink_dropped ranges (${missing.length} IDs)`);
    t.ok(ids.every((id) => recorded.includes(id)), `${stream}: the stream holds nothing the recording lacks`);
    missingTotal += missing.length;
  }
  t.ok(missingTotal > 0, 'messages were dropped');
  t.equal(dropped, missingTotal, 'feedkeeper_sink_dropped_total{sink="nats"} counts them');
  t.same((await ledgerEntries(config)).filter((e) => e.cause !== 'shutdown' && e.cause !== 'sink_dropped'), [], 'the recording itself saw no gap');
});
