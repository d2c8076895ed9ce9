import { cpus, loadavg } from 'node:os';
import type { SourceMode } from './flood-server.js';
import type { PhaseKind, PhaseResult, PhaseSpec, Role, SourceStats } from './protocol.js';
import { measureCompression, type CompressionFigures } from './recorder-compress.js';

/** recorder.compressLevel's default. */
const COMPRESS_LEVEL = 6;
import { median, ratio } from './stats.js';

/**
 * The order of the phases and the report built from them. Whoever drives it supplies the source
 * and a way to run one consumer phase (bench/run.ts: child processes; test/bench.test.ts: all in
 * one process at toy scale), so the report's shape is the same either way.
 */

export interface SuiteSettings {
  mode: 'quick' | 'full' | 'smoke';
  warmupMs: number;
  throughputMs: number;
  latencyMs: number;
  rssMs: number;
  /** Baseline/feedkeeper pairs per throughput figure (the median is reported). */
  reps: number;
  /**
   * Pairs at the first connection count (1), where the 2× target is judged: a single pair on a
   * shared 2-core machine moves by 30 %, mostly with the baseline's share of the machine.
   */
  targetReps: number;
  /** Baseline/feedkeeper pairs for the latency figures (median reported, best and each kept). */
  latencyReps: number;
  throughputStreams: number;
  connections: number[];
  /** MB of recorded lines for the compression figure (0: none). */
  compressMb: number;
  latencyRate: number;
  latencyConnections: number;
  latencyStreams: number;
  rssStreams: number[];
  rssRate: number;
  readyTimeoutMs: number;
  tmpRoot?: string;
}

export const QUICK: SuiteSettings = {
  mode: 'quick',
  warmupMs: 500,
  throughputMs: 2000,
  latencyMs: 3000,
  rssMs: 1000,
  reps: 1,
  targetReps: 3,
  latencyReps: 1,
  throughputStreams: 256,
  connections: [1, 8, 16],
  compressMb: 16,
  latencyRate: 50_000,
  latencyConnections: 8,
  latencyStreams: 256,
  rssStreams: [1000, 5000, 10_000, 15_000],
  rssRate: 20_000,
  readyTimeoutMs: 30_000,
};

/** Toy scale for test/bench.test.ts: every phase runs, in well under a second each. */
export const SMOKE: SuiteSettings = {
  ...QUICK,
  mode: 'smoke',
  warmupMs: 100,
  throughputMs: 500,
  latencyMs: 500,
  rssMs: 300,
  throughputStreams: 8,
  targetReps: 1,
  connections: [1],
  compressMb: 1,
  latencyRate: 2000,
  latencyConnections: 1,
  latencyStreams: 8,
  rssStreams: [8],
  rssRate: 2000,
  readyTimeoutMs: 10_000,
};

export const FULL: SuiteSettings = { ...QUICK, mode: 'full', compressMb: 64, warmupMs: 1500, throughputMs: 6000, latencyMs: 6000, rssMs: 3000, reps: 3, latencyReps: 5 };

export interface Driver {
  setMode(mode: SourceMode): Promise<void>;
  sourceStats(): Promise<SourceStats>;
  /** Runs one phase; `window` is called at the start and the end of its measurement window. */
  run(spec: PhaseSpec, window: (edge: 'start' | 'end') => void): Promise<PhaseResult>;
  readonly url: string;
}

export interface Measured extends PhaseResult {
  source: SourceMode['kind'];
  /** The source's CPU over the window, % of one core: near 100 means the source set the pace. */
  sourceCpuPct: number;
  sourceSkipped: number;
}

export interface SuiteResults {
  settings: SuiteSettings;
  startedAt: Date;
  loadStart: number[];
  loadEnd: number[];
  /** Per connection count: the two consumers and the `ws` floor. */
  throughput: Record<string, Record<Role, Measured[]>>;
  latency: Record<Paired, Measured[]>;
  rss: Record<string, Record<Paired, Measured[]>>;
  /** The largest stream count again, under flood: memory when the feed bursts. */
  rssFlood: Record<Paired, Measured[]>;
  /** recorder.compress at its default level on recorded real frames (null: compressMb 0). */
  compression: CompressionFigures | null;
}

/** The two consumers compared in every phase; the floor runs in the throughput phases only. */
type Paired = 'baseline' | 'feedkeeper';
const ROLES: readonly Paired[] = ['baseline', 'feedkeeper'];

