import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { loadConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { streamRef, type StreamRef } from '../src/pipeline/stream-ref.js';
import { NatsSink } from '../src/sinks/nats/index.js';
import type { PublisherKind } from '../src/sinks/nats/publisher.js';
import { binanceSpot } from '../src/venues/binance/spot.js';

/**
 * The NATS sink's throughput, published with acks (a benchmark, not a timed test):
 *
 *   npm run build && node dist/bench/nats-bench.js [--messages N] [--streams N] [--inflight N] [--publisher frames|client] [--json FILE]
 *
 * (also a phase of `npm run bench`: bench/nats-suite.ts)
 *
 * Starts its own `nats-server -js -sd <tmp>` on a free loopback port (Debian's nats-server), then
 * hands the sink Binance combined trade frames (distinct IDs over `--streams` streams, so every
 * Msg-Id is new) as fast as its buffer takes them, exactly as the router does after the recorder,
 * and measures from the first write to the last ack: messages per second stored in JetStream (file
 * storage), the duplicate window on. Each write builds the recording line, makes the Msg-Id from
 * the trade ID the router read and queues the publish; the acks are JetStream's.
 */

export interface NatsBenchOptions {
  messages: number;
  streams: number;
  inflight: number;
  publisher: PublisherKind;
}

export const NATS_BENCH_DEFAULTS: NatsBenchOptions = { messages: 500_000, streams: 100, inflight: 4096, publisher: 'frames' };

export interface NatsBenchResult {
  server: string;
  node: string;
  messages: number;
  streams: number;
  maxInflight: number;
  publisher: PublisherKind | null;
  acked: number;
  dropped: number;
  failures: number;
  writeSeconds: number;
  seconds: number;
  /** Acknowledged publishes per second, first write to last ack. */
  messagesPerSecond: number;
  bytesPerMessage: number;
  /** CPU time per acknowledged message, here and in nats-server: less at the mercy of a shared machine than msg/s. */
  clientCpuMicros: number;
  serverCpuMicros: number;
  loadAverage: number[];
}

function parseArgs(argv: string[]): NatsBenchOptions & { json: string | null } {
  const a = { ...NATS_BENCH_DEFAULTS, json: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (k === '--messages') a.messages = Number(v);
    else if (k === '--streams') a.streams = Number(v);
    else if (k === '--inflight') a.inflight = Number(v);
    else if (k === '--json') a.json = v ?? null;
    else if (k === '--publisher') {
      if (v !== 'client' && v !== 'frames') throw new Error('--publisher is frames or client');
      a.publisher = v;
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

/** nats-server's version line, or null when it is not installed. */
export function natsServerVersion(): string | null {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** utime + stime of a process, in seconds (Linux /proc; NaN elsewhere). */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

export function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The Feedkeeper-Collector header of every bench publish (collector.id). */
export const BENCH_COLLECTOR = 'bench';
/** The receive time of every bench message (the recording line's `recv`). */
export const BENCH_RECV_MS = 1700000000000;

/** The bench's streams: `s<i>usdt@trade` on Binance spot, subject `md.binance-spot.trade.S<i>USDT`. */
export function benchRefs(streams: number): StreamRef[] {
  return Array.from({ length: streams }, (_, i) => streamRef(binanceSpot, `s${i}usdt@trade`));
}

/** The Binance combined trade frame of stream `i` with trade ID `id`. */
export function benchTradeFrame(i: number, id: number): Buffer {
  return Buffer.from(`{"stream":"s${i}usdt@trade","data":{"e":"trade","E":1700000000000,"s":"S${i}USDT","t":${id},"p":"27000.01000000","q":"0.00100000","T":1700000000000,"m":true,"M":true}}`);
}

/** The trade ID of message `n` (round robin over `streams`): every Msg-Id of a run is new. */
export function benchTradeId(n: number, streams: number): number {
  return 1_000_000 + Math.floor(n / streams);
}

export interface BenchNatsServer {
  url: string;
  port: number;
  child: ChildProcess;
  dir: string;
  version: string;
}

/** `nats-server -js -sd <tmp>` on a free loopback port, once it accepts connections. */
export async function startNatsServer(): Promise<BenchNatsServer> {
  const version = natsServerVersion();
  if (version === null) throw new Error('nats-server not installed (apt-get install -y nats-server)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-nats-bench-'));
  const child = spawn('nats-server', ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  for (let i = 0; i < 500; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = createConnection({ host: '127.0.0.1', port });
      c.once('connect', () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (ok) return { url: `nats://127.0.0.1:${port}`, port, child, dir, version };
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  throw new Error('nats-server did not start');
}

/** Kills the server and removes its store. */
export function stopNatsServer(server: BenchNatsServer): void {
  server.child.kill('SIGKILL');
  rmSync(server.dir, { recursive: true, force: true });
}

/** One run: its own nats-server, one NatsSink, `messages` trade frames written and acknowledged. */
export async function runNatsBench(args: NatsBenchOptions): Promise<NatsBenchResult> {
  const server = await startNatsServer();
  try {
    const base = loadConfig({ files: [], env: {} });
    const cfg = { ...base.sinks.nats, enabled: true, servers: [server.url], maxInflight: args.inflight, maxBufferBytes: 256 * 1024 * 1024, reconnectWaitMs: 100 };
    const registry = new Registry();
    const sink = new NatsSink({ config: cfg, collector: BENCH_COLLECTOR, logger: silentLogger(), registry, env: {}, publisher: args.publisher });
    sink.start();
    const t0 = Date.now();
    while (!sink.connected()) {
      if (Date.now() - t0 > 10_000) throw new Error('sink did not connect');
      await new Promise((r) => setTimeout(r, 10));
    }
    const refs = benchRefs(args.streams);
    // Frames built before the clock starts: the exchange's bytes arrive ready-made.
    const idOf = (n: number): number => benchTradeId(n, args.streams);
    const frames = Array.from({ length: args.messages }, (_, n) => benchTradeFrame(n % args.streams, idOf(n)));
    const metrics = (): Promise<number> => registry.getSingleMetric('feedkeeper_nats_acked_total')!.get().then((v) => v.values[0]?.value ?? 0);

    let dropped = 0;
    const cpu0 = process.cpuUsage();
    const server0 = cpuSeconds(server.child.pid);
    const start = process.hrtime.bigint();
    let n = 0;
    // As fast as the buffer takes them, yielding to the event loop so the acks come in.
    while (n < args.messages) {
      const end = Math.min(args.messages, n + 2000);
      // The trade ID as the router hands it over (it read it for its own sequence check).
      for (; n < end; n++) if (!sink.write(frames[n]!, BENCH_RECV_MS, refs[n % args.streams]!, idOf(n), idOf(n))) dropped++;
      await new Promise((r) => setImmediate(r));
    }
    const written = process.hrtime.bigint();
    while (sink.pendingMessages() > 0) await new Promise((r) => setTimeout(r, 2));
    const done = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = cpuSeconds(server.child.pid) - server0;
    const acked = await metrics();
    const failures = (await registry.getSingleMetric('feedkeeper_nats_publish_failures_total')!.get()).values[0]?.value ?? 0;
    const seconds = Number(done - start) / 1e9;
    const result: NatsBenchResult = {
      server: server.version,
      node: process.version,
      messages: args.messages,
      streams: args.streams,
      maxInflight: args.inflight,
      publisher: sink.publisherKind,
      acked,
      dropped,
      failures,
      writeSeconds: Number(written - start) / 1e9,
      seconds,
      messagesPerSecond: Math.round(acked / seconds),
      bytesPerMessage: frames[0]!.length + 30,
      clientCpuMicros: round2((cpu.user + cpu.system) / acked),
      serverCpuMicros: round2((serverCpu * 1e6) / acked),
      loadAverage: loadavg().map((v) => Number(v.toFixed(2))),
    };
    await sink.close();
    return result;
  } finally {
    stopNatsServer(server);
  }
}

export function formatNatsRun(r: NatsBenchResult): string {
  return (
    `  ${r.acked} of ${r.messages} messages over ${r.streams} streams in ${r.seconds.toFixed(2)} s: ${r.messagesPerSecond.toLocaleString('en')} msg/s acked` +
    ` (${r.publisher} publisher; CPU ${r.clientCpuMicros} µs/msg here, ${r.serverCpuMicros} in nats-server; load ${r.loadAverage.join(' ')};` +
    ` writes done after ${r.writeSeconds.toFixed(2)} s; ${r.dropped} dropped; ${r.failures} publish failures; in flight <= ${r.maxInflight})`
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const r = await runNatsBench(args);
  process.stdout.write(`NATS sink, acknowledged publishes into JetStream (${r.server}, file storage, Node ${r.node}):\n${formatNatsRun(r)}\n`);
  if (args.json !== null) writeFileSync(args.json, JSON.stringify(r, null, 2) + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
