import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon.js';
import { readLedger } from '../src/ledger/report.js';
import { createLogger } from '../src/log.js';
import { relayMetrics } from '../src/relay/metrics.js';
import type { RelayServer } from '../src/relay/server.js';
import { keyPattern, readInt } from '../src/venues/binance/frame.js';
import { benchConfig } from './bench-config.js';
import { LATENCY_EVERY } from './consumers.js';
import { nowMicros } from './frames.js';
import type { DaemonReply, DaemonRequest, DaemonSnapshot, RelayDaemonSpec } from './relay-protocol.js';
import { LatencySampler, mb } from './stats.js';

/**
 * The relay bench's daemon: the whole feedkeeper Daemon (recorder, ledger, metrics, everything as
 * in bench/consumers.ts) with `relay.enabled`, on the flood source. Two instruments, both switched
 * on only for the measurement window:
 *
 *  - added latency, the figure the target is about: RelayServer.probe. The relay times one message
 *    in 31 from its relay.write() call to the return of the socket write that carries it, for
 *    every client it goes to. relay.write() runs synchronously inside the daemon's handling of that
 *    frame as it comes off the upstream socket (router and recorder in between, a few µs), so this
 *    is "upstream receive → client socket write", on one clock in one process.
 *  - the upstream hop: relay.write is wrapped to read `E` (the source's send time) from one frame
 *    in 7, as the latency phase of bench/consumers.ts does for the recorder.
 */

const LOOP_RESOLUTION_MS = 10;
const E_KEY = keyPattern('E');

export class RelayDaemon {
  daemon: Daemon | null = null;
  private dir = '';
  private logFile = '';
  private names: string[] = [];
  private readonly added = new LatencySampler();
  private readonly upstream = new LatencySampler();
  private rssMax = 0;
  private bufMax = 0;
  private sampler: ReturnType<typeof setInterval> | undefined;
  private loop: IntervalHistogram | null = null;

  async start(spec: RelayDaemonSpec): Promise<{ url: string; streams: string[] }> {
    this.dir = mkdtempSync(join(spec.tmpRoot ?? tmpdir(), 'feedkeeper-bench-relay-'));
    const { file, logFile } = benchConfig(this.dir, spec.sourceUrl, spec.streams, spec.connections);
    this.logFile = logFile;
    const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    data.relay = { enabled: true, host: '127.0.0.1', port: 0, maxClients: 256, ...(spec.clientBufferBytes !== undefined ? { clientBufferBytes: spec.clientBufferBytes } : {}) };
    writeFileSync(file, JSON.stringify(data, null, 2));
    const config = loadConfig({ files: [file], env: {} });
    const logger = createLogger('warn', pino.destination({ dest: logFile, sync: true }));
    const daemon = new Daemon(config, { logger, configFiles: [file] });
    this.daemon = daemon;
    this.names = daemon.plan.connections.flatMap((c) => c.streams);
    await daemon.start();
    const relay = daemon.relay!;
    this.instrument(relay);
    return { url: relay.url, streams: this.names };
  }

  private instrument(relay: RelayServer): void {
    const added = this.added;
    const probe = relay as unknown as { probe?: ((micros: number) => void) | null };
    if ('probe' in probe) probe.probe = (micros) => added.on && added.add(micros);
    const upstream = this.upstream;
    const write = relay.write.bind(relay);
    let turn = 0;
    relay.write = (frame, recvMs, ref) => {
      if (upstream.on && ++turn === LATENCY_EVERY) {
        turn = 0;
        const e = readInt(frame, E_KEY, 0);
        if (e === e) upstream.add(nowMicros() - e);
      }
      return write(frame, recvMs, ref);
    };
  }

  /** Every stream has delivered at least once. */
  ready(): boolean {
    const router = this.daemon?.router;
    return router !== undefined && this.names.every((n) => (router.stream(n)?.received ?? 0) > 0);
  }

  sample(on: boolean): void {
    this.added.on = on;
    this.upstream.on = on;
    clearInterval(this.sampler);
    this.loop?.disable();
    if (!on) return;
    this.rssMax = process.memoryUsage.rss();
    this.bufMax = 0;
    this.sampler = setInterval(() => {
      this.rssMax = Math.max(this.rssMax, process.memoryUsage.rss());
      this.bufMax = Math.max(this.bufMax, this.daemon?.relay?.maxBufferedBytes() ?? 0);
    }, 100);
    this.loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.loop.enable();
  }

