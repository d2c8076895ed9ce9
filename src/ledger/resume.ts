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

  for (const e of ledger.previousRunOpen().sort((a, b) => a.start - b.start)) {
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
