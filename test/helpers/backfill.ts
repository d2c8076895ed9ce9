import type { Test } from 'tap';
import type { BinanceSimulator } from '../../src/simulator/index.js';
import { readRecording } from './stack.js';

// Checks of a recording against the simulator's truth, for the backfill tests.

/** The ID of a recorded line: WebSocket `t`/`a`, REST historicalTrades `id`, aggTrades `a`. */
function idOf(line: { stream: string; data: Record<string, unknown>; src?: string }): number {
  const d = line.data;
  if (line.src === 'rest') return (d.id ?? d.a) as number;
  const inner = (d.data ?? d) as Record<string, unknown>;
  return (inner.t ?? inner.a) as number;
}

/** Per stream: the IDs recorded, in file order, and how many came from REST. */
export function recordedIds(dir: string): Map<string, { ids: number[]; rest: number }> {
  const out = new Map<string, { ids: number[]; rest: number }>();
  for (const l of readRecording(dir) as Array<{ stream: string; data: Record<string, unknown>; src?: string }>) {
    let e = out.get(l.stream);
    if (e === undefined) out.set(l.stream, (e = { ids: [], rest: 0 }));
    e.ids.push(idOf(l));
    if (l.src === 'rest') e.rest++;
  }
  return out;
}

/** Every ID the exchange generated from the first recorded to the last, recorded exactly once. */
export function checkExactlyOnce(t: Test, sim: BinanceSimulator, dir: string, names: string[]): number {
  const rec = recordedIds(dir);
  let restTotal = 0;
  for (const name of names) {
    const r = rec.get(name);
    if (!t.ok(r !== undefined && r.ids.length > 0, `${name}: recorded`)) continue;
    const sorted = [...r!.ids].sort((a, b) => a - b);
    const first = sorted[0]!;
    const last = sorted[sorted.length - 1]!;
    const truth = sim.sentIds(name).filter((id) => id >= first && id <= last);
    const dupes = sorted.filter((id, i) => i > 0 && sorted[i - 1] === id);
    t.same(dupes, [], `${name}: no ID recorded twice`);
    t.equal(sorted.length, truth.length, `${name}: ${truth.length} IDs generated between the first and the last recorded, ${sorted.length} recorded (${r!.rest} from REST)`);
    t.same(sorted, truth, `${name}: the recorded IDs are the exchange's`);
    restTotal += r!.rest;
  }
  return restTotal;
}
