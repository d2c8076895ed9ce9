import { loadavg } from 'node:os';
import type { SourceMode } from './flood-server.js';
import type { LatencySummary, SourceStats } from './protocol.js';
import type { ClientsSnapshot, DaemonSnapshot, RelayDaemonSpec } from './relay-protocol.js';
import { median } from './stats.js';

/**
 * The relay fan-out bench (issue 11, item 8; docs/performance.md, "Relay fan-out"): the daemon with
 * its relay on the flood source, paced at `rate` msg/s, and 0, 1, 10, 50 clients all subscribed to
 * every stream the daemon carries, so each client should get `rate` msg/s. Per client count: the
 * rate each client got, the added latency inside the daemon (relay.write() → the client's socket
 * write, RelayServer.probe), the end-to-end latency the clients saw (source send → client read) and
 * the upstream hop (source send → relay.write()), the daemon's RSS and CPU, and whether anything was
 * lost: after the window the source stops and every message the relay counted as sent must have
 * reached a client, with no client closed. 0 clients is the baseline: the same daemon, relay on,
 * nobody connected. Whoever drives it supplies the processes (bench/relay-run.ts).
 */

export interface RelaySettings {
  mode: 'quick' | 'full' | 'smoke';
  clients: number[];
  /** Messages per second the source sends in total (each client subscribes to all of them). */
  rate: number;
  streams: number;
  connections: number;
  reps: number;
  warmupMs: number;
  windowMs: number;
  /** After the window the source stops; the last messages have arrived once nothing moved for this long. */
  settleMs: number;
  readyTimeoutMs: number;
  tmpRoot?: string;
}

export const RELAY_QUICK: RelaySettings = {
  mode: 'quick',
  clients: [0, 1, 10, 50],
  rate: 50_000,
  streams: 64,
  connections: 1,
  reps: 1,
  warmupMs: 1000,
  windowMs: 3000,
  settleMs: 1000,
  readyTimeoutMs: 30_000,
};

export const RELAY_FULL: RelaySettings = { ...RELAY_QUICK, mode: 'full', reps: 3, warmupMs: 1500, windowMs: 6000 };

/** Toy scale for test/bench.test.ts. */
export const RELAY_SMOKE: RelaySettings = { ...RELAY_QUICK, mode: 'smoke', clients: [0, 1, 3], rate: 2000, streams: 8, warmupMs: 100, windowMs: 500, settleMs: 300, readyTimeoutMs: 10_000 };

/** The target of issue 11: 50 clients at 50,000 msg/s each, p99 added latency under 2 ms, no drop. */
export const RELAY_TARGET = { clients: 50, rate: 50_000, p99Ms: 2 } as const;

export interface DaemonHandle {
  readonly url: string;
  /** The streams the daemon carries: every client subscribes to all of them. */
  readonly streams: string[];
  ready(): Promise<boolean>;
  sample(on: boolean): Promise<void>;
  snapshot(): Promise<DaemonSnapshot>;
  stop(): Promise<RelayIntegrity>;
}

export interface ClientsHandle {
  ready(): Promise<boolean>;
  sample(on: boolean): Promise<void>;
  snapshot(): Promise<ClientsSnapshot>;
  close(): Promise<void>;
}

export interface RelayDriver {
  setMode(mode: SourceMode): Promise<void>;
  sourceStats(): Promise<SourceStats>;
  readonly url: string;
  startDaemon(spec: RelayDaemonSpec): Promise<DaemonHandle>;
  /** `clients` clients on `url` (a combined-stream URL of the relay). */
  startClients(url: string, clients: number): Promise<ClientsHandle>;
}

export interface RelayIntegrity {
  received: number;
  written: number;
  dropped: number;
  gaps: Record<string, number>;
  warnings: string[];
}

export interface RelayRun {
  clients: number;
  rep: number;
  rate: number;
  seconds: number;
  /** Messages per second each client received over the window: the slowest, the median, the fastest. */
  perClient: { min: number; median: number; max: number } | null;
  /** What the daemon received from upstream, per second. */
  upstreamRate: number;
  /** Messages per second the relay wrote, all clients together. */
  relayRate: number;
  added: LatencySummary | null;
  upstream: LatencySummary | null;
  endToEnd: LatencySummary | null;
  rssMb: number;
  daemonCpuPct: number;
  clientsCpuPct: number;
  sourceCpuPct: number;
  sourceSkipped: number;
  loopDelayP99Ms: number;
  maxBufferedMb: number;
  /** feedkeeper_relay_clients_dropped_total by reason, and clients that saw their connection end. */
  clientsDropped: Record<string, number>;
  clientsClosed: number;
  /** After the source stopped: messages the relay sent that no client received (0 when nothing is lost). */
  lost: number;
  integrity: RelayIntegrity;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`relay bench: ${what} not within ${ms} ms`);
    await sleep(20);
  }
}

