/**
 * Compression ratio and CPU of recorder.compress (docs/performance.md, "Recording compression").
 * `npm run bench` runs measureCompression() at the default level on the real input; for every level
 * and both inputs: `npx tsc -p . && node dist/bench/recorder-compress.js [MB=64] [rounds=3]` (the
 * fixtures are found from this file, not the working directory).
 *
 * Two inputs, written as the recorder writes them (`{"recv":..,"venue":..,` + the frame):
 * - real: the Binance USD-M and spot frames of test/fixtures/binance (recorded by cryptofeed, real
 *   prices, quantities, IDs), cycled with increasing receive times (600 KB per cycle, far more than
 *   deflate's 32 KB window, so the repetition does not help it);
 * - bench: bench/frames.ts's flood frames (one template per stream, only IDs and times change): the
 *   easy case, an upper bound.
 * Each is compressed through the daemon's own Compressor (one file, gzip stream on the threadpool)
 * at levels 1, 6 and 9; CPU is process.cpuUsage() (user + system, all threads) over the compression.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { Compressor } from '../src/recorder/compress.js';
import { recordingPath } from '../src/recorder/files.js';
import { BENCH_STREAM_TYPES, benchSymbols, streamTemplate, writeFrame } from './frames.js';

const VENUE = 'binance-spot';
const T0 = Date.UTC(2021, 9, 12, 10);

/**
 * test/fixtures/binance of the project this file belongs to (bench/ from source, dist/bench/ built),
 * whatever the working directory.
 */
function fixturesDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const d = join(dir, 'test', 'fixtures', 'binance');
    if (existsSync(d)) return d;
  }
  throw new Error('test/fixtures/binance not found above bench/recorder-compress');
}

function realInput(bytes: number): Buffer {
  const frames: string[] = [];
  const fixtures = fixturesDir();
  for (const f of ['usdm-stream.ndjson', 'spot-stream.ndjson']) {
    for (const l of readFileSync(join(fixtures, f), 'utf8').split('\n')) {
      if (l === '') continue;
      const o = JSON.parse(l) as { frame?: string };
      if (typeof o.frame === 'string' && o.frame.startsWith('{"stream"')) frames.push(o.frame);
    }
  }
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const l = `{"recv":${T0 + Math.floor(i / 3)},"venue":"${VENUE}",${frames[i % frames.length]!.slice(1)}\n`;
    parts.push(l);
    size += l.length;
  }
  return Buffer.from(parts.join(''));
}

function benchInput(bytes: number): Buffer {
  const templates = benchSymbols(50).flatMap((s) => BENCH_STREAM_TYPES.map((t) => streamTemplate(`${s.toLowerCase()}@${t}`)!));
  const out = Buffer.allocUnsafe(bytes + 4096);
  let pos = 0;
  for (let i = 0; pos < bytes; i++) {
    const t = templates[i % templates.length]!;
    const recv = `{"recv":${T0 + Math.floor(i / 10)},"venue":"${VENUE}",`;
    pos += out.write(recv, pos);
    const start = pos;
    pos = writeFrame(out, pos - 1, t, (T0 + i / 10) * 1000);
    if (pos < start) throw new Error('writeFrame');
    out[pos++] = 0x0a;
  }
  return out.subarray(0, pos);
}

async function compressOnce(data: Buffer, level: number): Promise<{ ratio: number; cpuMsPerMB: number; wallMsPerMB: number }> {
  const dir = join(tmpdir(), `fk-compress-bench-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const path = recordingPath(dir, VENUE, T0);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
  const c = new Compressor({ dir, venue: VENUE, periodMs: 3_600_000, level, busy: () => false, logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }) });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  c.start();
  await c.idle();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await c.stop();
  const out = statSync(`${path}.gz`).size;
  rmSync(dir, { recursive: true, force: true });
  const mb = data.length / 1e6;
  return { ratio: data.length / out, cpuMsPerMB: (cpu.user + cpu.system) / 1000 / mb, wallMsPerMB: wall / mb };
}

export interface CompressionFigures {
  level: number;
  input: 'real' | 'bench';
  mb: number;
  bytesPerLine: number;
  /** Uncompressed / compressed bytes (median of the rounds). */
  ratio: number;
  cpuMsPerMB: number;
  /** CPU per recorded message (line), µs. */
  cpuUsPerMessage: number;
  wallMsPerMB: number;
}

/** The daemon's Compressor on `mb` MB of recorded lines from the real fixtures (or the bench's frames). */
export async function measureCompression(mb: number, level: number, rounds: number, input: 'real' | 'bench' = 'real'): Promise<CompressionFigures> {
  const data = input === 'real' ? realInput(mb << 20) : benchInput(mb << 20);
  let lines = 0;
  for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, i + 1)) lines++;
  const rs: Array<Awaited<ReturnType<typeof compressOnce>>> = [];
  for (let r = 0; r < rounds; r++) rs.push(await compressOnce(data, level));
  const mid = <K extends 'ratio' | 'cpuMsPerMB' | 'wallMsPerMB'>(k: K): number => rs.map((x) => x[k]).sort((a, b) => a - b)[rs.length >> 1]!;
  const cpuMsPerMB = mid('cpuMsPerMB');
  return {
    level,
    input,
    mb: Math.round(data.length / 1e5) / 10,
    bytesPerLine: Math.round(data.length / lines),
    ratio: Math.round(mid('ratio') * 100) / 100,
    cpuMsPerMB: Math.round(cpuMsPerMB * 10) / 10,
    cpuUsPerMessage: Math.round(((cpuMsPerMB * (data.length / 1e6) * 1000) / lines) * 100) / 100,
    wallMsPerMB: Math.round(mid('wallMsPerMB') * 10) / 10,
  };
}

async function main(): Promise<void> {
  const MB = Number(process.argv[2] ?? 64);
  const ROUNDS = Number(process.argv[3] ?? 3);
  const inputs = { real: realInput(MB << 20), bench: benchInput(MB << 20) };
  for (const [name, data] of Object.entries(inputs)) {
    const lines = data.toString('latin1').split('\n').length - 1;
    console.log(`${name}: ${(data.length / 1e6).toFixed(1)} MB, ${lines} lines, ${(data.length / lines).toFixed(0)} bytes/line`);
    for (const level of [1, 6, 9]) {
      const rs: Array<Awaited<ReturnType<typeof compressOnce>>> = [];
      for (let r = 0; r < ROUNDS; r++) rs.push(await compressOnce(data, level));
      const range = (k: 'ratio' | 'cpuMsPerMB' | 'wallMsPerMB', d: number): string => {
        const v = rs.map((x) => x[k]);
        return `${Math.min(...v).toFixed(d)}-${Math.max(...v).toFixed(d)}`;
      };
      const nsPerLine = rs.map((x) => (x.cpuMsPerMB * (data.length / 1e6) * 1e6) / lines);
      console.log(
        `  level ${level}: ratio ${range('ratio', 2)}, CPU ${range('cpuMsPerMB', 1)} ms/MB (${Math.min(...nsPerLine).toFixed(0)}-${Math.max(...nsPerLine).toFixed(0)} ns/line), wall ${range('wallMsPerMB', 1)} ms/MB`,
      );
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