  async snapshot(): Promise<DaemonSnapshot> {
    const d = this.daemon!;
    const registry = d.metrics.registry;
    const value = async (name: string): Promise<Array<{ value: number; labels: Partial<Record<string, string | number>> }>> =>
      (await registry.getSingleMetric(name)?.get())?.values ?? [];
    relayMetrics(registry); // the same object the relay counts into
    const sent = (await value('feedkeeper_relay_messages_sent_total'))[0]?.value ?? 0;
    const bytes = (await value('feedkeeper_relay_bytes_sent_total'))[0]?.value ?? 0;
    const dropped: Record<string, number> = {};
    for (const v of await value('feedkeeper_relay_clients_dropped_total')) if (v.value > 0) dropped[String(v.labels.reason)] = v.value;
    const cpu = process.cpuUsage();
    const router = d.router;
    let received = 0;
    for (const n of this.names) received += router.stream(n)?.received ?? 0;
    const loop = this.loop;
    return {
      at: performance.now(),
      cpuMicros: cpu.user + cpu.system,
      rssMaxMb: mb(Math.max(this.rssMax, process.memoryUsage.rss())),
      received,
      recorderDropped: d.recorder.stats.dropped,
      relaySent: sent,
      relayBytes: bytes,
      relayClients: d.relay!.clientCount(),
      clientsDropped: dropped,
      maxBufferedBytes: this.bufMax,
      added: this.added.summary(),
      upstream: this.upstream.summary(),
      loopDelayP99Ms: loop === null ? NaN : Math.max(0, Math.round((loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS) * 100) / 100),
    };
  }

  async stop(): Promise<{ received: number; written: number; dropped: number; gaps: Record<string, number>; warnings: string[] }> {
    this.sample(false);
    const d = this.daemon;
    try {
      if (d === null) return { received: 0, written: 0, dropped: 0, gaps: {}, warnings: [] };
      await d.stop('bench over');
      let received = 0;
      for (const n of this.names) received += d.router.stream(n)?.received ?? 0;
      const gaps: Record<string, number> = {};
      for (const g of await readLedger(d.config.ledger.path).catch(() => [])) if (g.cause !== 'shutdown') gaps[g.cause] = (gaps[g.cause] ?? 0) + 1;
      const s = d.recorder.stats;
      let warnings: string[] = [];
      try {
        warnings = readFileSync(this.logFile, 'utf8').split('\n').filter((l) => l !== '').slice(0, 5).map((l) => l.slice(0, 300));
      } catch {
        warnings = [];
      }
      return { received, written: s.written, dropped: s.dropped, gaps, warnings };
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Child-process entry (bench/run.ts forks dist/bench/relay-phase.js): one daemon per process. */
function main(): void {
  const send = (m: DaemonReply): void => void process.send?.(m);
  const rd = new RelayDaemon();
  process.on('message', (raw) => {
    const m = raw as DaemonRequest;
    const fail = (err: unknown): void => send({ id: m.id, type: 'error', message: err instanceof Error ? err.message : String(err) });
    switch (m.cmd) {
      case 'start':
        rd.start(m.spec).then(({ url, streams }) => send({ id: m.id, type: 'started', url, streams }), fail);
        return;
      case 'ready':
        send({ id: m.id, type: 'ready', ready: rd.ready() });
        return;
      case 'sample':
        rd.sample(m.on);
        send({ id: m.id, type: 'ok' });
        return;
      case 'snapshot':
        rd.snapshot().then((snapshot) => send({ id: m.id, type: 'snapshot', snapshot }), fail);
        return;
      case 'stop':
        rd.stop()
          .then((integrity) => send({ id: m.id, type: 'stopped', integrity }), fail)
          .finally(() => process.disconnect?.());
        return;
    }
  });
  process.on('disconnect', () => setTimeout(() => process.exit(0), 5000).unref());
  setTimeout(() => process.exit(3), 30 * 60_000).unref();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