const pct = (cpu0: number, cpu1: number, at0: number, at1: number): number => (at1 > at0 ? Math.round(((cpu1 - cpu0) / 1000 / (at1 - at0)) * 100) : NaN);

export async function runRelayPhase(s: RelaySettings, driver: RelayDriver, clients: number, rep: number): Promise<RelayRun> {
  await driver.setMode({ kind: 'paced', rate: s.rate });
  const daemon = await driver.startDaemon({ sourceUrl: driver.url, streams: s.streams, connections: s.connections, tmpRoot: s.tmpRoot });
  let pool: ClientsHandle | null = null;
  let stopped = false;
  try {
    await until('every stream delivered to the daemon', () => daemon.ready(), s.readyTimeoutMs);
    if (clients > 0) {
      pool = await driver.startClients(`${daemon.url}/stream?streams=${daemon.streams.join('/')}`, clients);
      await until('every client receiving', () => pool!.ready(), s.readyTimeoutMs);
    }
    await sleep(s.warmupMs);
    await Promise.all([daemon.sample(true), pool?.sample(true)]);
    const [d0, c0, s0] = await Promise.all([daemon.snapshot(), pool?.snapshot(), driver.sourceStats()]);
    await sleep(s.windowMs);
    const [d1, c1, s1] = await Promise.all([daemon.snapshot(), pool?.snapshot(), driver.sourceStats()]);
    await Promise.all([daemon.sample(false), pool?.sample(false)]);
    await driver.setMode({ kind: 'idle' });
    // What is in flight arrives: until every message the relay sent was received, or nothing has
    // moved for settleMs (a backlog on a busy machine can take seconds), at most 20 s.
    let [dEnd, cEnd] = await Promise.all([daemon.snapshot(), pool?.snapshot()]);
    const total = (c: ClientsSnapshot | undefined): number => c?.received.reduce((a, b) => a + b, 0) ?? 0;
    for (let still = 0, waited = 0; pool !== null && dEnd.relaySent !== total(cEnd) && still < s.settleMs && waited < 20_000; waited += 100) {
      await sleep(100);
      const before = dEnd.relaySent + total(cEnd);
      [dEnd, cEnd] = await Promise.all([daemon.snapshot(), pool.snapshot()]);
      still = dEnd.relaySent + total(cEnd) === before ? still + 100 : 0;
    }
    const seconds = (d1.at - d0.at) / 1000;
    let perClient: RelayRun['perClient'] = null;
    if (c0 !== undefined && c1 !== undefined) {
      const cs = (c1.at - c0.at) / 1000;
      const rates = c1.received.map((n, i) => Math.round((n - c0.received[i]!) / cs)).sort((a, b) => a - b);
      perClient = { min: rates[0]!, median: Math.round(median(rates)), max: rates[rates.length - 1]! };
    }
    const got = total(cEnd);
    await pool?.close();
    pool = null;
    stopped = true;
    const integrity = await daemon.stop();
    return {
      clients,
      rep,
      rate: s.rate,
      seconds: Math.round(seconds * 1000) / 1000,
      perClient,
      upstreamRate: Math.round((d1.received - d0.received) / seconds),
      relayRate: Math.round((d1.relaySent - d0.relaySent) / seconds),
      added: d1.added,
      upstream: d1.upstream,
      endToEnd: c1?.latency ?? null,
      rssMb: d1.rssMaxMb,
      daemonCpuPct: pct(d0.cpuMicros, d1.cpuMicros, d0.at, d1.at),
      clientsCpuPct: c0 && c1 ? pct(c0.cpuMicros, c1.cpuMicros, c0.at, c1.at) : NaN,
      sourceCpuPct: pct(s0.cpuMicros, s1.cpuMicros, s0.at, s1.at),
      sourceSkipped: s1.skipped - s0.skipped,
      loopDelayP99Ms: d1.loopDelayP99Ms,
      maxBufferedMb: Math.round((d1.maxBufferedBytes / (1024 * 1024)) * 100) / 100,
      clientsDropped: dEnd.clientsDropped,
      clientsClosed: cEnd?.closed.length ?? 0,
      lost: clients > 0 ? dEnd.relaySent - got : 0,
      integrity,
    };
  } finally {
    await pool?.close().catch(() => undefined);
    if (!stopped) await daemon.stop().catch(() => undefined);
    await driver.setMode({ kind: 'idle' });
  }
}

