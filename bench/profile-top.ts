import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `node dist/bench/profile-top.js FILE.cpuprofile [N]`: the N functions with the most self time in
 * a V8 CPU profile (from `npm run bench -- --cpu-prof DIR`, which profiles the feedkeeper
 * children), with file:line (1-based; compiled dist/ files mapped back to the .ts line through
 * their source maps), and the share of samples spent under each of feedkeeper's hot-path entry
 * points. Idle time is left out of the total.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

const maps = new Map<string, SourceMap | null>();

function sourceMapOf(file: string): SourceMap | null {
  if (!maps.has(file)) {
    let map: SourceMap | null = null;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  return maps.get(file)!;
}

function where(cf: CallFrame): string {
  if (cf.url === '') return `(${cf.functionName || 'native'})`;
  if (!cf.url.startsWith('file://')) return `${cf.url}:${cf.lineNumber + 1}`;
  const file = fileURLToPath(cf.url);
  const entry = sourceMapOf(file)?.findEntry(cf.lineNumber, cf.columnNumber);
  if (entry && 'originalSource' in entry && entry.originalSource) {
    const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(dirname(file), entry.originalSource);
    return `${relative(process.cwd(), src)}:${entry.originalLine + 1}`;
  }
  return `${relative(process.cwd(), file)}:${cf.lineNumber + 1}`;
}

export function summarize(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Self time per node from the sample stream (timeDeltas give each sample's duration).
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    const key = `${cf.functionName || '(anonymous)'}  ${where(cf)}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  // Inclusive time under chosen frames (each sample counted once per frame name on its stack).
  const marks = ['route', 'write', 'onMessage', 'frameStream', 'readInt', 'extract', 'accept', 'JSON.parse', 'observe', 'inc', 'drain', 'writeChunk', 'garbage collector', 'getData', 'processData'];
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const cf = byId.get(n)!.callFrame;
      const name = cf.functionName === '(garbage collector)' ? 'garbage collector' : cf.functionName;
      if (!marks.includes(name)) continue;
      const key = `${name}  ${where(cf)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  // Who calls each function: self time by caller, for natives like indexOfBuffer whose cost
  // belongs to the JavaScript line that called them.
  const callers = new Map<string, Map<string, number>>();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    const key = `${cf.functionName || '(anonymous)'}  ${where(cf)}`;
    const p = parent.get(id);
    if (p === undefined) continue;
    const pcf = byId.get(p)!.callFrame;
    const m = callers.get(key) ?? new Map<string, number>();
    const pk = `${pcf.functionName || '(anonymous)'} ${where(pcf)}`;
    m.set(pk, (m.get(pk) ?? 0) + us);
    callers.set(key, m);
  }
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const out = [`total sampled ${(total / 1e6).toFixed(2)} s`, '', 'self time (called from):'];
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const from = [...(callers.get(k) ?? new Map<string, number>())].sort((a, b) => b[1] - a[1]).slice(0, 2);
    out.push(`  ${pct(us)}  ${k}${from.length > 0 ? `   <- ${from.map(([c, u]) => `${c} (${pct(u).trim()})`).join(', ')}` : ''}`);
  }
  out.push('', 'inclusive (time under the frame):');
  for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`  ${pct(us)}  ${k}`);
  return out.join('\n');
}

function main(): void {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile-top.js FILE.cpuprofile [N]\n');
    process.exitCode = 2;
    return;
  }
  process.stdout.write(`${summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, n === undefined ? 25 : Number(n))}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