async function measure(driver: Driver, spec: PhaseSpec, mode: SourceMode): Promise<Measured> {
  await driver.setMode(mode);
  const edges: { start?: Promise<SourceStats>; end?: Promise<SourceStats> } = {};
  try {
    const result = await driver.run(spec, (edge) => void (edges[edge] = driver.sourceStats()));
    const s0 = (await edges.start) ?? null;
    const s1 = (await edges.end) ?? null;
    const sourceCpuPct = s0 && s1 && s1.at > s0.at ? Math.round(((s1.cpuMicros - s0.cpuMicros) / 1000 / (s1.at - s0.at)) * 100) : NaN;
    return { ...result, source: mode.kind, sourceCpuPct, sourceSkipped: s0 && s1 ? s1.skipped - s0.skipped : NaN };
  } finally {
    await driver.setMode({ kind: 'idle' });
  }
}

export async function runSuite(settings: SuiteSettings, driver: Driver, log: (line: string) => void = () => undefined): Promise<SuiteResults> {
  const s = settings;
  const results: SuiteResults = {
    settings: s,
    startedAt: new Date(),
    loadStart: loadavg(),
    loadEnd: [],
    throughput: {},
    latency: { baseline: [], feedkeeper: [] },
    rss: {},
    rssFlood: { baseline: [], feedkeeper: [] },
    compression: null,
  };
  const spec = (role: Role, kind: PhaseKind, streams: number, connections: number, windowMs: number): PhaseSpec => ({
    role,
    kind,
    url: driver.url,
    streams,
    connections,
    warmupMs: s.warmupMs,
    windowMs,
    readyTimeoutMs: s.readyTimeoutMs,
    tmpRoot: s.tmpRoot,
  });
  // Pairs back to back, the first of the pair alternating per repetition: drift on a shared machine
  // then falls on both sides equally.
  const order = (rep: number): readonly Paired[] => (rep % 2 === 0 ? ROLES : [...ROLES].reverse());
  const show = (m: Measured, extra = ''): void =>
    log(
      `  ${m.kind.padEnd(10)} ${m.role.padEnd(10)} ${String(m.connections).padStart(2)} conn ${String(m.streams).padStart(5)} streams: ${m.rate.toLocaleString('en-US').padStart(9)} msg/s handled` +
        (m.role === 'feedkeeper' ? ` (${m.receivedRate.toLocaleString('en-US')} received, ${m.dropped.toLocaleString('en-US')} dropped, buffer max ${m.maxBufferedMb} MB${m.integrity !== null && m.integrity.readHolds > 0 ? `, reads held ${m.integrity.readHolds}× for ${m.integrity.readHeldSeconds} s` : ''})` : '') +
        `, ${m.cpuSecPerMillion} CPU s/M, RSS ${m.rssMb} MB, loop delay p99 ${m.loopDelayMs.p99} ms, source CPU ${m.sourceCpuPct}%${extra}`,
    );

  const throughputReps = Math.max(s.reps, s.targetReps);
  for (let rep = 0; rep < throughputReps; rep++) {
    for (const c of s.connections) {
      if (rep >= (c === s.connections[0] ? throughputReps : s.reps)) continue;
      const slot = (results.throughput[String(c)] ??= { baseline: [], feedkeeper: [], floor: [] });
      for (const role of [...order(rep), 'floor' as const]) {
        const m = await measure(driver, spec(role, 'throughput', s.throughputStreams, c, s.throughputMs), { kind: 'flood' });
        slot[role].push(m);
        show(m);
      }
    }
  }
  for (let rep = 0; rep < s.latencyReps; rep++) {
    for (const role of order(rep)) {
      const m = await measure(driver, spec(role, 'latency', s.latencyStreams, s.latencyConnections, s.latencyMs), { kind: 'paced', rate: s.latencyRate });
      results.latency[role].push(m);
      show(m, `, latency p50 ${m.latency?.p50Ms} p99 ${m.latency?.p99Ms} max ${m.latency?.maxMs} ms`);
    }
  }
  for (const n of s.rssStreams) {
    const slot = (results.rss[String(n)] ??= { baseline: [], feedkeeper: [] });
    for (const role of ROLES) {
      const m = await measure(driver, spec(role, 'rss', n, Math.ceil(n / 1024), s.rssMs), { kind: 'paced', rate: s.rssRate });
      slot[role].push(m);
      show(m, `, ready in ${m.readyMs} ms`);
    }
  }
  const most = Math.max(...s.rssStreams);
  for (const role of ROLES) {
    const m = await measure(driver, spec(role, 'rss', most, Math.ceil(most / 1024), s.rssMs), { kind: 'flood' });
    results.rssFlood[role].push(m);
    show(m, ` (flood), ready in ${m.readyMs} ms`);
  }
  if (s.compressMb > 0) {
    const c = await measureCompression(s.compressMb, COMPRESS_LEVEL, s.mode === 'full' ? 3 : 1);
    results.compression = c;
    log(`  compression level ${c.level}, ${c.mb} MB of recorded real frames (${c.bytesPerLine} bytes/line): ratio ${c.ratio}, CPU ${c.cpuMsPerMB} ms/MB = ${c.cpuUsPerMessage} µs/message`);
  }
  results.loadEnd = loadavg();
  return results;
}

