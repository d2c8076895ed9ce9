import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createConsumer, type Consumer } from './consumers.js';
import type { ConsumerEvent, ConsumerRequest, PhaseResult, PhaseSpec } from './protocol.js';
import { mb } from './stats.js';

export interface PhaseHooks {
  /** Called at the start and the end of the measurement window (the parent samples the source). */
  window?(edge: 'start' | 'end'): void;
}

const LOOP_RESOLUTION_NS = 10e6;
const ms = (ns: number): number => Math.max(0, Math.round(ns / 1e4) / 100);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One measured phase, in the calling process: start the consumer, wait until every stream has
 * delivered, warm up, then measure over the window: messages handled, CPU (process.cpuUsage, all
 * threads: feedkeeper's file writes on the libuv pool count), RSS sampled every 100 ms, and (when
 * the kind is `latency`) send-to-handled latency. Stops the consumer and removes its directory.
 */
export async function runPhase(spec: PhaseSpec, hooks: PhaseHooks = {}): Promise<PhaseResult> {
  const dir = mkdtempSync(join(spec.tmpRoot ?? tmpdir(), `feedkeeper-bench-${spec.role}-`));
  const consumer: Consumer = createConsumer(spec, dir);
  let stopped = false;
  try {
    const t0 = performance.now();
    await consumer.start();
    const deadline = t0 + spec.readyTimeoutMs;
    while (!consumer.allDelivered()) {
      if (performance.now() > deadline) throw new Error(`${spec.role}: not every stream delivered within ${spec.readyTimeoutMs} ms`);
      await sleep(20);
    }
    const readyMs = performance.now() - t0;
    await sleep(spec.warmupMs);

    let rssMax = 0;
    let rssLast = 0;
    let bufMax = 0;
    const sample = (): void => {
      rssLast = process.memoryUsage.rss();
      if (rssLast > rssMax) rssMax = rssLast;
      const b = consumer.bufferedBytes();
      if (b > bufMax) bufMax = b;
    };
    hooks.window?.('start');
    const c0 = consumer.counters();
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    consumer.latency.on = spec.kind === 'latency';
    sample();
    const sampler = setInterval(sample, 100);
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_NS / 1e6 });
    loop.enable();
    await sleep(spec.windowMs);
    loop.disable();
    clearInterval(sampler);
    consumer.latency.on = false;
    const w1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const c1 = consumer.counters();
    const messages = c1.handled - c0.handled;
    const received = c1.received - c0.received;
    hooks.window?.('end');
    sample();
    const heapUsed = process.memoryUsage().heapUsed;

    const seconds = (w1 - w0) / 1000;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const latency = consumer.latency.summary();
    stopped = true;
    const integrity = await consumer.stop();
    return {
      role: spec.role,
      kind: spec.kind,
      streams: spec.streams,
      connections: consumer.connections,
      readyMs: Math.round(readyMs),
      messages,
      seconds: Math.round(seconds * 1000) / 1000,
      rate: Math.round(messages / seconds),
      receivedRate: Math.round(received / seconds),
      acceptedRate: Math.round((c1.accepted - c0.accepted) / seconds),
      dropped: c1.dropped - c0.dropped,
      maxBufferedMb: mb(bufMax),
      // The histogram holds each timer interval, resolution included: the delay is what exceeds it.
      loopDelayMs: { p50: ms(loop.percentile(50) - LOOP_RESOLUTION_NS), p99: ms(loop.percentile(99) - LOOP_RESOLUTION_NS), max: ms(loop.max - LOOP_RESOLUTION_NS) },
      cpuSeconds: Math.round(cpuSeconds * 1000) / 1000,
      cpuSecPerMillion: received > 0 ? Math.round((cpuSeconds / received) * 1e6 * 1000) / 1000 : NaN,
      latency,
      rssMb: mb(rssMax),
      rssEndMb: mb(rssLast),
      heapUsedMb: mb(heapUsed),
      integrity,
    };
  } finally {
    if (!stopped) await consumer.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Child-process entry (bench/run.ts forks dist/bench/phase.js): one phase per process. */
function main(): void {
  const send = (m: ConsumerEvent): void => void process.send?.(m);
  process.once('message', (raw) => {
    const m = raw as ConsumerRequest;
    runPhase(m.spec, { window: (edge) => send({ type: 'window', edge }) })
      .then((result) => send({ type: 'result', result }))
      .catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }))
      .finally(() => process.disconnect?.());
  });
  process.on('disconnect', () => setTimeout(() => process.exit(0), 5000).unref());
  // Bounded in time whatever happens.
  setTimeout(() => process.exit(3), 10 * 60_000).unref();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
