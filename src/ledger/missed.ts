import { KEY_RESET, type FrameKeys, type SequenceRule, type StreamType, type Venue } from '../venues/types.js';
import type { Missed } from './types.js';

/**
 * The sequence IDs one message carries, per the stream's SequenceRule: `first` and `last` are equal
 * except for ranges (Binance depth U and u, an OKX trade frame covering `count` IDs); `prev` is the
 * link of a `linked` stream (futures depth `pu`, OKX books `prevSeqId`).
 */
export interface SequenceKeys {
  first: number;
  last: number;
  prev: number | null;
  /** The message starts a new epoch (a book snapshot: KEY_RESET). */
  reset?: boolean;
}

/**
 * Reads a payload's sequence keys with the stream's own key reader (the same bytes the router read
 * live); null when a key is missing. `from`: where the reader starts (see FrameKeys.from).
 */
export function readKeys(type: Pick<StreamType, 'keys' | 'sequence'>, payload: Buffer | string, from = 0): SequenceKeys | null {
  if (type.sequence.kind === 'none') return null;
  const buf = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const out: FrameKeys = { from, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
  if (!type.keys(buf, out)) return null;
  if (type.sequence.kind === 'linked' && out.prev !== out.prev) return null;
  return { first: out.first, last: out.last, prev: out.prev === out.prev ? out.prev : null, reset: (out.flags & KEY_RESET) !== 0 };
}

/**
 * The sequence keys of a recorded line's `data` (the exchange's bytes, as recorded). Every scan that
 * reads a recording back (crash recovery, rehearse's invariant, the NATS audit) reads keys here,
 * with the stream type's key reader, the one the router runs on the live frame (StreamType.keys):
 * a key the router tracks is a key recovery finds. A venue that records its whole frame (`wrap`)
 * has its payload found by its frame reader first, as live.
 */
export function recordedKeys(venue: Pick<Venue, 'readStream' | 'recordingShape'>, type: Pick<StreamType, 'keys' | 'sequence'>, data: Buffer | string): SequenceKeys | null {
  if (type.sequence.kind === 'none') return null;
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  if (venue.recordingShape !== 'wrap') return readKeys(type, buf, 0);
  const at: FrameKeys = { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
  return venue.readStream(buf, at) === null ? null : readKeys(type, buf, at.from);
}

/**
 * What was missed between the last message received (its `last` key) and the next one. Null for
 * streams whose IDs do not count messages (ordered: bookTicker, partial depth, klines, tickers) or
 * when the last key is unknown. For contiguous streams the result is always an object: count 0
 * (and to = from - 1) means nothing was missed.
 *
 * - contiguous (trade t, aggTrade a, OKX tradeId): from = last + 1, to = next first - 1, count = to - from + 1.
 * - range (spot depth: next U = previous u + 1): from = last u + 1, to = next U - 1, count null.
 * - linked (next prev = previous last): from = last + 1, to = next prev (the last ID of the last
 *   message missed, exact), count null. OKX seqIds step arbitrarily: `from` is then a lower bound.
 *   A snapshot (reset) after a gap replaces every update before its own ID: to = its last - 1
 *   (the updates whose ID falls in [from, to] are missing from the recording; the snapshot's own
 *   ID is recorded).
 */
export function missedBetween(rule: SequenceRule, lastKey: number | null, next: SequenceKeys | null): Missed | null {
  if (rule.kind === 'ordered' || rule.kind === 'none' || lastKey === null || next === null) return null;
  const from = lastKey + 1;
  let to: number;
  if (next.reset === true) to = next.last - 1;
  else if (rule.kind === 'linked') to = next.prev ?? next.first - 1;
  else to = next.first - 1;
  if (to < from) return { field: rule.field, from, to: from - 1, count: 0 };
  return { field: rule.field, from, to, count: rule.kind === 'contiguous' ? to - from + 1 : null };
}

/** True when `m` records at least one missed ID. */
export function missedAny(m: Missed | null): boolean {
  return m !== null && m.to >= m.from;
}