// ---- the report ---------------------------------------------------------------------------------

export interface Pair {
  baseline: number;
  feedkeeper: number;
  /** feedkeeper / baseline. */
  ratio: number;
}

export interface BenchReport {
  meta: {
    date: string;
    node: string;
    platform: string;
    cpus: number;
    cpuModel: string;
    loadAverage: { start: number[]; end: number[] };
    mode: SuiteSettings['mode'];
    settings: SuiteSettings;
  };
  /** Sustained messages/s under flood at 1 connection (the headline), and per connection count. */
  throughput: Pair & {
    /** At 1 connection: messages/s feedkeeper's router received (recorded or not) / the baseline's. */
    receivedRatio: number;
    byConnections: Record<
      string,
      Pair & {
        /** fk / baseline of each pair, in run order (`ratio` is their median). */
        ratios: number[];
        /** feedkeeper: messages/s that reached the router (the hot path's pace, recorded or not). */
        feedkeeperReceived: number;
        /** feedkeeperReceived / baseline: the hot path alone against JSON.parse. */
        receivedRatio: number;
        /** feedkeeper: messages the recorder dropped per second of the window (median). */
        feedkeeperDroppedPerSec: number;
        /** Event-loop delay p99 (ms) during the window: the length of the longest loop turns. */
        loopDelayP99Ms: { baseline: number; feedkeeper: number };
        sourceCpuPct: { baseline: number; feedkeeper: number };
        /** `ws` counting messages and nothing else: the ceiling of any `ws` consumer, msg/s. */
        floor: number;
        /** feedkeeper / floor (median of the per-repetition ratios). */
        floorShare: number;
        /** CPU µs per message received (= CPU s per million), each consumer. */
        cpuUsPerMessage: { baseline: number; feedkeeper: number; floor: number };
        /** feedkeeper: bytes of recording per message written (the NDJSON line, or its gzip share). */
        bytesPerMessage: number;
      }
    >;
  };
  /** recorder.compress, measured on recorded real frames (null when not run). */
  compression: CompressionFigures | null;
  /** CPU seconds per million messages: flooded at 1 connection, and paced at latencyRate. */
  cpuSecPerMillion: { flood: Pair; paced: Pair & { rate: number } };
  /** feedkeeper's send-to-recorder-write latency at latencyRate (baseline: send-to-parsed). */
  latencyMs: {
    p50: number;
    p99: number;
    p999: number;
    max: number;
    rate: number;
    connections: number;
    samples: number;
    baseline: { p50: number; p99: number; p999: number; max: number };
    ratio: { p50: number; p99: number; max: number };
    /** The lowest p99 over the repetitions (the quietest moment of a shared machine), both sides. */
    bestP99: { baseline: number; feedkeeper: number };
    /** p99 of each repetition, in run order. */
    p99ByRep: { baseline: number[]; feedkeeper: number[] };
  };
  /** feedkeeper's RSS (max over the window) per subscribed stream count, the baseline's, the ratios. */
  rssMb: Record<string, number> & { baseline: Record<string, number>; ratio: Record<string, number> };
  /** RSS at the largest stream count while flooded (the recorder buffer fills up to recorder.maxBufferBytes). */
  rssUnderFloodMb: Pair & { streams: number; feedkeeperMaxBufferedMb: number };
  /** What the feedkeeper phases recorded: every received message written, none dropped, no gap. */
  integrity: { ok: boolean; received: number; written: number; dropped: number; gaps: Record<string, number>; warnings: string[] };
  targets: {
    throughput: { target: string; ratio: number; met: boolean };
    latencyP99: { targetMs: number; valueMs: number; met: boolean };
    rss: { streams: number; targetMb: number; valueMb: number; met: boolean } | null;
  };
  runs: Measured[];
}

