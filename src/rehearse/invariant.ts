import type { GapEntry } from '../ledger/types.js';
import { getVenue } from '../venues/index.js';
import type { SequenceRule, Venue } from '../venues/types.js';
import { recordedKeys, type SequenceKeys } from '../ledger/missed.js';

/**
 * The gap ledger's promise, checked against the exchange (docs/gap-ledger.md, "Rehearsals"): for
 * each sequenced stream, the IDs in the recording plus the IDs in the ledger's missed ranges are
 * exactly the IDs the exchange sent, from its first event after the daemon subscribed to the last
 * one the daemon recorded (or reported missed): nothing lost without an entry, nothing recorded
 * twice, nothing both recorded and reported missing, no ID in two missed ranges.
 *
 * Checked per event: trade `t` and aggTrade `a` count one ID per event; a diff-depth event covers
 * the update IDs (previous `u`, `u`], so a missed `U/u` range must start and end on event
 * boundaries and is checked as the events it covers. Streams whose IDs jump by design (bookTicker,
 * partial depth, klines, tickers) have no invariant to check.
 */

/** A recorded line: `{"recv":..,"stream":..,"data":{...}}`. */
export interface RecordedMessage {
  recv: number;
  stream: string;
  data: Readonly<Record<string, unknown>>;
  /** The recorded `data` text (the exchange's bytes), read with the venue's key readers; else `data` re-serialised. */
  raw?: string;
}

export interface InvariantInput {
  venue: string | Venue;
  recording: Iterable<RecordedMessage>;
  ledger: readonly GapEntry[];
  /**
   * Per stream, the ID of every event the exchange generated, in order (the simulator's
   * `sentIds()`: trade `t`, aggTrade `a`, depth `u`), skipped ones and ones generated while the
   * daemon was away included. Only these streams are checked; the first ID must be the first event
   * after the daemon first subscribed.
   */
  sent: ReadonlyMap<string, readonly number[]>;
}

export type DiscrepancyKind =
  /** Sent, neither recorded nor in a missed range. */
  | 'lost'
  /** Recorded more than once. */
  | 'recorded_twice'
  /** Recorded and inside a missed range. */
  | 'recorded_and_missed'
  /** Inside two missed ranges. */
  | 'missed_twice'
  /** Recorded or reported missed, but never sent by the exchange. */
  | 'not_sent'
  /** A missed range that does not start and end on event boundaries, or a recorded depth event whose U (pu) does not follow the previous event. */
  | 'misaligned'
  /** The exchange sent events but none was recorded. */
  | 'nothing_recorded';

export interface Discrepancy {
  kind: DiscrepancyKind;
  /** First and last ID concerned (depth: the update IDs of the events concerned). */
  from: number;
  to: number;
  /** Events concerned. */
  events: number;
  /** The ledger entry involved, when one is. */
  gapId?: string;
}

export interface StreamInvariant {
  stream: string;
  /** `t`, `a` or `U/u`. */
  field: string;
  ok: boolean;
  /** The IDs checked: the first event sent to the last recorded or reported missed; null when nothing was. */
  from: number | null;
  to: number | null;
  /** Events the exchange sent in that interval. */
  sent: number;
  /** Of which recorded. */
  recorded: number;
  /** Of which inside a ledger missed range. */
  missed: number;
  /** Ledger entries of the stream with a non-empty missed range. */
  gaps: number;
  discrepancies: Discrepancy[];
}

export interface InvariantResult {
  ok: boolean;
  streams: StreamInvariant[];
}

/** The ID field an invariant can be checked on, or null for streams whose IDs jump by design. */
function keyField(rule: SequenceRule): 'contiguous' | 'range' | null {
  if (rule.kind === 'contiguous') return 'contiguous';
  if (rule.kind === 'range' || rule.kind === 'linked') return 'range';
  return null;
}

