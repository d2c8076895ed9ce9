import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SourceMode } from './flood-server.js';
import type { ConsumerEvent, SourceCommand, ConsumerRequest, PhaseResult, PhaseSpec, SourceReply, SourceRequest, SourceStats } from './protocol.js';
import { buildReport, formatTable, FULL, QUICK, runSuite, type Driver, type SuiteSettings } from './suite.js';
import { processRelayDriver } from './relay-run.js';
import { buildRelayReport, formatRelayTable, RELAY_FULL, RELAY_QUICK, runRelaySuite, type RelaySettings } from './relay-suite.js';

/**
 * `npm run bench [-- --quick] [--json FILE] [--cpu-prof DIR] [--latency-rate N] [--latency-connections N]
 *   [--relay-only | --no-relay] [--relay-clients 1,10,50] [--relay-rate N] [--relay-reps N]`
 *
 * Forks the flood source (dist/bench/flood-server.js) once, then one child per phase
 * (dist/bench/phase.js) for the baseline and for feedkeeper in turn, so the three never share an
 * event loop and both consumers are measured the same way. Everything on 127.0.0.1; every child
 * exits when this process goes away and after a time limit of its own. Then the relay fan-out
 * (bench/relay-suite.ts): the daemon with its relay and the clients, each in a process of its own.
 */

const HERE = dirname(fileURLToPath(import.meta.url));

interface Args {
  settings: SuiteSettings;
  json: string | null;
  cpuProf: string | null;
  /** 'both' (default), 'only' (--relay-only), 'none' (--no-relay). */
  relay: 'both' | 'only' | 'none';
  relaySettings: RelaySettings;
}

function parseArgs(argv: string[]): Args {
  let settings = FULL;
  let json: string | null = null;
  let cpuProf: string | null = null;
  const overrides: Partial<SuiteSettings> = {};
  let relay: Args['relay'] = 'both';
  const relayOverrides: Partial<RelaySettings> = {};
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
    else if (a === '--relay-clients') relayOverrides.clients = (argv[++i] ?? '').split(',').map((v) => (v === '0' ? 0 : positive(a, v)));
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench -- [--quick] [--json FILE] [--cpu-prof DIR] [--latency-rate N] [--latency-connections N] [--relay-only | --no-relay] [--relay-clients 0,1,10,50] [--relay-rate N] [--relay-reps N]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a} (see --help)`);
  }
  if (argv.includes('--json') && json === null) throw new Error('--json needs a file name');
  if (argv.includes('--cpu-prof') && cpuProf === null) throw new Error('--cpu-prof needs a directory');
  const relayBase = settings.mode === 'quick' ? RELAY_QUICK : RELAY_FULL;
  return { settings: { ...settings, ...overrides }, json, cpuProf, relay, relaySettings: { ...relayBase, ...relayOverrides } };
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
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
    const report = args.relay === 'only' ? null : buildReport(await runSuite(s, driver, log));
    const relayReport = args.relay === 'none' ? null : buildRelayReport(await runRelaySuite(args.relaySettings, processRelayDriver(driver, args.cpuProf), log));
    log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
    if (report !== null) {
      process.stdout.write(`\nfeedkeeper bench, ${report.meta.date}, ${report.meta.mode}; Node ${report.meta.node}, ${report.meta.cpus} x ${report.meta.cpuModel}; ` +
        `load average ${report.meta.loadAverage.start.join(' ')} at start, ${report.meta.loadAverage.end.join(' ')} at end\n\n${formatTable(report)}\n`);
    }
    if (relayReport !== null) {
      process.stdout.write(`\nfeedkeeper relay bench, ${relayReport.meta.date}, ${relayReport.meta.mode}; Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}; ` +
        `load average ${relayReport.meta.loadAverage.start.join(' ')} at start, ${relayReport.meta.loadAverage.end.join(' ')} at end\n\n${formatRelayTable(relayReport)}\n`);
    }
    if (args.json !== null) {
      mkdirSync(dirname(resolve(args.json)), { recursive: true });
      writeFileSync(args.json, `${JSON.stringify(report === null ? { relay: relayReport } : { ...report, relay: relayReport }, null, 2)}\n`);
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
