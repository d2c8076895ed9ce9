import type { SequenceRule } from '../venues/types.js';
import type { Missed } from './types.js';

/**
 * The sequence IDs one message carries, per the stream's SequenceRule: `first` and `last` are equal
 * except for diff depth (U and u); `prev` is futures depth's `pu`.
 */
export interface SequenceKeys {
  first: number;
  last: number;
  prev: number | null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Reads a message's sequence IDs from its `data` object; null when a field is missing. */
export function sequenceKeys(rule: SequenceRule, data: Readonly<Record<string, unknown>>): SequenceKeys | null {
  if (rule.kind === 'none') return null;
  if (rule.kind === 'range') {
    const first = num(data.U);
    const last = num(data.u);
    if (first === null || last === null) return null;
    const prev = rule.linkedBy === 'pu' ? num(data.pu) : null;
    if (rule.linkedBy === 'pu' && prev === null) return null;
    return { first, last, prev };
  }
  const v = num(data[rule.field]);
  return v === null ? null : { first: v, last: v, prev: null };
}

/**
 * What was missed between the last message received (its `last` key) and the next one. Null for
 * streams whose IDs do not count messages (ordered: bookTicker, partial depth, klines, tickers) or
 * when the last key is unknown. For contiguous streams the result is always an object: count 0
 * (and to = from - 1) means nothing was missed.
 *
 * - contiguous (trade t, aggTrade a): from = last + 1, to = next - 1, count = to - from + 1.
 * - range, spot (next U = previous u + 1): from = last u + 1, to = next U - 1, count null.
 * - range, futures (next pu = previous u): from = last u + 1, to = next pu, count null.
 */
export function missedBetween(rule: SequenceRule, lastKey: number | null, next: SequenceKeys | null): Missed | null {
  if (rule.kind === 'ordered' || rule.kind === 'none' || lastKey === null || next === null) return null;
  const from = lastKey + 1;
  let to: number;
  if (rule.kind === 'contiguous') to = next.first - 1;
  else if (rule.linkedBy === 'pu') to = next.prev ?? next.first - 1;
  else to = next.first - 1;
  if (to < from) return { field: rule.field, from, to: from - 1, count: 0 };
  return { field: rule.field, from, to, count: rule.kind === 'contiguous' ? to - from + 1 : null };
}

/** True when `m` records at least one missed ID. */
export function missedAny(m: Missed | null): boolean {
  return m !== null && m.to >= m.from;
}
