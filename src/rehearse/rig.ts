import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { Daemon } from '../daemon.js';
import { readLedger } from '../ledger/report.js';
import type { GapEntry } from '../ledger/types.js';
import { silentLogger } from '../log.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../simulator/index.js';
import { getVenue } from '../venues/index.js';
import type { Venue } from '../venues/types.js';
import type { RecordedMessage } from './invariant.js';
import { readRecording } from './recording.js';
import { systemClock } from '../clock.js';

/**
 * The rehearsal rig: a loopback exchange (the bundled simulator), a config pointing a daemon at it
 * in a temporary directory, and the daemon itself, either in this process (the Daemon class) or as
 * a child process running the CLI (to kill it). Scenarios drive it; every action is a timeline step.
 */

type Json = { [k: string]: unknown };

export interface RigOptions {
  /** The venue rehearsed (default binance-spot): its simulator dialect and its config. */
  venue?: string;
  symbols: string[];
  streams: string[];
  sim?: SimulatorOptions;
  /** Config keys over the rig's defaults, merged key by key. */
  config?: Json;
  /** Where timeline lines go as they happen. */
  log?: (line: string) => void;
  /** Keep the directory at close (default: removed). */
  keep?: boolean;
  signal?: AbortSignal;
}

export interface ChildDaemon {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it printed (stdout and stderr, capped). */
  output(): string;
}

const OUTPUT_CAP = 256 * 1024;

function merge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const base = a[k];
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && base !== null && typeof base === 'object' && !Array.isArray(base)
        ? merge(base as Json, v as Json)
        : v;
  }
  return out;
}