const med = (ms: Measured[], f: (m: Measured) => number | undefined): number => median(ms.map((m) => f(m) ?? NaN));

/** Median over the repetitions, and the median of the per-repetition ratios (pairs). */
function pair(slot: Record<Paired, Measured[]>, f: (m: Measured) => number | undefined): Pair {
  const ratios = slot.baseline.map((b, i) => ratio(f(slot.feedkeeper[i]!) ?? NaN, f(b) ?? NaN));
  return { baseline: med(slot.baseline, f), feedkeeper: med(slot.feedkeeper, f), ratio: Math.round(median(ratios) * 1000) / 1000 };
}

export function buildReport(r: SuiteResults): BenchReport {
  const s = r.settings;
  const byConnections: BenchReport['throughput']['byConnections'] = {};
  for (const [c, slot] of Object.entries(r.throughput)) {
    byConnections[c] = {
      ...pair(slot, (m) => m.rate),
      ratios: slot.baseline.map((b, i) => Math.round(ratio(slot.feedkeeper[i]!.rate, b.rate) * 1000) / 1000),
      feedkeeperReceived: med(slot.feedkeeper, (m) => m.receivedRate),
      receivedRatio: Math.round(median(slot.baseline.map((b, i) => ratio(slot.feedkeeper[i]!.receivedRate, b.rate))) * 1000) / 1000,
      feedkeeperDroppedPerSec: med(slot.feedkeeper, (m) => Math.round(m.dropped / m.seconds)),
      loopDelayP99Ms: { baseline: med(slot.baseline, (m) => m.loopDelayMs.p99), feedkeeper: med(slot.feedkeeper, (m) => m.loopDelayMs.p99) },
      sourceCpuPct: { baseline: med(slot.baseline, (m) => m.sourceCpuPct), feedkeeper: med(slot.feedkeeper, (m) => m.sourceCpuPct) },
      floor: med(slot.floor, (m) => m.rate),
      floorShare: Math.round(median(slot.floor.map((f, i) => ratio(slot.feedkeeper[i]?.rate ?? NaN, f.rate))) * 1000) / 1000,
      cpuUsPerMessage: { baseline: med(slot.baseline, (m) => m.cpuSecPerMillion), feedkeeper: med(slot.feedkeeper, (m) => m.cpuSecPerMillion), floor: med(slot.floor, (m) => m.cpuSecPerMillion) },
      bytesPerMessage: med(slot.feedkeeper, (m) => (m.integrity !== null && m.integrity.written > 0 ? Math.round((m.integrity.recordedBytes / m.integrity.written) * 10) / 10 : NaN)),
    };
  }
  const first = r.throughput[String(s.connections[0])] ?? { baseline: [], feedkeeper: [] };
  const head = pair(first, (m) => m.rate);
  const lat = r.latency;
  const fk = lat.feedkeeper;
  const rssMb = { baseline: {}, ratio: {} } as BenchReport['rssMb'];
  for (const [n, slot] of Object.entries(r.rss)) {
    const p = pair(slot, (m) => m.rssMb);
    rssMb[n] = p.feedkeeper;
    rssMb.baseline[n] = p.baseline;
    rssMb.ratio[n] = p.ratio;
  }
  const most = Math.max(...s.rssStreams);
  const rssUnderFloodMb = { ...pair(r.rssFlood, (m) => m.rssMb), streams: most, feedkeeperMaxBufferedMb: med(r.rssFlood.feedkeeper, (m) => m.maxBufferedMb) };
  const slots: Array<Partial<Record<Role, Measured[]>>> = [...Object.values(r.throughput), r.latency, ...Object.values(r.rss), r.rssFlood];
  const runs = slots.flatMap((slot) => [...(slot.baseline ?? []), ...(slot.feedkeeper ?? []), ...(slot.floor ?? [])]);
  const fkRuns = runs.filter((m) => m.integrity !== null);
  const integrity: BenchReport['integrity'] = { ok: true, received: 0, written: 0, dropped: 0, gaps: {}, warnings: [] };
  for (const m of fkRuns) {
    const i = m.integrity!;
    integrity.received += i.received;
    integrity.written += i.written;
    integrity.dropped += i.dropped;
    for (const [cause, n] of Object.entries(i.gaps)) integrity.gaps[cause] = (integrity.gaps[cause] ?? 0) + n;
    for (const w of i.warnings) if (integrity.warnings.length < 10) integrity.warnings.push(`${m.kind}/${m.connections}c/${m.streams}s: ${w}`);
  }
  integrity.ok = integrity.dropped === 0 && Object.keys(integrity.gaps).length === 0 && integrity.written === integrity.received;

  const p99 = med(fk, (m) => m.latency?.p99Ms);
  const rssTarget = s.rssStreams.includes(15_000) ? 15_000 : null;
  return {
    meta: {
      date: r.startedAt.toISOString(),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadAverage: { start: r.loadStart.map((v) => Math.round(v * 100) / 100), end: r.loadEnd.map((v) => Math.round(v * 100) / 100) },
      mode: s.mode,
      settings: s,
    },
    throughput: { ...head, receivedRatio: byConnections[String(s.connections[0])]?.receivedRatio ?? NaN, byConnections },
    cpuSecPerMillion: {
      flood: pair(first, (m) => m.cpuSecPerMillion),
      paced: { ...pair(lat, (m) => m.cpuSecPerMillion), rate: s.latencyRate },
    },
    latencyMs: {
      p50: med(fk, (m) => m.latency?.p50Ms),
      p99,
      p999: med(fk, (m) => m.latency?.p999Ms),
      max: Math.max(...fk.map((m) => m.latency?.maxMs ?? NaN)),
      rate: med(fk, (m) => m.rate),
      connections: s.latencyConnections,
      samples: fk.reduce((n, m) => n + (m.latency?.samples ?? 0), 0),
      baseline: {
        p50: med(lat.baseline, (m) => m.latency?.p50Ms),
        p99: med(lat.baseline, (m) => m.latency?.p99Ms),
        p999: med(lat.baseline, (m) => m.latency?.p999Ms),
        max: Math.max(...lat.baseline.map((m) => m.latency?.maxMs ?? NaN)),
      },
      ratio: {
        p50: pair(lat, (m) => m.latency?.p50Ms).ratio,
        p99: pair(lat, (m) => m.latency?.p99Ms).ratio,
        max: pair(lat, (m) => m.latency?.maxMs).ratio,
      },
      bestP99: { baseline: Math.min(...lat.baseline.map((m) => m.latency?.p99Ms ?? NaN)), feedkeeper: Math.min(...fk.map((m) => m.latency?.p99Ms ?? NaN)) },
      p99ByRep: { baseline: lat.baseline.map((m) => m.latency?.p99Ms ?? NaN), feedkeeper: fk.map((m) => m.latency?.p99Ms ?? NaN) },
    },
    rssMb,
    rssUnderFloodMb,
    compression: r.compression,
    integrity,
    targets: {
      throughput: { target: 'feedkeeper >= baseline (messages/s, 1 connection)', ratio: head.ratio, met: head.ratio >= 1 },
      latencyP99: { targetMs: 1, valueMs: p99, met: p99 < 1 },
      rss: rssTarget === null ? null : { streams: rssTarget, targetMb: 200, valueMb: rssMb[String(rssTarget)] ?? NaN, met: (rssMb[String(rssTarget)] ?? Infinity) < 200 },
    },
    runs,
  };
}

