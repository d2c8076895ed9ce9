import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { BENCH_STREAM_TYPES, benchSymbols } from './frames.js';

/** feedkeeper's own default per connection on spot; the RSS phases use it as a deployment would. */
export const SPOT_STREAMS_PER_CONNECTION = 1024;

/**
 * limits.streamsPerConnection that makes feedkeeper's planner use `connections` connections for
 * `streams` streams (a symbol's 4 streams stay together), capped at the spot limit.
 */
export function streamsPerConnection(streams: number, connections: number): number {
  const types = BENCH_STREAM_TYPES.length;
  const symbols = Math.ceil(streams / types);
  return Math.min(SPOT_STREAMS_PER_CONNECTION, Math.ceil(symbols / Math.max(1, connections)) * types);
}

/**
 * `--hold-reads-ms N` (bench/run.ts) reaches the phase processes as this variable: recorder.holdReadsMs
 * of every feedkeeper the bench starts, for an A/B of the read hold (0: drop when full, as before
 * it). Unset: the default.
 */
export const HOLD_READS_ENV = 'FEEDKEEPER_BENCH_HOLD_READS_MS';

/**
 * `--read-threads N` (bench/run.ts) reaches the phase processes as this variable:
 * connection.readThreads of every feedkeeper the bench starts, for an A/B. Unset: the default (0).
 */
export const READ_THREADS_ENV = 'FEEDKEEPER_BENCH_READ_THREADS';

function benchConnection(): { readThreads?: number } {
  const v = process.env[READ_THREADS_ENV];
  return v === undefined || v === '' ? {} : { readThreads: Number(v) };
}

function benchRecorder(): { holdReadsMs?: number } {
  const v = process.env[HOLD_READS_ENV];
  return v === undefined || v === '' ? {} : { holdReadsMs: Number(v) };
}

/**
 * The config both consumers start from, written as a file in `dir` and read through feedkeeper's
 * real loader (as test/helpers/stack.ts does): the source's URL, the bench symbols × trade, aggTrade,
 * depth@100ms, bookTicker, everything on (recorder to `dir`, ledger, checkpoints, metrics on a free
 * loopback port), defaults elsewhere. Logs at warn to a file, so a drop or a gap is visible.
 */
export function benchConfig(dir: string, url: string, streams: number, connections: number): { config: Config; file: string; logFile: string } {
  const file = join(dir, 'config.json');
  const logFile = join(dir, 'feedkeeper.log');
  const data = {
    venue: 'binance-spot',
    endpoints: { stream: url, rest: 'http://127.0.0.1:9' },
    symbols: benchSymbols(streams),
    streams: [...BENCH_STREAM_TYPES],
    limits: { streamsPerConnection: streamsPerConnection(streams, connections) },
    connection: benchConnection(),
    recorder: { enabled: true, dir: join(dir, 'recordings'), ...benchRecorder() },
    ledger: { path: join(dir, 'ledger.ndjson'), statePath: join(dir, 'state.json') },
    metrics: { enabled: true, host: '127.0.0.1', port: 0 },
    log: { level: 'warn' },
    // No REST: no system-status poll; no calendar window that could tag anything as maintenance.
    maintenance: { statusPollMs: 0, windows: [] },
  };
  writeFileSync(file, JSON.stringify(data, null, 2));
  return { config: loadConfig({ files: [file], env: {} }), file, logFile };
}
