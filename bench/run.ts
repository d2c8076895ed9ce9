import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOLD_READS_ENV, READ_THREADS_ENV } from './bench-config.js';
import type { SourceMode } from './flood-server.js';
import type { ConsumerEvent, SourceCommand, ConsumerRequest, PhaseResult, PhaseSpec, SourceReply, SourceRequest, SourceStats } from './protocol.js';
import { buildReport, formatTable, FULL, QUICK, runSuite, type Driver, type SuiteSettings } from './suite.js';
import { processRelayDriver } from './relay-run.js';
import { buildRelayReport, formatRelayTable, RELAY_FULL, RELAY_QUICK, runRelaySuite, type RelaySettings } from './relay-suite.js';
import { natsServerVersion, type NatsBenchOptions, type NatsBenchResult } from './nats-bench.js';
import type { NatsFloorOptions, NatsFloorResult } from './nats-floor.js';
import { formatNatsTable, NATS_FULL, NATS_QUICK, runNatsSuite, type NatsReport, type NatsSettings } from './nats-suite.js';

/**
 * `npm run bench [-- --quick] [--json FILE] [--cpu-prof DIR] [--latency-rate N] [--latency-connections N]
 *   [--relay-only | --no-relay] [--relay-clients 1,10,50] [--relay-rate N] [--relay-reps N]
 *   [--nats-only | --no-nats] [--nats-pairs N] [--nats-messages N] [--hold-reads-ms N] [--read-threads N]`
 *
 * Forks the flood source (dist/bench/flood-server.js) once, then one child per phase
 * (dist/bench/phase.js) for the baseline and for feedkeeper in turn, so the three never share an
 * event loop and both consumers are measured the same way. Everything on 127.0.0.1; every child
 * exits when this process goes away and after a time limit of its own. Then the relay fan-out
 * (bench/relay-suite.ts): the daemon with its relay and the clients, each in a process of its own.
 * Then the NATS sink (bench/nats-suite.ts): acknowledged publishes into a nats-server of its own,
 * one process per run (dist/bench/nats-bench.js), then the broker floor (dist/bench/nats-floor.js),
 * skipped with a line when nats-server is missing.
 */

const HERE = dirname(fileURLToPath(import.meta.url));

interface Args {
  settings: SuiteSettings;
  json: string | null;
  cpuProf: string | null;
  /** 'both' (default), 'only' (--relay-only), 'none' (--no-relay). */
  relay: 'both' | 'only' | 'none';
  relaySettings: RelaySettings;
  /** 'both' (default), 'only' (--nats-only), 'none' (--no-nats). */
  nats: 'both' | 'only' | 'none';
  natsSettings: NatsSettings;
}

function parseArgs(argv: string[]): Args {
  let settings = FULL;
  let json: string | null = null;
  let cpuProf: string | null = null;
  const overrides: Partial<SuiteSettings> = {};
  let relay: Args['relay'] = 'both';
  const relayOverrides: Partial<RelaySettings> = {};
  let nats: Args['nats'] = 'both';
  const natsOverrides: Partial<NatsSettings> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') settings = QUICK;
    else if (a === '--json') json = argv[++i] ?? null;
    else if (a === '--cpu-prof') cpuProf = argv[++i] ?? null;
    else if (a === '--latency-rate') overrides.latencyRate = positive(a, argv[++i]);
    else if (a === '--latency-connections') overrides.latencyConnections = positive(a, argv[++i]);
    else if (a === '--relay-only') relay = 'only';
    else if (a === '--no-relay') relay = 'none';
    else if (a === '--relay-rate') relayOverrides.rate = positive(a, argv[++i]);
    else if (a === '--relay-reps') relayOverrides.reps = positive(a, argv[++i]);
    else if (a === '--nats-only') nats = 'only';
    else if (a === '--no-nats') nats = 'none';
    else if (a === '--nats-pairs') natsOverrides.pairs = positive(a, argv[++i]);
    else if (a === '--nats-messages') natsOverrides.messages = positive(a, argv[++i]);
    else if (a === '--hold-reads-ms') process.env[HOLD_READS_ENV] = String(nonNegative(a, argv[++i]));
    else if (a === '--read-threads') process.env[READ_THREADS_ENV] = String(nonNegative(a, argv[++i]));
    else if (a === '--relay-clients') relayOverrides.clients = (argv[++i] ?? '').split(',').map((v) => (v === '0' ? 0 : positive(a, v)));
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench -- [--quick] [--json FILE] [--cpu-prof DIR] [--latency-rate N] [--latency-connections N] [--relay-only | --no-relay] [--relay-clients 0,1,10,50] [--relay-rate N] [--relay-reps N] [--nats-only | --no-nats] [--nats-pairs N] [--nats-messages N] [--hold-reads-ms N] [--read-threads N]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  if (argv.includes('--json') && json === null) throw new Error('--json needs a file name');
  if (argv.includes('--cpu-prof') && cpuProf === null) throw new Error('--cpu-prof needs a directory');
  const relayBase = settings.mode === 'quick' ? RELAY_QUICK : RELAY_FULL;
  const natsBase = settings.mode === 'quick' ? NATS_QUICK : NATS_FULL;
  return { settings: { ...settings, ...overrides }, json, cpuProf, relay, relaySettings: { ...relayBase, ...relayOverrides }, nats, natsSettings: { ...natsBase, ...natsOverrides } };
}

