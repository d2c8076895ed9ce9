import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/index.js';

type Json = { [k: string]: unknown };

export interface FeedSpec {
  venue: string;
  symbols: string[];
  streams: string[];
  /** The venue's simulator options (venue is filled in). */
  sim?: SimulatorOptions & Record<string, unknown>;
  /** More feed keys (limits, connection, ...). */
  feed?: Json;
}

export interface FeedsStack {
  sims: Map<string, Simulator>;
  daemon: Daemon;
  config: Config;
  dir: string;
  configFile: string;
}

/**
 * Writes a `feeds` config: one simulator per venue on loopback (each venue is its own exchange, as
 * in production), each feed's endpoints pointing at its simulator.
 */
export function writeFeedsConfig(dir: string, specs: readonly FeedSpec[], sims: ReadonlyMap<string, Simulator>, shared: Json = {}): string {
  const feeds = specs.map((s) => ({
    venue: s.venue,
    symbols: s.symbols,
    streams: s.streams,
    endpoints: { stream: sims.get(s.venue)!.wsUrl, rest: sims.get(s.venue)!.httpUrl },
    maintenance: { windows: [] },
    ...s.feed,
  }));
  const config: Json = {
    feeds,
    recorder: { dir: join(dir, 'rec'), flushIntervalMs: 20 },
    ledger: { path: join(dir, 'ledger.ndjson'), statePath: join(dir, 'state.json') },
    metrics: { port: 0 },
    log: { level: 'silent' },
    maintenance: { statusPollMs: 0 },
    ...shared,
  };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export async function startSims(specs: readonly FeedSpec[]): Promise<Map<string, Simulator>> {
  const sims = new Map<string, Simulator>();
  for (const s of specs) sims.set(s.venue, await startSimulator({ ...s.sim, venue: s.venue }));
  return sims;
}

/** Simulators and one daemon running every feed; torn down with the test. */
export async function startFeeds(t: { teardown(fn: () => unknown): void }, specs: readonly FeedSpec[], opts: { shared?: Json; start?: boolean } = {}): Promise<FeedsStack> {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-feeds-'));
  const sims = await startSims(specs);
  const configFile = writeFeedsConfig(dir, specs, sims, opts.shared);
  const config = loadConfig({ files: [configFile], env: {} });
  const daemon = new Daemon(config, { logger: silentLogger(), configFiles: [configFile], env: {} });
  // The daemon stops before its simulators and its directory go.
  t.teardown(async () => {
    await daemon.stop('test over').catch(() => undefined);
    await Promise.all([...sims.values()].map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  if (opts.start !== false) await daemon.start();
  return { sims, daemon, config, dir, configFile };
}
