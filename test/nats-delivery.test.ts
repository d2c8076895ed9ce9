import t from 'tap';
import { Delivery, type Outgoing } from '../src/sinks/nats/delivery.js';
import { readPubAck } from '../src/sinks/nats/sink.js';
import { loadConfig } from '../src/config/load.js';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/stack.js';
import { messageSubject, streamSymbol, token } from '../src/sinks/nats/subjects.js';
import { getVenue } from '../src/venues/index.js';

// The NATS sink's pieces without a broker: the ordered, bounded delivery (window, bytes, resend
// in order after a failure), subjects, and the config keys (each bad value names its key, exit 2).

function rig(opts: { maxBufferBytes?: number; maxInflight?: number } = {}) {
  const sent: Outgoing[] = [];
  const events: string[] = [];
  const d = new Delivery({
    maxBufferBytes: opts.maxBufferBytes ?? 1000,
    maxInflight: opts.maxInflight ?? 2,
    retryMs: 10,
    send: (m) => void sent.push(m),
    onAck: () => {},
    onFailed: () => void events.push('failed'),
    onFailure: () => void events.push('outage'),
    onRecovered: () => void events.push('recovered'),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (x) => clearTimeout(x),
  });
  return { d, sent, events };
}
const data = (n: number): Uint8Array => new Uint8Array(n);

t.test('a bounded window, bytes until acked, order kept through a failure', async (t) => {
  const { d, sent, events } = rig();
  t.ok(d.offer('a', data(100), '1'));
  d.setConnected(true);
  for (const id of ['2', '3', '4']) t.ok(d.offer('a', data(100), id));
  t.same(sent.map((m) => m.msgId), ['1', '2'], 'at most maxInflight in flight');
  t.equal(d.pendingBytes, 400);
  d.ack(sent[1]!, { duplicate: false });
  t.equal(d.pendingBytes, 400, 'an ack behind an unacknowledged head frees nothing yet');
  t.same(sent.map((m) => m.msgId), ['1', '2', '3']);
  d.fail(sent[0]!, new Error('timeout'));
  t.same(events, ['failed', 'outage']);
  t.same(sent.map((m) => m.msgId), ['1', '2', '3'], 'nothing new while a publish is still in flight after a failure');
  d.fail(sent[2]!, new Error('timeout'));
  await new Promise((r) => setTimeout(r, 30));
  t.same(sent.map((m) => m.msgId), ['1', '2', '3', '1'], 'after the retry pause: the oldest first, one at a time');
  d.ack(sent[3]!, { duplicate: false });
  t.same(events.at(-1), 'recovered');
  t.same(sent.slice(4).map((m) => m.msgId), ['3', '4'], 'then in order, skipping what was acknowledged');
  d.ack(sent[4]!, { duplicate: true });
  d.ack(sent[5]!, { duplicate: false });
  t.equal(d.pending, 0);
  t.equal(d.pendingBytes, 0);
  t.ok(await d.drained(10));
});

t.test('past maxBufferBytes: refused, nothing queued; disconnected: nothing sent', async (t) => {
  const { d, sent } = rig({ maxBufferBytes: 250 });
  t.ok(d.offer('a', data(100), '1'));
  t.ok(d.offer('a', data(100), '2'));
  t.notOk(d.offer('a', data(100), '3'), 'over the limit');
  t.equal(d.pending, 2);
  t.same(sent, [], 'not connected: nothing sent');
  t.notOk(await d.drained(20), 'drained() gives up after its time');
  d.setConnected(true);
  t.equal(sent.length, 2);
  d.close();
});

t.test('subjects: tokens sanitized', async (t) => {
  t.equal(token('a.b*c>d e'), 'a_b_c_d_e');
  t.equal(token(''), '_');
  t.equal(streamSymbol('btcusdt@depth@100ms'), 'BTCUSDT');
  t.equal(streamSymbol('trades:BTC-USDT'), 'BTC-USDT');
  t.equal(messageSubject('md', getVenue('binance-usdm')!, 'ethusdt@depth@100ms'), 'md.binance-usdm.depth@100ms.ETHUSDT');
  t.equal(messageSubject('md', getVenue('bybit-linear')!, 'orderbook.50:BTCUSDT'), 'md.bybit-linear.orderbook_50.BTCUSDT');
  t.equal(messageSubject('eu.md', getVenue('okx')!, 'trades:BTC-USDT'), 'eu.md.okx.trades.BTC-USDT');
});

