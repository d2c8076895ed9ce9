import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { Daemon } from '../../src/daemon.js';
import { readLedger } from '../../src/ledger/report.js';
import type { GapEntry } from '../../src/ledger/types.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js';

type Json = { [k: string]: unknown };

function merge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && typeof a[k] === 'object' ? merge(a[k] as Json, v as Json) : v;
  }
  return out;
}

/** Writes `<dir>/config.json` for a daemon pointed at a loopback simulator; returns its path. */
export function writeTestConfig(dir: string, sim: Simulator, overrides: Json = {}): string {
  mkdirSync(dir, { recursive: true });
  const base: Json = {
    endpoints: { stream: sim.wsUrl, rest: sim.httpUrl, wsApi: `${sim.wsUrl}/ws-api/v3` },
    recorder: { dir: join(dir, 'rec'), flushIntervalMs: 20 },
    ledger: { path: join(dir, 'ledger.ndjson'), statePath: join(dir, 'state.json') },
    metrics: { port: 0 },
    log: { level: 'silent' },
    maintenance: { statusPollMs: 0, windows: [] },
  };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(merge(base, overrides)));
  return file;
}

/** The same config, through the real loader. */
export function testConfig(dir: string, sim: Simulator, overrides: Json = {}, env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig({ files: [writeTestConfig(dir, sim, overrides)], env });
}

export interface Stack {
  sim: Simulator;
  daemon: Daemon;
  config: Config;
  dir: string;
}

/** A temporary directory removed at teardown (after whatever teardown was registered before it). */
export function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Simulator + daemon, both real, on loopback, in a temporary directory; torn down with the test
 * (the daemon is stopped before its directory is removed).
 */
export async function startStack(
  t: { teardown(fn: () => unknown): void },
  opts: {
    sim?: SimulatorOptions;
    config?: Json;
    logger?: Logger;
    startDaemon?: boolean;
    dir?: string;
    env?: NodeJS.ProcessEnv;
    /** Runs after the simulator starts and before the daemon does (install extra routes). */
    beforeDaemon?: (sim: Simulator) => void;
  } = {},
): Promise<Stack> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'feedkeeper-test-'));
  const sim = await startSimulator(opts.sim ?? {});
  opts.beforeDaemon?.(sim);
  const config = testConfig(dir, sim, opts.config ?? {}, opts.env ?? {});
  const daemon = new Daemon(config, { logger: opts.logger ?? silentLogger(), configFiles: [], env: opts.env ?? {} });
  t.teardown(async () => {
    await daemon.stop('test over').catch(() => undefined);
    await sim.close();
    if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
  });
  if (opts.startDaemon !== false) await daemon.start();
  return { sim, daemon, config, dir };
}

/** Every recorded line, in file order, as parsed objects. */
export function readRecording(dir: string): Array<{ recv: number; stream: string; data: Record<string, unknown> }> {
  const out: Array<{ recv: number; stream: string; data: Record<string, unknown> }> = [];
  const walk = (d: string): string[] =>
    readdirSync(d)
      .sort()
      .flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  let files: string[] = [];
  try {
    // Compressed periods too (recorder.compress); a .ndjson beside its .gz is a copy an unlink is about to remove.
    const all = walk(dir);
    const names = new Set(all);
    files = all.filter((f) => f.endsWith('.ndjson.gz') || (f.endsWith('.ndjson') && !names.has(`${f}.gz`)));
  } catch {
    return out;
  }
  for (const f of files) {
    for (const line of (f.endsWith('.gz') ? gunzipSync(readFileSync(f)).toString('utf8') : readFileSync(f, 'utf8')).split('\n')) {
      if (line !== '') out.push(JSON.parse(line) as { recv: number; stream: string; data: Record<string, unknown> });
    }
  }
  return out;
}

export async function ledgerEntries(config: Config): Promise<GapEntry[]> {
  try {
    return await readLedger(config.ledger.path);
  } catch {
    return [];
  }
}

/** Poll until `cond` holds or `ms` pass; returns whether it held. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, every = 25): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, every));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The market goes on while a daemon is down, compressed: once each exchange has seen the daemon's
 * sockets close, its time moves `ms` ahead (Simulator.advance) and every stream makes up those
 * events when the next run subscribes. Instead of sleeping `ms`.
 */
export async function marketGoesOn(sims: Simulator | Iterable<Simulator>, ms: number): Promise<void> {
  const all = 'advance' in sims ? [sims] : [...sims];
  if (!(await until(() => all.every((s) => s.connections().length === 0), 5000))) throw new Error('the exchange still sees the daemon connected');
  for (const s of all) s.advance(ms);
}

/**
 * `p`, or null once `ms` passed first: a ceiling on an awaited event (a worker status, a simulator
 * event), never a sleep.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** IDs of a sequenced stream in the recording (trade t, aggTrade a). */
export function recordedIds(lines: ReturnType<typeof readRecording>, stream: string, field: string): number[] {
  return lines.filter((l) => l.stream === stream).map((l) => l.data[field] as number);
}