export interface RelaySuiteResults {
  settings: RelaySettings;
  startedAt: Date;
  loadStart: number[];
  loadEnd: number[];
  runs: RelayRun[];
}

export async function runRelaySuite(settings: RelaySettings, driver: RelayDriver, log: (line: string) => void = () => undefined): Promise<RelaySuiteResults> {
  const results: RelaySuiteResults = { settings, startedAt: new Date(), loadStart: loadavg(), loadEnd: [], runs: [] };
  for (let rep = 0; rep < settings.reps; rep++) {
    for (const n of settings.clients) {
      const r = await runRelayPhase(settings, driver, n, rep);
      results.runs.push(r);
      log(`  relay ${String(n).padStart(3)} clients: ${describe(r)}`);
    }
  }
  results.loadEnd = loadavg();
  return results;
}

function describe(r: RelayRun): string {
  const l = (x: LatencySummary | null): string => (x === null ? 'n/a' : `p50 ${x.p50Ms} p99 ${x.p99Ms} max ${x.maxMs}`);
  return (
    (r.perClient === null ? 'no clients' : `per client ${r.perClient.min.toLocaleString('en-US')}..${r.perClient.max.toLocaleString('en-US')} msg/s`) +
    ` (upstream ${r.upstreamRate.toLocaleString('en-US')}, relay out ${r.relayRate.toLocaleString('en-US')}), added ms ${l(r.added)}, end-to-end ms ${l(r.endToEnd)}, upstream hop ms ${l(r.upstream)}` +
    `, RSS ${r.rssMb} MB, CPU daemon ${r.daemonCpuPct}% clients ${r.clientsCpuPct}% source ${r.sourceCpuPct}%, loop p99 ${r.loopDelayP99Ms} ms, buffer max ${r.maxBufferedMb} MB` +
    `, dropped ${JSON.stringify(r.clientsDropped)} closed ${r.clientsClosed} lost ${r.lost} skipped ${r.sourceSkipped}`
  );
}

// ---- the report ---------------------------------------------------------------------------------

export interface RelayRow {
  clients: number;
  reps: number;
  /** Medians over the repetitions; `range` the lowest and highest. */
  perClientMin: number | null;
  perClientMinRange: [number, number] | null;
  addedP50Ms: number;
  addedP99Ms: number;
  addedP99Range: [number, number];
  addedMaxMs: number;
  endToEndP99Ms: number;
  upstreamP99Ms: number;
  rssMb: number;
  daemonCpuPct: number;
  clientsCpuPct: number;
  /** Every repetition: no client dropped or closed, nothing the relay sent lost. */
  noDrop: boolean;
  /** Every repetition: the daemon kept up with the source (the paced source skipped nothing for it). */
  upstreamKeptUp: boolean;
}

export interface RelayReport {
  meta: { date: string; mode: RelaySettings['mode']; rate: number; streams: number; connections: number; loadAverage: { start: number[]; end: number[] }; settings: RelaySettings };
  rows: RelayRow[];
  target: { clients: number; rate: number; p99Ms: number; perClientMin: number | null; addedP99Ms: number | null; noDrop: boolean | null; met: boolean | null };
  runs: RelayRun[];
}

const round = (v: number, d = 3): number => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : NaN);
const range = (v: number[]): [number, number] => {
  const f = v.filter((x) => Number.isFinite(x));
  return f.length === 0 ? [NaN, NaN] : [Math.min(...f), Math.max(...f)];
};