export function checkInvariant(input: InvariantInput): InvariantResult {
  const venue = typeof input.venue === 'string' ? getVenue(input.venue) : input.venue;
  if (venue === undefined) throw new RangeError(`checkInvariant: unknown venue ${String(input.venue)}`);
  const recorded = new Map<string, RecordedMessage[]>();
  const gaps = new Map<string, GapEntry[]>();
  for (const name of input.sent.keys()) {
    recorded.set(name, []);
    gaps.set(name, []);
  }
  for (const m of input.recording) recorded.get(m.stream)?.push(m);
  for (const e of input.ledger) gaps.get(e.stream)?.push(e);

  const streams: StreamInvariant[] = [];
  for (const [name, sent] of input.sent) {
    const type = venue.streamType(venue.typeOf(name));
    const kind = type === null ? null : keyField(type.sequence);
    if (type === null || kind === null) continue;
    const keysOf = (l: RecordedMessage): SequenceKeys | null => recordedKeys(venue, type, l.raw ?? JSON.stringify(l.data));
    streams.push(checkStream(name, type.sequence, kind, sent, recorded.get(name)!, gaps.get(name)!, keysOf));
  }
  streams.sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  return { ok: streams.every((s) => s.ok), streams };
}

function checkStream(
  stream: string,
  rule: SequenceRule,
  kind: 'contiguous' | 'range',
  sent: readonly number[],
  lines: readonly RecordedMessage[],
  entries: readonly GapEntry[],
  keysOf: (l: RecordedMessage) => SequenceKeys | null,
): StreamInvariant {
  const field = rule.kind === 'contiguous' || rule.kind === 'range' || rule.kind === 'linked' ? rule.field : '';
  const linked = rule.kind === 'linked';
  // Binance's linked depth IDs count update IDs (an event covers (previous u, u]); other linked IDs
  // (OKX seqId) step arbitrarily: a missed range is every event whose ID falls inside it.
  const arbitrary = linked && field !== 'U/u';
  const n = sent.length;
  const out: StreamInvariant = { stream, field, ok: true, from: null, to: null, sent: 0, recorded: 0, missed: 0, gaps: 0, discrepancies: [] };
  const problem = (d: Discrepancy): void => {
    out.ok = false;
    out.discrepancies.push(d);
  };
  // The update IDs event i covers: depth (previous u, u]; its first U where the exchange started.
  let firstLow = n > 0 ? sent[0]! : 0;
  const low = (i: number): number => (kind === 'contiguous' ? sent[i]! : i === 0 ? firstLow : sent[i - 1]! + 1);

  const rec = new Uint32Array(n);
  const diff = new Int32Array(n + 1);
  let last = -1;

  for (const l of lines) {
    const keys = keysOf(l);
    if (keys === null) {
      problem({ kind: 'not_sent', from: NaN, to: NaN, events: 1 });
      continue;
    }
    // A contiguous frame covers [first, last] (one ID, or OKX's `count` trades); the others are one
    // event, known by its last key.
    for (let id = kind === 'contiguous' ? keys.first : keys.last; id <= keys.last; id++) {
      const i = indexOf(sent, id);
      if (i === -1) {
        problem({ kind: 'not_sent', from: id, to: id, events: 1 });
        continue;
      }
      if (kind === 'range' && !keys.reset) {
        if (i === 0 && !linked) firstLow = keys.first;
        const link = linked ? keys.prev : keys.first;
        const want = linked ? sent[i - 1] : sent[i - 1]! + 1;
        if (i > 0 && link !== want) problem({ kind: 'misaligned', from: keys.first, to: sent[i]!, events: 1 });
      }
      rec[i]!++;
      if (i > last) last = i;
    }
  }

  for (const e of entries) {
    const m = e.missed;
    if (m === null || m.to < m.from) continue;
    out.gaps++;
    if (m.field !== field) {
      problem({ kind: 'misaligned', from: m.from, to: m.to, events: 0, gapId: e.id });
      continue;
    }
    const k = lowerBound(sent, m.to + 1) - 1;
    let j: number;
    if (kind === 'contiguous') {
      j = lowerBound(sent, m.from);
      // Every integer in [from, to] must be an ID the exchange sent.
      const inside = Math.max(0, k - j + 1);
      if (inside !== m.to - m.from + 1) problem({ kind: 'not_sent', from: m.from, to: m.to, events: m.to - m.from + 1 - inside, gapId: e.id });
    } else {
      // Whole events only: from just after an event's u (or at the first event's U), to an event's u.
      const p = lowerBound(sent, m.from - 1);
      const afterEvent = p < n && sent[p] === m.from - 1;
      j = arbitrary ? lowerBound(sent, m.from) : afterEvent ? p + 1 : p;
      if (!arbitrary && (!(afterEvent || (p === 0 && m.from === firstLow)) || k < j || sent[k] !== m.to)) {
        problem({ kind: 'misaligned', from: m.from, to: m.to, events: Math.max(0, k - j + 1), gapId: e.id });
      }
    }
    if (k < j) continue;
    diff[j]!++;
    diff[k + 1]!--;
    if (k > last) last = k;
  }

  if (last === -1) {
    if (n > 0) problem({ kind: 'nothing_recorded', from: sent[0]!, to: sent[n - 1]!, events: n });
    return out;
  }
  out.from = low(0);
  out.to = sent[last]!;
  out.sent = last + 1;

  // Walk the events of the interval; runs of the same fault become one discrepancy.
  let run: { kind: DiscrepancyKind; start: number } | null = null;
  const close = (end: number): void => {
    if (run === null) return;
    problem({ kind: run.kind, from: low(run.start), to: sent[end]!, events: end - run.start + 1 });
    run = null;
  };
  let missed = 0;
  for (let i = 0; i <= last; i++) {
    missed += diff[i]!;
    const r = rec[i]!;
    if (r > 0) out.recorded++;
    if (missed > 0) out.missed++;
    const fault: DiscrepancyKind | null =
      r === 0 && missed === 0 ? 'lost' : r > 1 ? 'recorded_twice' : r > 0 && missed > 0 ? 'recorded_and_missed' : missed > 1 ? 'missed_twice' : null;
    if (run !== null && run.kind !== fault) close(i - 1);
    if (fault !== null && run === null) run = { kind: fault, start: i };
  }
  close(last);
  return out;
}