function nonNegative(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} needs an integer >= 0, got ${v}`);
  return n;
}

function positive(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, got ${v}`);
  return n;
}

/** The flood source in its own process, driven by request/reply over IPC. */
class SourceProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: SourceReply) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (raw) => {
      const r = raw as SourceReply;
      const w = this.waiting.get(r.id);
      if (w) {
        this.waiting.delete(r.id);
        w(r);
      }
    });
  }

  static start(): Promise<SourceProcess> {
    const child = fork(resolve(HERE, 'flood-server.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error('flood source did not start within 10 s')), 10_000);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`flood source exited (${code})`)));
      child.on('message', function first(raw) {
        const r = raw as SourceReply;
        if (r.type !== 'listening') return;
        clearTimeout(timer);
        child.off('message', first);
        resolveStart(new SourceProcess(child, r.url));
      });
    });
  }

  request(req: SourceCommand): Promise<SourceReply> {
    const id = this.nextId++;
    return new Promise((resolveReq, reject) => {
      const timer = setTimeout(() => reject(new Error(`flood source did not answer ${req.cmd} within 10 s`)), 10_000);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolveReq(r);
      });
      this.child.send({ ...req, id } as SourceRequest);
    });
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.request({ cmd: 'close' }).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** One phase in a child of its own; the child answers with its PhaseResult. */
function runChild(spec: PhaseSpec, window: (edge: 'start' | 'end') => void, cpuProf: string | null): Promise<PhaseResult> {
  const execArgv = cpuProf !== null && spec.role === 'feedkeeper' ? ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', `feedkeeper-${spec.kind}-${spec.connections}c-${spec.streams}s-${Date.now()}.cpuprofile`] : [];
  const child = fork(resolve(HERE, 'phase.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const limitMs = spec.readyTimeoutMs + spec.warmupMs + spec.windowMs + 60_000;
  return new Promise((resolveRun, reject) => {
    let result: PhaseResult | null = null;
    let error: Error | null = null;
    const killer = setTimeout(() => {
      error = new Error(`${spec.role} ${spec.kind} phase took longer than ${limitMs} ms: killed`);
      child.kill('SIGKILL');
    }, limitMs);
    child.on('message', (raw) => {
      const e = raw as ConsumerEvent;
      if (e.type === 'window') window(e.edge);
      else if (e.type === 'result') result = e.result;
      else error = new Error(`${spec.role} ${spec.kind} phase failed: ${e.message}`);
    });
    child.once('error', (err) => (error = err));
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      if (result !== null) resolveRun(result);
      else reject(error ?? new Error(`${spec.role} ${spec.kind} phase exited (${code ?? signal}) without a result`));
    });
    child.send({ cmd: 'run', spec } satisfies ConsumerRequest);
  });
}

/** One NATS run in a process of its own (its own event loop and nats-server), its result read from --json. */
function runNatsChild(opts: NatsBenchOptions, cpuProf: string | null): Promise<NatsBenchResult> {
  return runJsonChild('nats-bench.js', ['--messages', String(opts.messages), '--streams', String(opts.streams), '--inflight', String(opts.inflight), '--publisher', opts.publisher], opts.publisher, cpuProf);
}