export function buildRelayReport(res: RelaySuiteResults): RelayReport {
  const rows: RelayRow[] = [];
  for (const n of res.settings.clients) {
    const runs = res.runs.filter((r) => r.clients === n);
    if (runs.length === 0) continue;
    const mins = runs.map((r) => r.perClient?.min ?? NaN);
    const p99 = runs.map((r) => r.added?.p99Ms ?? NaN);
    rows.push({
      clients: n,
      reps: runs.length,
      perClientMin: n === 0 ? null : median(mins),
      perClientMinRange: n === 0 ? null : range(mins),
      addedP50Ms: round(median(runs.map((r) => r.added?.p50Ms ?? NaN))),
      addedP99Ms: round(median(p99)),
      addedP99Range: range(p99),
      addedMaxMs: round(median(runs.map((r) => r.added?.maxMs ?? NaN))),
      endToEndP99Ms: round(median(runs.map((r) => r.endToEnd?.p99Ms ?? NaN))),
      upstreamP99Ms: round(median(runs.map((r) => r.upstream?.p99Ms ?? NaN))),
      rssMb: round(median(runs.map((r) => r.rssMb)), 1),
      daemonCpuPct: median(runs.map((r) => r.daemonCpuPct)),
      clientsCpuPct: median(runs.map((r) => r.clientsCpuPct)),
      noDrop: runs.every((r) => Object.keys(r.clientsDropped).length === 0 && r.clientsClosed === 0 && r.lost === 0),
      upstreamKeptUp: runs.every((r) => r.sourceSkipped === 0),
    });
  }
  const t = rows.find((r) => r.clients === RELAY_TARGET.clients);
  const atRate = res.settings.rate === RELAY_TARGET.rate;
  const met =
    t === undefined || !atRate ? null : t.noDrop && (t.perClientMin ?? 0) >= RELAY_TARGET.rate * 0.99 && t.addedP99Ms < RELAY_TARGET.p99Ms;
  return {
    meta: {
      date: res.startedAt.toISOString(),
      mode: res.settings.mode,
      rate: res.settings.rate,
      streams: res.settings.streams,
      connections: res.settings.connections,
      loadAverage: { start: res.loadStart.map((v) => round(v, 2)), end: res.loadEnd.map((v) => round(v, 2)) },
      settings: res.settings,
    },
    rows,
    target: {
      ...RELAY_TARGET,
      perClientMin: t?.perClientMin ?? null,
      addedP99Ms: t?.addedP99Ms ?? null,
      noDrop: t?.noDrop ?? null,
      met,
    },
    runs: res.runs,
  };
}

export function formatRelayTable(rep: RelayReport): string {
  const num = (v: number | null, d = 0): string => (v === null || !Number.isFinite(v) ? 'n/a' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const rng = (r: [number, number] | null, d: number): string => (r === null || !Number.isFinite(r[0]) ? '' : r[0] === r[1] ? '' : ` (${num(r[0], d)}–${num(r[1], d)})`);
  const head = ['clients', 'msg/s per client (slowest)', 'added p50 / p99 / max (ms)', 'end-to-end p99 (ms)', 'upstream hop p99 (ms)', 'RSS (MB)', 'CPU daemon / clients (%)', 'no drop', 'upstream kept up'];
  const rows = rep.rows.map((r) => [
    String(r.clients),
    r.perClientMin === null ? '' : `${num(r.perClientMin)}${rng(r.perClientMinRange, 0)}`,
    r.clients === 0 ? '' : `${num(r.addedP50Ms, 3)} / ${num(r.addedP99Ms, 3)}${rng(r.addedP99Range, 3)} / ${num(r.addedMaxMs, 2)}`,
    r.clients === 0 ? '' : num(r.endToEndP99Ms, 3),
    num(r.upstreamP99Ms, 3),
    num(r.rssMb, 1),
    `${num(r.daemonCpuPct)} / ${r.clients === 0 ? '' : num(r.clientsCpuPct)}`,
    r.clients === 0 ? '' : r.noDrop ? 'yes' : 'NO',
    r.upstreamKeptUp ? 'yes' : 'NO',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ')} |`;
  const out = [
    `relay fan-out: paced ${num(rep.meta.rate)} msg/s on ${rep.meta.streams} streams, ${rep.meta.connections} upstream connection(s); every client on every stream` +
      (rep.rows.some((r) => r.reps > 1) ? `; medians of ${Math.max(...rep.rows.map((r) => r.reps))} runs (range)` : ''),
    line(head),
    `|${w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : `${'-'.repeat(x + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ];
  const t = rep.target;
  out.push(
    `target: ${t.clients} clients at ${num(t.rate)} msg/s each, p99 added < ${t.p99Ms} ms, no drop: ` +
      (t.met === null ? 'not measured at this scale' : `${t.met ? 'met' : 'NOT met'} (slowest client ${num(t.perClientMin)} msg/s, p99 ${num(t.addedP99Ms, 3)} ms, no drop: ${t.noDrop ? 'yes' : 'no'})`),
  );
  return out.join('\n');
}