/** How to run this build's CLI: dist/src/cli/main.js, or src/cli/main.ts through tsx when running from sources. */
export function cliCommand(): { command: string; args: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(fromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  if (!fromSource) return { command: process.execPath, args: [main] };
  let tsx = 'tsx';
  try {
    tsx = import.meta.resolve('tsx');
  } catch {
    // resolved from the working directory then
  }
  return { command: process.execPath, args: ['--import', tsx, main] };
}

export class Rig {
  readonly venue: Venue;
  readonly dir: string;
  readonly configPath: string;
  readonly config: Config;
  /** Every stream the daemon subscribes to. */
  readonly streams: string[];
  daemon: Daemon | null = null;
  /** Epoch ms when the final stop was requested: gaps opened from then on belong to the stop. */
  endAt: number | null = null;
  readonly steps: string[] = [];
  private readonly children = new Set<ChildDaemon>();
  private readonly started = systemClock.now();

  private constructor(
    readonly sim: Simulator,
    private readonly opts: RigOptions,
  ) {
    this.venue = getVenue(opts.venue ?? 'binance-spot')!;
    this.dir = mkdtempSync(join(tmpdir(), 'feedkeeper-rehearse-'));
    this.configPath = join(this.dir, 'config.json');
    const base: Json = {
      venue: this.venue.name,
      endpoints: { stream: sim.wsUrl, rest: sim.httpUrl },
      symbols: opts.symbols,
      streams: opts.streams,
      recorder: { dir: join(this.dir, 'recordings'), flushIntervalMs: 20 },
      ledger: { path: join(this.dir, 'ledger.ndjson'), statePath: join(this.dir, 'state.json') },
      metrics: { enabled: false },
      log: { level: 'warn' },
      maintenance: { statusPollMs: 0, windows: [] },
      connection: { backoff: { initialMs: 100, maxMs: 1000 } },
    };
    writeFileSync(this.configPath, JSON.stringify(merge(base, opts.config ?? {}), null, 2));
    this.config = loadConfig({ files: [this.configPath], env: {} });
    this.streams = opts.symbols.flatMap((s) => opts.streams.map((t) => this.venue.streamName(s, t)));
  }

  static async open(opts: RigOptions): Promise<Rig> {
    const venue = opts.venue ?? 'binance-spot';
    if (getVenue(venue) === undefined) throw new RangeError(`unknown venue ${venue}`);
    const sim = await startSimulator({ venue, ...opts.sim });
    try {
      const rig = new Rig(sim, opts);
      rig.step(`exchange up at ${sim.wsUrl} (${opts.sim?.eventsPerSecond ?? 2} events/s per stream); ${rig.streams.length} streams configured`);
      return rig;
    } catch (err) {
      await sim.close();
      throw err;
    }
  }

  step(text: string): void {
    const line = `[+${((systemClock.now() - this.started) / 1000).toFixed(1)}s] ${text}`;
    this.steps.push(line);
    this.opts.log?.(line);
  }

  // ---- the daemon, in this process

  async startDaemon(): Promise<Daemon> {
    const d = new Daemon(this.config, { logger: silentLogger(), configFiles: [this.configPath] });
    this.daemon = d;
    await d.start();
    this.step(`daemon started in-process: ${d.plan.totalStreams} streams on ${d.plan.connections.length} connection(s)`);
    return d;
  }

  /** The final stop: SIGTERM's path (every stream gets a `shutdown` gap, closed at the next start). */
  async stopDaemon(): Promise<void> {
    if (this.daemon === null) return;
    this.endAt = systemClock.now();
    await this.daemon.stop('rehearsal over');
    this.step('daemon stopped (clean shutdown)');
  }

  // ---- the daemon as a child process (the built CLI)

  spawnDaemon(): ChildDaemon {
    const { command, args } = cliCommand();
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEEDKEEPER_')) env[k] = v;
    const child = spawn(command, [...args, 'run', '--config', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    const take = (c: string): void => {
      if (out.length < OUTPUT_CAP) out += c;
    };
    child.stdout!.setEncoding('utf8').on('data', take);
    child.stderr!.setEncoding('utf8').on('data', take);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const handle: ChildDaemon = { process: child, exited, output: () => out };
    this.children.add(handle);
    void exited.then(() => this.children.delete(handle));
    this.step(`daemon started as a child process (pid ${child.pid}): feedkeeper run --config ${this.configPath}`);
    return handle;
  }

  // ---- waiting and reading

  /** Polls until `cond` holds; throws, naming `what`, after `ms`. */
  async waitFor(what: string, cond: () => boolean | Promise<boolean>, ms: number, every = 50): Promise<void> {
    const end = systemClock.now() + ms;
    for (;;) {
      if (await cond()) return;
      if (systemClock.now() > end) throw new Error(`timed out after ${(ms / 1000).toFixed(1)} s waiting for ${what}`);
      await this.sleep(every);
    }
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const signal = this.opts.signal;
      if (signal?.aborted) return reject(new Error('interrupted'));
      const onAbort = (): void => {
        systemClock.clearTimeout(timer);
        reject(new Error('interrupted'));
      };
      const timer = systemClock.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Has every stream at least `n` recorded messages (read from disk: works for a child daemon too)? */
  async everyStreamRecorded(n = 1, since = 0): Promise<boolean> {
    const counts = new Map<string, number>();
    for (const m of await this.recording()) if (m.recv >= since) counts.set(m.stream, (counts.get(m.stream) ?? 0) + 1);
    return this.streams.every((s) => (counts.get(s) ?? 0) >= n);
  }

  async recording(): Promise<RecordedMessage[]> {
    return (await readRecording(this.config.recorder.dir, this.venue.name)).messages;
  }

  async ledger(): Promise<GapEntry[]> {
    try {
      return await readLedger(this.config.ledger.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Stops whatever still runs, closes the exchange, removes the directory unless kept. */
  async close(): Promise<void> {
    for (const c of this.children) {
      c.process.kill('SIGKILL');
      await c.exited;
    }
    await this.daemon?.stop('rehearsal closed').catch(() => undefined);
    await this.sim.close();
    if (!this.opts.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
