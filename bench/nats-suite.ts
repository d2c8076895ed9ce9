import { cpus, loadavg } from 'node:os';
import type { NatsBenchOptions, NatsBenchResult } from './nats-bench.js';
import { runNatsFloor, type NatsFloorResult, type NatsFloorRunner } from './nats-floor.js';
import type { PublisherKind } from '../src/sinks/nats/publisher.js';
import { median, ratio } from './stats.js';

/**
 * The NATS sink phase of `npm run bench` (issue 12; docs/performance.md, "NATS sink"): acknowledged
 * publishes into a real nats-server (bench/nats-bench.ts, one server and one process per run), the
 * `frames` publisher (the sink's default) and the `client` one (the client's publish(), the sink's
 * publisher before frames) alternated in pairs, ABBA, so that a shared machine's load falls on
 * both alike. Reported: each run, the medians, and the median of the per-pair ratios. Then one run
 * of the broker floor (bench/nats-floor.ts: the frames prebuilt, one raw socket, acked, with
 * Msg-Ids): what nats-server reaches on this machine when the client costs next to nothing, and
 * the frames publisher's figures against it.
 */

export interface NatsSettings {
  mode: 'quick' | 'full' | 'smoke';
  messages: number;
  streams: number;
  inflight: number;
  /** frames/client pairs. */
  pairs: number;
}

export const NATS_QUICK: NatsSettings = { mode: 'quick', messages: 200_000, streams: 100, inflight: 4096, pairs: 2 };
export const NATS_FULL: NatsSettings = { ...NATS_QUICK, mode: 'full', messages: 500_000, pairs: 3 };
/** Toy scale for test/bench.test.ts. */
export const NATS_SMOKE: NatsSettings = { ...NATS_QUICK, mode: 'smoke', messages: 3000, streams: 10, pairs: 1 };

/** Issue 12: at least 100,000 msg/s published with acks on the project's machine. */
export const NATS_TARGET = 100_000;

export type NatsRunner = (opts: NatsBenchOptions) => Promise<NatsBenchResult>;

export interface NatsFigures {
  messagesPerSecond: number;
  clientCpuMicros: number;
  serverCpuMicros: number;
}

export interface NatsReport {
  meta: { date: string; mode: NatsSettings['mode']; server: string; node: string; cpus: number; loadAverage: { start: number[]; end: number[] } };
  settings: NatsSettings;
  runs: Array<NatsBenchResult & { pair: number }>;
  /** Medians per publisher. */
  frames: NatsFigures;
  client: NatsFigures;
  /** frames / client: the median of the per-pair ratios. */
  ratio: NatsFigures;
  /** met: null at toy scale (not judged). */
  target: { messagesPerSecond: number; met: boolean | null };
  /** The broker floor's run (after the pairs), and `framesRatio`: the frames medians / the floor's figures. */
  floor: NatsFloorResult & { framesRatio: NatsFigures };
}

const load = (): number[] => loadavg().map((v) => Math.round(v * 100) / 100);