/** The broker floor (bench/nats-floor.ts) the same way. */
function runNatsFloorChild(opts: NatsFloorOptions, cpuProf: string | null): Promise<NatsFloorResult> {
  const variant = [...(opts.msgId ? [] : ['--no-msgid']), ...(opts.ack ? [] : ['--no-ack'])];
  return runJsonChild('nats-floor.js', ['--messages', String(opts.messages), '--streams', String(opts.streams), '--inflight', String(opts.inflight), ...variant], 'floor', cpuProf);
}

async function runJsonChild<T>(script: string, scriptArgs: string[], label: string, cpuProf: string | null): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-nats-run-'));
  const out = join(dir, 'result.json');
  const args = [...scriptArgs, '--json', out];
  const execArgv = cpuProf !== null ? ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', `nats-${label}-${Date.now()}.cpuprofile`] : [];
  const child = fork(resolve(HERE, script), args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv });
  try {
    const code = await new Promise<number | null>((resolveExit, reject) => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 300_000);
      child.once('error', reject);
      child.once('exit', (c) => (clearTimeout(killer), resolveExit(c)));
    });
    if (code !== 0) throw new Error(`NATS run (${label}) exited ${code}`);
    return JSON.parse(readFileSync(out, 'utf8')) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const only = args.relay === 'only' || args.nats === 'only';
  if (args.cpuProf !== null) mkdirSync(args.cpuProf, { recursive: true });
  const source = await SourceProcess.start();
  const driver: Driver = {
    url: source.url,
    setMode: async (mode: SourceMode) => void (await source.request({ cmd: 'mode', mode })),
    sourceStats: async () => ((await source.request({ cmd: 'stats' })) as { stats: SourceStats }).stats,
    run: (spec, window) => runChild(spec, window, args.cpuProf),
  };
  const s = args.settings;
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(`feedkeeper bench (${s.mode}): source ${source.url}, Node ${process.version}, load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  const started = performance.now();
  try {
    const report = only ? null : buildReport(await runSuite(s, driver, log));
    const relayReport = args.relay === 'none' || args.nats === 'only' ? null : buildRelayReport(await runRelaySuite(args.relaySettings, processRelayDriver(driver, args.cpuProf), log));
    let natsReport: NatsReport | { skipped: string } | null = null;
    if (args.nats !== 'none' && args.relay !== 'only') {
      if (natsServerVersion() === null) {
        natsReport = { skipped: 'nats-server not installed (apt-get install -y nats-server)' };
        log(`NATS phase skipped: ${natsReport.skipped}`);
      } else {
        natsReport = await runNatsSuite(args.natsSettings, (o) => runNatsChild(o, args.cpuProf), log, (o) => runNatsFloorChild(o, args.cpuProf));
      }
    }
    log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
    if (report !== null) {
      process.stdout.write(`\nfeedkeeper bench, ${report.meta.date}, ${report.meta.mode}; Node ${report.meta.node}, ${report.meta.cpus} x ${report.meta.cpuModel}; ` +
        `load average ${report.meta.loadAverage.start.join(' ')} at start, ${report.meta.loadAverage.end.join(' ')} at end\n\n${formatTable(report)}\n`);
    }
    if (relayReport !== null) {
      process.stdout.write(`\nfeedkeeper relay bench, ${relayReport.meta.date}, ${relayReport.meta.mode}; Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}; ` +
        `load average ${relayReport.meta.loadAverage.start.join(' ')} at start, ${relayReport.meta.loadAverage.end.join(' ')} at end\n\n${formatRelayTable(relayReport)}\n`);
    }
    if (natsReport !== null && 'runs' in natsReport) {
      process.stdout.write(`\nfeedkeeper NATS bench, ${natsReport.meta.date}, ${natsReport.meta.mode}; Node ${natsReport.meta.node}, ${natsReport.meta.cpus} x ${cpus()[0]?.model ?? '?'}\n\n${formatNatsTable(natsReport)}\n`);
    }
    if (args.json !== null) {
      mkdirSync(dirname(resolve(args.json)), { recursive: true });
      writeFileSync(args.json, `${JSON.stringify(report === null ? { relay: relayReport, nats: natsReport } : { ...report, relay: relayReport, nats: natsReport }, null, 2)}\n`);
      log(`JSON written to ${args.json}`);
    }
  } finally {
    await source.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