/** Index of `id` in the increasing array, or -1. */
function indexOf(a: readonly number[], id: number): number {
  const i = lowerBound(a, id);
  return i < a.length && a[i] === id ? i : -1;
}

/** First index whose value is >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const KIND_TEXT: Record<DiscrepancyKind, string> = {
  lost: 'lost without a ledger entry',
  recorded_twice: 'recorded twice',
  recorded_and_missed: 'recorded and reported missed',
  missed_twice: 'in two missed ranges',
  not_sent: 'never sent by the exchange',
  misaligned: 'not on event boundaries',
  nothing_recorded: 'sent, nothing recorded',
};

/** The result for people: one line when it holds, the faults per stream when it does not. */
export function formatInvariant(r: InvariantResult, maxPerStream = 5): string {
  const sum = (k: 'sent' | 'recorded' | 'missed' | 'gaps'): number => r.streams.reduce((n, s) => n + s[k], 0);
  const head =
    `Invariant (recorded + missed = sent, no overlap, no duplicate) over ${r.streams.length} sequenced streams: ` +
    `${sum('sent')} events sent, ${sum('recorded')} recorded, ${sum('missed')} in ${sum('gaps')} missed ranges`;
  const bad = r.streams.filter((s) => !s.ok);
  if (bad.length === 0) return `${head}\n  HOLDS\n`;
  const lines = [head, `  FAILS on ${bad.length} stream(s):`];
  for (const s of bad) {
    lines.push(`  ${s.stream} (${s.field}, ${s.from ?? '-'}..${s.to ?? '-'}):`);
    for (const d of s.discrepancies.slice(0, maxPerStream)) {
      const range = d.from === d.to ? `${d.from}` : `${d.from}..${d.to}`;
      lines.push(`    ${range}: ${d.events} event(s) ${KIND_TEXT[d.kind]}${d.gapId !== undefined ? ` (gap ${d.gapId})` : ''}`);
    }
    if (s.discrepancies.length > maxPerStream) lines.push(`    ... ${s.discrepancies.length - maxPerStream} more`);
  }
  return lines.join('\n') + '\n';
}