/** `floor`: the broker floor's runner (default in this process; bench/run.ts runs it in a child). */
export async function runNatsSuite(settings: NatsSettings, run: NatsRunner, log: (line: string) => void = () => undefined, floor: NatsFloorRunner = runNatsFloor): Promise<NatsReport> {
  const start = load();
  const runs: NatsReport['runs'] = [];
  for (let pair = 0; pair < settings.pairs; pair++) {
    const order: PublisherKind[] = pair % 2 === 0 ? ['frames', 'client'] : ['client', 'frames'];
    for (const publisher of order) {
      const r = await run({ messages: settings.messages, streams: settings.streams, inflight: settings.inflight, publisher });
      if (r.publisher !== publisher) throw new Error(`asked for the ${publisher} publisher, the sink used ${r.publisher}`);
      log(`nats ${publisher} (pair ${pair + 1}/${settings.pairs}): ${r.messagesPerSecond.toLocaleString('en')} msg/s acked, ${r.clientCpuMicros} µs/msg client, ${r.serverCpuMicros} µs/msg nats-server, load ${r.loadAverage.join(' ')}`);
      runs.push({ ...r, pair });
    }
  }
  const f = await floor({ messages: settings.messages, streams: settings.streams, inflight: settings.inflight, msgId: true, ack: true });
  log(`nats broker floor (raw socket): ${f.messagesPerSecond.toLocaleString('en')} msg/s acked, ${f.clientCpuMicros} µs/msg client, ${f.serverCpuMicros} µs/msg nats-server, ${f.errors} errors, load ${f.loadAverage.join(' ')}`);
  const of = (p: PublisherKind): NatsReport['runs'] => runs.filter((r) => r.publisher === p);
  const figures = (rs: NatsReport['runs']): NatsFigures => ({
    messagesPerSecond: Math.round(median(rs.map((r) => r.messagesPerSecond))),
    clientCpuMicros: median(rs.map((r) => r.clientCpuMicros)),
    serverCpuMicros: median(rs.map((r) => r.serverCpuMicros)),
  });
  const pairRatio = (f: (r: NatsBenchResult) => number): number => {
    const each: number[] = [];
    for (let pair = 0; pair < settings.pairs; pair++) {
      const a = runs.find((r) => r.pair === pair && r.publisher === 'frames');
      const b = runs.find((r) => r.pair === pair && r.publisher === 'client');
      if (a !== undefined && b !== undefined) each.push(ratio(f(a), f(b)));
    }
    return median(each);
  };
  const frames = figures(of('frames'));
  return {
    meta: { date: new Date().toISOString(), mode: settings.mode, server: runs[0]?.server ?? '', node: process.version, cpus: cpus().length, loadAverage: { start, end: load() } },
    settings,
    runs,
    frames,
    client: figures(of('client')),
    ratio: { messagesPerSecond: pairRatio((r) => r.messagesPerSecond), clientCpuMicros: pairRatio((r) => r.clientCpuMicros), serverCpuMicros: pairRatio((r) => r.serverCpuMicros) },
    target: { messagesPerSecond: NATS_TARGET, met: settings.mode === 'smoke' ? null : frames.messagesPerSecond >= NATS_TARGET },
    floor: {
      ...f,
      framesRatio: { messagesPerSecond: ratio(frames.messagesPerSecond, f.messagesPerSecond), clientCpuMicros: ratio(frames.clientCpuMicros, f.clientCpuMicros), serverCpuMicros: ratio(frames.serverCpuMicros, f.serverCpuMicros) },
    },
  };
}

export function formatNatsTable(rep: NatsReport): string {
  // CPU figures to 2 places (ratios to `digits`), with a space between the columns however wide.
  const cell = (v: number, digits: number): string => ` ${Number.isFinite(v) ? v.toFixed(Math.max(digits, 2)) : 'n/a'}`;
  const row = (name: string, f: NatsFigures, digits = 0): string =>
    `${name.padEnd(26)}${(digits === 0 ? f.messagesPerSecond.toLocaleString('en') : f.messagesPerSecond.toFixed(digits)).padStart(12)}${cell(f.clientCpuMicros, digits).padStart(14)}${cell(f.serverCpuMicros, digits).padStart(16)}`;
  return [
    `NATS sink: ${rep.settings.messages.toLocaleString('en')} acknowledged publishes a run over ${rep.settings.streams} streams into ${rep.meta.server} (JetStream, file storage), ${rep.settings.pairs} frames/client pair(s) alternated, then one broker floor run (bench/nats-floor.ts)`,
    `${''.padEnd(26)}${'msg/s acked'.padStart(12)}${'client µs/msg'.padStart(14)}${'server µs/msg'.padStart(16)}`,
    row('frames (default)', rep.frames),
    row('client publish()', rep.client),
    row('ratio frames/client', rep.ratio, 3),
    row('broker floor (raw socket)', rep.floor),
    row('ratio frames/floor', rep.floor.framesRatio, 3),
    `target ${rep.target.messagesPerSecond.toLocaleString('en')} msg/s: ${rep.target.met === null ? 'not judged' : rep.target.met ? 'met' : 'not met'} (load average ${rep.meta.loadAverage.start.join(' ')} at start, ${rep.meta.loadAverage.end.join(' ')} at end)`,
  ].join('\n');
}
