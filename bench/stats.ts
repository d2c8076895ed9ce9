import type { LatencySummary } from './protocol.js';

/**
 * Latencies in µs, kept in an array allocated once, at the first sample (no allocation per sample,
 * and nothing in the RSS of a phase that takes none); past `capacity` samples, later ones are not
 * kept. Summarized in ms.
 */
export class LatencySampler {
  on = false;
  private values: Float64Array | null = null;
  private n = 0;

  constructor(private readonly capacity = 1_000_000) {}

  add(micros: number): void {
    const v = (this.values ??= new Float64Array(this.capacity));
    if (this.n < v.length) v[this.n++] = micros;
  }

  get count(): number {
    return this.n;
  }

  summary(): LatencySummary | null {
    if (this.n === 0 || this.values === null) return null;
    const s = this.values.subarray(0, this.n).sort();
    const ms = (v: number): number => Math.round(v) / 1000;
    return {
      samples: this.n,
      minMs: ms(s[0]!),
      p50Ms: ms(quantile(s, 0.5)),
      p99Ms: ms(quantile(s, 0.99)),
      p999Ms: ms(quantile(s, 0.999)),
      maxMs: ms(s[s.length - 1]!),
    };
  }
}

/** Nearest-rank quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** a / b rounded to 3 decimals (NaN when either is missing). */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return Math.round((a / b) * 1000) / 1000;
}

export const mb = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;
