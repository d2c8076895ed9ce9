import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { readStream, type StoredMessage } from '../src/sinks/nats/reader.js';
import { natsSkipReason, startNatsServer } from './nats-server.js';
import { ledgerEntries, readRecording, startStack, until } from './helpers/stack.js';
import { Registry } from 'prom-client';
import { loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { streamRef } from '../src/pipeline/stream-ref.js';
import { NatsSink } from '../src/sinks/nats/index.js';
import { binanceSpot } from '../src/venues/binance/spot.js';

// The NATS sink against a real nats-server (JetStream, file store): subjects, payload, Msg-Id and
// collector headers, every trade ID once, the ledger entries on <prefix>.<venue>._gaps.

const skip = natsSkipReason();
if (skip !== null) t.plan(0, skip);

async function stored(url: string, stream = 'FEEDKEEPER'): Promise<StoredMessage[]> {
  const nc = await connect({ servers: url });
  const out: StoredMessage[] = [];
  try {
    await readStream(nc, stream, { onMessage: (m) => out.push(m) });
  } finally {
    await nc.close();
  }
  return out;
}

t.test('every message once on its subject, with the recording line, Msg-Id and collector', { skip: skip ?? false }, async (t) => {
  const nats = await startNatsServer(t);
  const { sim, daemon, config } = await startStack(t, {
    sim: { eventsPerSecond: 200, tickMs: 10 },
    config: {
      symbols: ['BTCUSDT', 'ETHUSDT'],
      streams: ['trade', 'aggTrade', 'bookTicker'],
      collector: { id: 'sg-1' },
      sinks: { nats: { enabled: true, servers: [nats.url], reconnectWaitMs: 100 } },
    },
  });
  t.ok(await until(() => daemon.nats!.connected(), 30_000), 'connected');
  t.ok(await until(() => sim.sentIds('btcusdt@trade').length >= 200, 30_000), 'the simulator sent trades');
  await daemon.stop('test');
  const msgs = await stored(nats.url);
  const subjects = new Set(msgs.map((m) => m.subject));
  t.ok(subjects.has('md.binance-spot.trade.BTCUSDT'), 'trade subject');
  t.ok(subjects.has('md.binance-spot.aggTrade.ETHUSDT'), 'aggTrade subject');
  t.ok(subjects.has('md.binance-spot.bookTicker.BTCUSDT'), 'bookTicker subject');
  t.ok(subjects.has('md.binance-spot._gaps'), 'ledger entries subject (shutdown gaps)');
  t.ok(msgs.every((m) => m.collector === 'sg-1'), 'Feedkeeper-Collector on every message');

  const rec = readRecording(config.recorder.dir);
  for (const [stream, field, subject] of [
    ['btcusdt@trade', 't', 'md.binance-spot.trade.BTCUSDT'],
    ['ethusdt@aggTrade', 'a', 'md.binance-spot.aggTrade.ETHUSDT'],
  ] as const) {
    const onSubject = msgs.filter((m) => m.subject === subject);
    const ids = onSubject.map((m) => (JSON.parse(Buffer.from(m.data).toString()) as { data: Record<string, number> }).data[field]!);
    const recorded = rec.filter((l) => l.stream === stream).map((l) => l.data[field] as number);
    t.same(ids, recorded, `${stream}: the stream holds exactly the recorded IDs, in order, once`);
    t.same(onSubject.map((m) => m.msgId), ids.map((id) => `binance-spot:${stream}:${id}`), `${stream}: Msg-Id <venue>:<stream>:<id>`);
  }
  // The payload is the recording line (without its newline).
  const first = msgs.find((m) => m.subject === 'md.binance-spot.trade.BTCUSDT')!;
  const line = JSON.parse(Buffer.from(first.data).toString()) as { recv: number; venue: string; stream: string };
  t.match(line, { venue: 'binance-spot', stream: 'btcusdt@trade', recv: Number });
  const book = msgs.filter((m) => m.subject === 'md.binance-spot.bookTicker.BTCUSDT');
  t.ok(book.length > 0 && book.every((m) => /^binance-spot:btcusdt@bookTicker:#[A-Za-z0-9_-]{32}$/.test(m.msgId ?? '')), 'bookTicker: a digest Msg-Id');
  t.equal(new Set(book.map((m) => m.msgId)).size, book.length, 'distinct digests');

  const gaps = msgs.filter((m) => m.subject === 'md.binance-spot._gaps');
  const ledger = await ledgerEntries(config);
  t.equal(gaps.length, ledger.length, 'every ledger line published');
  t.ok(gaps.every((m) => /^sg-1:gap:\d{8}T\d{6}\.\d{3}Z-\d+:(open|closed)$/.test(m.msgId ?? '')), 'gap Msg-Id: collector, entry id, state');
});

t.test('readiness: sinks.nats.requiredForReady makes /readyz follow the broker; metrics', { skip: skip ?? false }, async (t) => {
  const nats = await startNatsServer(t);
  await nats.kill();
  const { daemon } = await startStack(t, {
    sim: { eventsPerSecond: 50, tickMs: 20 },
    config: {
      symbols: ['BTCUSDT'],
      streams: ['trade'],
      collector: { id: 'tk-1' },
      sinks: { nats: { enabled: true, servers: [nats.url], reconnectWaitMs: 100, ackTimeoutMs: 1000, requiredForReady: true } },
    },
  });
  t.ok(await until(() => daemon.readiness().reasons.every((r) => r.startsWith('nats:')) && daemon.readiness().reasons.length > 0, 30_000), 'connections open, only the broker missing');
  t.notOk(daemon.readiness().ready, 'not ready while the broker is down');
  t.match(daemon.readiness().reasons, [/^nats: not connected to nats:\/\/127\.0\.0\.1:\d+/]);
  const metric = async (name: string): Promise<number> => (await daemon.metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  t.equal(await metric('feedkeeper_nats_connected'), 0);
  // The connection may be open before its first trade: wait for one to be buffered.
  t.ok(await until(async () => (await metric('feedkeeper_nats_pending_messages')) > 0, 10_000), 'messages buffered while the broker is down');
  t.ok((await metric('feedkeeper_nats_pending_bytes')) > 0);
  await nats.start();
  t.ok(await until(() => daemon.readiness().ready, 30_000), 'ready once the broker is there and the buffer goes out');
  t.ok(await until(async () => (await metric('feedkeeper_nats_pending_messages')) < 5, 30_000));
  t.equal(await metric('feedkeeper_nats_connected'), 1);
  t.ok((await metric('feedkeeper_nats_acked_total')) > 0, 'acks counted');
});

t.test('two collectors in one process: the second copy of each message is a duplicate', { skip: skip ?? false }, async (t) => {
  const nats = await startNatsServer(t);
  const sinks = (id: string) => ({ collector: { id }, sinks: { nats: { enabled: true, servers: [nats.url], reconnectWaitMs: 100 } } });
  const a = await startStack(t, { sim: { eventsPerSecond: 100, tickMs: 10 }, config: { symbols: ['BTCUSDT'], streams: ['trade'], ...sinks('a') } });
  const b = await startStack(t, { startDaemon: false, config: { symbols: ['BTCUSDT'], streams: ['trade'], endpoints: { stream: a.sim.wsUrl, rest: a.sim.httpUrl }, ...sinks('b') } });
  await b.daemon.start();
  const dup = async (d: typeof a.daemon): Promise<number> => (await d.metrics.registry.getSingleMetric('feedkeeper_nats_duplicates_total')!.get()).values[0]?.value ?? 0;
  t.ok(await until(async () => (await dup(a.daemon)) + (await dup(b.daemon)) > 50, 30_000), 'JetStream reports the other collector\'s copies as duplicates');
});

t.test('both publishers (frames, client) store the same messages byte for byte; acks and duplicates read from the PubAck', { skip: skip ?? false }, async (t) => {
  const nats = await startNatsServer(t);
  const base = loadConfig({ files: [], env: {} }).sinks.nats;
  // A symbol in Chinese characters (Binance lists some): its Msg-Id is not ASCII.
  const names = ['btcusdt@trade', '币安人生usdt@trade'];
  const RANGE = 'ethusdt@aggTrade';
  const frame = (name: string, id: number): Buffer =>
    Buffer.from(`{"stream":"${name}","data":{"e":"trade","E":1700000000000,"s":"${name.split('@')[0]!.toUpperCase()}","t":${id},"p":"1.0","q":"2.0","T":1700000000000,"m":true,"M":true}}`);
  const run = async (publisher: 'frames' | 'client', stream: string, ids: number[], readAcks = true): Promise<{ acked: number; duplicates: number }> => {
    const registry = new Registry();
    const sink = new NatsSink({ config: { ...base, enabled: true, servers: [nats.url], stream, subjectPrefix: stream.toLowerCase(), reconnectWaitMs: 100 }, collector: 'c-1', logger: silentLogger(), registry, env: {}, publisher, readAcks });
    sink.start();
    t.ok(await until(() => sink.connected(), 10_000), `${publisher}: connected`);
    t.equal(sink.publisherKind, publisher);
    t.equal(sink.acksFromBytes, readAcks, readAcks ? 'acks read from the bytes (acks.ts)' : 'acks through the client\'s parser');
    for (const id of ids) {
      for (const name of names) t.ok(sink.write(frame(name, id), 1700000000123, streamRef(binanceSpot, name), id, id));
      // A message covering several IDs: `first-last`.
      t.ok(sink.write(frame(RANGE, id), 1700000000123, streamRef(binanceSpot, RANGE), id * 3, id * 3 + 2));
    }
    t.ok(await until(() => sink.pendingMessages() === 0, 10_000), `${publisher}: everything acknowledged`);
    await sink.close();
    const value = async (name: string): Promise<number> => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
    return { acked: await value('feedkeeper_nats_acked_total'), duplicates: await value('feedkeeper_nats_duplicates_total') };
  };
  const ids = Array.from({ length: 300 }, (_, i) => 1000 + i);
  // Into two streams, once each; then the same IDs again into the first: all duplicates.
  t.same(await run('frames', 'FRAMES', ids), { acked: 900, duplicates: 0 });
  t.same(await run('client', 'CLIENT', ids), { acked: 900, duplicates: 0 });
  t.same(await run('client', 'FRAMES', ids.slice(0, 100)), { acked: 300, duplicates: 300 }, 'client: duplicates counted');
  t.same(await run('frames', 'CLIENT', ids.slice(0, 100)), { acked: 300, duplicates: 300 }, 'frames: duplicates counted');
  t.same(await run('frames', 'FRAMES', ids.slice(0, 50), false), { acked: 150, duplicates: 150 }, 'the client\'s parser reads the same acks and duplicates');
  const a = await stored(nats.url, 'FRAMES');
  const b = await stored(nats.url, 'CLIENT');
  t.equal(a.length, 900);
  const shape = (m: StoredMessage) => ({ subject: m.subject.slice(m.subject.indexOf('.')), msgId: m.msgId, collector: m.collector, data: Buffer.from(m.data).toString() });
  t.same(a.map(shape), b.map(shape), 'the same subjects, headers and payloads');
  t.same(a.slice(0, 3).map((m) => m.msgId), ['binance-spot:btcusdt@trade:1000', 'binance-spot:币安人生usdt@trade:1000', 'binance-spot:ethusdt@aggTrade:3000-3002'], 'Msg-Ids, UTF-8 ones and ranges too');
  t.same(JSON.parse(Buffer.from(a[1]!.data).toString()), { recv: 1700000000123, venue: 'binance-spot', ...JSON.parse(frame(names[1]!, 1000).toString()) });
});

t.test('no stream: the no-responders status (an HMSG, left to the client\'s parser) fails the publish; once the stream exists, it is acknowledged', { skip: skip ?? false }, async (t) => {
  const nats = await startNatsServer(t);
  const base = loadConfig({ files: [], env: {} }).sinks.nats;
  const registry = new Registry();
  const sink = new NatsSink({ config: { ...base, enabled: true, servers: [nats.url], stream: 'LATER', createStream: false, reconnectWaitMs: 100 }, collector: 'c-1', logger: silentLogger(), registry, env: {} });
  t.teardown(() => sink.close());
  sink.start();
  t.ok(await until(() => sink.connected(), 10_000), 'connected');
  t.equal(sink.acksFromBytes, true);
  const frame = Buffer.from('{"stream":"btcusdt@trade","data":{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":7,"p":"1.0","q":"2.0","T":1700000000000,"m":true,"M":true}}');
  t.ok(sink.write(frame, 1700000000123, streamRef(binanceSpot, 'btcusdt@trade'), 7, 7));
  const value = async (name: string): Promise<number> => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  t.ok(await until(async () => (await value('feedkeeper_nats_publish_failures_total')) > 0, 10_000), 'the publish failed');
  t.match(sink.notReadyReason(), /no responders/, 'for want of a stream');
  const nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'LATER', subjects: ['md.>'], storage: StorageType.File });
  await nc.close();
  t.ok(await until(() => sink.pendingMessages() === 0, 10_000), 'sent again and acknowledged');
  t.equal(await value('feedkeeper_nats_acked_total'), 1);
  t.equal(sink.notReadyReason(), null);
});