t.test('config: defaults, and a bad value names its key', async (t) => {
  const c = loadConfig({ files: [], env: {} });
  t.match(c.sinks.nats, { enabled: false, servers: ['nats://127.0.0.1:4222'], stream: 'FEEDKEEPER', subjectPrefix: 'md', duplicateWindowMs: 120000, createStream: true });
  t.match(c.collector.id, /^[A-Za-z0-9_.-]{1,64}$/, 'collector.id defaults to the host name');
  const bad: Array<[Record<string, string>, string, RegExp]> = [
    [{ FEEDKEEPER_SINKS_NATS_SERVERS: 'nats://user:secret@h:4222' }, 'sinks.nats.servers[0]', /must not carry credentials/],
    [{ FEEDKEEPER_SINKS_NATS_SERVERS: 'http://h:4222' }, 'sinks.nats.servers[0]', /nats:\/\/ or tls:\/\//],
    [{ FEEDKEEPER_SINKS_NATS_STREAM: 'a.b' }, 'sinks.nats.stream', /JetStream stream name/],
    [{ FEEDKEEPER_SINKS_NATS_SUBJECT_PREFIX: 'md.*' }, 'sinks.nats.subjectPrefix', /subject tokens/],
    [{ FEEDKEEPER_COLLECTOR_ID: 'sg 1' }, 'collector.id', /letters, digits/],
    [{ FEEDKEEPER_SINKS_NATS_ENABLED: 'true', FEEDKEEPER_SINKS_NATS_DRAIN_TIMEOUT_MS: '4000' }, 'sinks.nats.drainTimeoutMs', /at most 3000/],
    [{ FEEDKEEPER_SINKS_NATS_MAX_INFLIGHT: '0' }, 'sinks.nats.maxInflight', /positive integer/],
  ];
  for (const [env, key, message] of bad) t.throws(() => loadConfig({ files: [], env }), { name: 'ConfigError', key, message }, key);
  let msg = '';
  try {
    loadConfig({ files: [], env: { FEEDKEEPER_SINKS_NATS_SERVERS: 'nats://user:secret@h:4222' } });
  } catch (e) {
    msg = (e as Error).message;
  }
  t.notMatch(msg, /secret/, 'the credential is not echoed');
  t.ok(loadConfig({ files: [], env: { FEEDKEEPER_NATS_TOKEN: 'x', FEEDKEEPER_NATS_USER: 'u', FEEDKEEPER_NATS_PASSWORD: 'p' } }), 'the credential variables are no config keys, and not refused');
});

t.test('the CLI: a bad sinks.nats key exits 2 before anything connects', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ sinks: { nats: { servers: ['nats://u:hunter2@127.0.0.1:4222'] } } }));
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'plan', '--config', file], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  t.equal(r.status, 2, 'exit 2');
  t.match(r.stderr, /sinks\.nats\.servers\[0\]/, 'names the key');
  t.notMatch(r.stderr, /hunter2/, 'never the credential');
});

t.test('a broker never reachable: the daemon records, stops in time, the buffer stays in the recording', async (t) => {
  const { freePort } = await import('./nats-server.js');
  const { startStack, until, readRecording } = await import('./helpers/stack.js');
  const port = await freePort();
  const { daemon, config } = await startStack(t, {
    sim: { eventsPerSecond: 50, tickMs: 20 },
    config: { symbols: ['BTCUSDT'], streams: ['trade'], sinks: { nats: { enabled: true, servers: [`nats://127.0.0.1:${port}`], reconnectWaitMs: 100, drainTimeoutMs: 3000 } } },
  });
  t.ok(await until(() => daemon.nats!.pendingMessages() > 10, 10_000), 'messages wait for the broker');
  t.notOk(daemon.nats!.connected());
  t.ok(daemon.readiness().ready || daemon.readiness().reasons.every((r) => !r.startsWith('nats:')), 'requiredForReady false: the broker is not a readiness reason');
  const t0 = Date.now();
  await daemon.stop('test');
  // A drain would wait drainTimeoutMs (3 s) for acks no broker can send; an uncancellable first
  // connect would hang the stop until its 4.5 s deadline.
  t.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms: no drain without a broker, no endless first connect`);
  t.ok(readRecording(config.recorder.dir).length > 10, 'recorded all along');
});

t.test('PubAck: the two templates nats-server writes read by their bytes, anything else as JSON', async (t) => {
  const ack = (text: string) => readPubAck(new TextEncoder().encode(text));
  t.same(ack('{"stream":"FEEDKEEPER", "seq":7}'), { duplicate: false });
  t.same(ack('{"stream":"FEEDKEEPER", "seq":7,"duplicate": true}'), { duplicate: true });
  t.same(ack('{"stream":"X","seq":1,"domain":"hub"}'), { duplicate: false }, 'a domain: parsed');
  t.same(ack('{"stream":"X","seq":1, "duplicate":true, "domain":"hub"}'), { duplicate: true });
  t.same(ack('{"stream":"X","seq":1,"duplicate":false}'), { duplicate: false });
  t.equal(ack('{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"X","seq":0}'), null, 'an error');
  t.equal(ack('{"stream":"X","seq":0,"error":{"code":400}}'), null);
  t.equal(ack('not json'), null);
  t.equal(ack(''), null);
});
