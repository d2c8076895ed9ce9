import type { GapLedger } from './ledger.js';
import type { Recovered } from './recovery.js';
import type { GapCause } from './types.js';

/** A gap that began before this run and ends at the stream's first message in this run. */
export interface ResumedGap {
  id: string;
  stream: string;
  cause: GapCause;
  /** The last key the previous run recorded, for missedBetween(); null when unknown. */
  lastKey: number | null;
}

export interface ResumeOptions {
  ledger: Pick<GapLedger, 'previousRunOpen' | 'openGap' | 'closeGap'>;
  /** The feed's venue: only its gaps are resumed (default: the ledger's default venue). */
  venue?: string | null;
  recovered: Recovered;
  /** The streams this run subscribes to. */
  streams: Iterable<string>;
  now: number;
}

/**
 * At start, after ledger.open() and recoverLastSeen(): the gap each subscribed stream has been in
 * since the previous run, to close at its first message (docs/gap-ledger.md, "Across restarts").
 *
 * - A gap the previous run left open (the connection was down, or `shutdown` entries written at a
 *   clean stop) continues: one period without data is one entry.
 * - Otherwise a stream the previous run had seen gets a new gap from its last sign of life:
 *   `shutdown` when it stopped cleanly (and failed to write its entries), else `daemon_down`.
 * - A gap left open on a stream no longer subscribed is closed at the previous run's end.
 */
export function resumeGaps(opts: ResumeOptions): Map<string, ResumedGap> {
  const { ledger, recovered, now } = opts;
  const subscribed = new Set(opts.streams);
  const out = new Map<string, ResumedGap>();
  const lastKey = (stream: string): number | null => recovered.streams.get(stream)?.key ?? null;

  const venue = opts.venue ?? null;
  const mine = ledger.previousRunOpen().filter((e) => venue === null || e.venue === venue);
  for (const e of mine.sort((a, b) => a.start - b.start)) {
    const held = out.get(e.stream);
    if (!subscribed.has(e.stream)) {
      ledger.closeGap(e.id, { end: recovered.stoppedAt ?? e.start, missed: null, detail: 'stream no longer subscribed' });
    } else if (held !== undefined) {
      // Two open gaps for one stream (a previous close was lost): the earlier one covers both.
      ledger.closeGap(e.id, { end: e.start, missed: null, detail: `superseded by ${held.id}` });
    } else {
      out.set(e.stream, { id: e.id, stream: e.stream, cause: e.cause, lastKey: lastKey(e.stream) });
    }
  }

  for (const stream of subscribed) {
    if (out.has(stream)) continue;
    const seen = recovered.streams.get(stream);
    if (seen === undefined) continue;
    const cause: GapCause = recovered.clean ? 'shutdown' : 'daemon_down';
    const start = Math.min(recovered.stoppedAt ?? seen.recv, now);
    const id = ledger.openGap({
      venue,
      stream,
      connection: null,
      start,
      cause,
      detail: recovered.exact ? null : 'last-seen IDs may be inexact (see log)',
    });
    out.set(stream, { id, stream, cause, lastKey: seen.key });
  }
  return out;
}

export interface ReconcileOptions {
  ledger: Pick<GapLedger, 'missedAfter' | 'instant'>;
  /** The feed's venue (default: the ledger's default venue). */
  venue?: string | null;
  /** From recoverLastSeen(); its streams' keys are moved past what the ledger already reports. */
  recovered: Recovered;
  /** When the IDs between were lost: the previous run's end. */
  at: number;
}

/**
 * Before resumeGaps(). The ledger reaches the disk at once, the recording up to a flush later
 * (recorder.flushIntervalMs, at most a checkpoint interval), so after a crash the ledger can report
 * missed IDs past the last one recorded, while messages received before that range, and the one
 * that closed it, were lost with the recorder's buffer. Per stream: the IDs after the last
 * recorded one that no entry reports are recorded now, as instant `daemon_down` entries, and the
 * stream continues after the last ID the ledger reports missed. Without this, the new
 * `daemon_down` gap (from the last recorded ID) would report those ranges a second time.
 * Returns how many entries it wrote.
 */
export function reconcileWithLedger(opts: ReconcileOptions): number {
  let written = 0;
  for (const [stream, seen] of opts.recovered.streams) {
    const after = opts.venue == null ? opts.ledger.missedAfter(stream, seen.key) : opts.ledger.missedAfter(stream, seen.key, opts.venue);
    if (after.length === 0) continue;
    let next = seen.key + 1;
    for (const m of after) {
      if (m.from > next) {
        const to = m.from - 1;
        opts.ledger.instant({
          venue: opts.venue ?? null,
          stream,
          connection: null,
          at: opts.at,
          cause: 'daemon_down',
          detail: 'received by the previous run but not yet recorded when it stopped',
          missed: { field: m.field, from: next, to, count: m.count === null ? null : to - next + 1 },
        });
        written++;
      }
      next = Math.max(next, m.to + 1);
    }
    seen.key = next - 1;
  }
  return written;
}