// ---- the table ----------------------------------------------------------------------------------

const num = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

export function formatTable(rep: BenchReport): string {
  const rows: [string, string, string, string][] = [];
  const add = (label: string, p: Pair, digits = 0): void => void rows.push([label, num(p.baseline, digits), num(p.feedkeeper, digits), num(p.ratio, 2)]);
  for (const [c, p] of Object.entries(rep.throughput.byConnections)) {
    add(`throughput, ${c} connection${c === '1' ? '' : 's'} (msg/s)`, p);
    if (p.ratios.length > 1) rows.push([`  fk / base of each of ${p.ratios.length} pairs (median above)`, '', '', p.ratios.map((v) => num(v, 2)).join(' ')]);
    rows.push([`  feedkeeper: received / dropped per s`, '', `${num(p.feedkeeperReceived)} / ${num(p.feedkeeperDroppedPerSec)}`, num(p.receivedRatio, 2)]);
    rows.push([`  event-loop delay p99 (ms)`, num(p.loopDelayP99Ms.baseline, 1), num(p.loopDelayP99Ms.feedkeeper, 1), '']);
    rows.push([`  CPU µs per message`, num(p.cpuUsPerMessage.baseline, 2), num(p.cpuUsPerMessage.feedkeeper, 2), num(ratio(p.cpuUsPerMessage.feedkeeper, p.cpuUsPerMessage.baseline), 2)]);
    rows.push([`  ws floor (msg/s, CPU µs/msg) / fk share`, `${num(p.floor)}, ${num(p.cpuUsPerMessage.floor, 2)}`, '', num(p.floorShare, 2)]);
    rows.push([`  recording bytes per message`, '', num(p.bytesPerMessage, 1), '']);
  }
  add('CPU s per million msgs, flood 1 conn', rep.cpuSecPerMillion.flood, 2);
  add(`CPU s per million msgs, paced ${num(rep.cpuSecPerMillion.paced.rate)}/s`, rep.cpuSecPerMillion.paced, 2);
  const l = rep.latencyMs;
  const lr = `${num(rep.meta.settings.latencyRate)}/s, ${l.connections} conn`;
  add(`latency p50 (ms) at ${lr}`, { baseline: l.baseline.p50, feedkeeper: l.p50, ratio: l.ratio.p50 }, 3);
  add(`latency p99 (ms) at ${lr}`, { baseline: l.baseline.p99, feedkeeper: l.p99, ratio: l.ratio.p99 }, 3);
  add(`latency max (ms) at ${lr}`, { baseline: l.baseline.max, feedkeeper: l.max, ratio: l.ratio.max }, 3);
  if (l.p99ByRep.feedkeeper.length > 1) {
    add(`  best p99 of ${l.p99ByRep.feedkeeper.length} runs (ms)`, { baseline: l.bestP99.baseline, feedkeeper: l.bestP99.feedkeeper, ratio: ratio(l.bestP99.feedkeeper, l.bestP99.baseline) }, 3);
  }
  for (const n of Object.keys(rep.rssMb.baseline)) {
    add(`RSS (MB), ${num(Number(n))} streams`, { baseline: rep.rssMb.baseline[n]!, feedkeeper: rep.rssMb[n] as number, ratio: rep.rssMb.ratio[n]! }, 1);
  }
  const head: [string, string, string, string] = ['', 'baseline', 'feedkeeper', 'fk / base'];
  const f = rep.rssUnderFloodMb;
  add(`RSS (MB), ${num(f.streams)} streams, flooded`, f, 1);
  const c = rep.compression;
  if (c !== null) rows.push([`compression level ${c.level}: ratio, CPU µs/msg`, '', `${num(c.ratio, 2)}, ${num(c.cpuUsPerMessage, 2)}`, '']);
  const w = [0, 1, 2, 3].map((i) => Math.max(...[head, ...rows].map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r[0]!.padEnd(w[0]!)} | ${r[1]!.padStart(w[1]!)} | ${r[2]!.padStart(w[2]!)} | ${r[3]!.padStart(w[3]!)} |`;
  const out = [line(head), `|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 1)}:|${'-'.repeat(w[2]! + 1)}:|${'-'.repeat(w[3]! + 1)}:|`];
  for (const r of rows) out.push(line(r));
  const t = rep.targets;
  const yes = (b: boolean): string => (b ? 'met' : 'NOT met');
  out.push('');
  out.push(`targets: throughput >= baseline: ${yes(t.throughput.met)} (ratio ${num(t.throughput.ratio, 2)}); ` +
    `p99 < 1 ms: ${yes(t.latencyP99.met)} (${num(t.latencyP99.valueMs, 3)} ms)` +
    (t.rss ? `; RSS < ${t.rss.targetMb} MB at ${num(t.rss.streams)} streams: ${yes(t.rss.met)} (${num(t.rss.valueMb, 1)} MB)` : ''));
  const i = rep.integrity;
  out.push(`integrity (feedkeeper phases): ${i.ok ? 'ok' : 'PROBLEM'}: ${num(i.received)} received, ${num(i.written)} written, ${num(i.dropped)} dropped, gaps ${JSON.stringify(i.gaps)}`);
  for (const wline of i.warnings) out.push(`  ${wline}`);
  const src = Object.entries(rep.throughput.byConnections).map(([c, p]) => `${c} conn ${num(p.sourceCpuPct.baseline)}%/${num(p.sourceCpuPct.feedkeeper)}%`);
  out.push(`source CPU during flood windows (baseline/feedkeeper, % of a core; near 100 = source-bound): ${src.join(', ')}`);
  return out.join('\n');
}
