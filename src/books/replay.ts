import { parseRecordedLine } from '../recorder/line.js';
import { listRecordings } from '../recorder/files.js';
import { readPeriodLines } from '../recorder/read.js';
import { depthEvent, LocalBook, type Level } from './book.js';

/**
 * A book as it stood at `at`, from the recording alone: the last `"src":"book"` snapshot of the
 * stream received at or before `at`, then the stream's diff events after it (u > its lastUpdateId)
 * up to `at`, with the venue's sequence rule. A break in the diffs leaves the book unknown until the
 * next snapshot (`synced: false`).
 */
export interface ReplayedBook {
  stream: string;
  at: number;
  synced: boolean;
  lastUpdateId: number | null;
  /** recv of the snapshot the book was rebuilt from. */
  snapshotAt: number | null;
  bids: Level[];
  asks: Level[];
}

export async function replayBook(opts: { recorderDir: string; venue: string; stream: string; at: number; futures: boolean }): Promise<ReplayedBook> {
  let book: LocalBook | null = null;
  let snapshotAt: number | null = null;
  let first = false;
  const files = await listRecordings(opts.recorderDir, opts.venue);
  for (const f of files) {
    if (f.startMs > opts.at) break;
    await readPeriodLines(f, 0, (text) => {
      if (!text.includes(opts.stream)) return;
      const l = parseRecordedLine(text);
      if (l === null || l.stream !== opts.stream || l.recv > opts.at) return;
      if (l.src === 'book') {
        const s = JSON.parse(l.data) as { lastUpdateId: number; bids: Level[]; asks: Level[] };
        book = new LocalBook(s.lastUpdateId, s.bids, s.asks);
        snapshotAt = l.recv;
        first = true;
        return;
      }
      if (l.src !== undefined || book === null) return;
      const b: LocalBook = book;
      const ev = depthEvent((JSON.parse(l.data) as { data?: unknown }).data ?? JSON.parse(l.data), l.recv);
      if (ev === null || ev.u <= b.lastUpdateId) return;
      const follows = first ? (opts.futures ? ev.U <= b.lastUpdateId : ev.U <= b.lastUpdateId + 1) : opts.futures ? ev.pu === b.lastUpdateId : ev.U === b.lastUpdateId + 1;
      if (!follows) {
        book = null; // unknown until the next snapshot
        return;
      }
      first = false;
      b.apply(ev.b, ev.a);
      b.lastUpdateId = ev.u;
    });
  }
  const b = book as LocalBook | null;
  const levels = b === null ? { bids: [], asks: [] } : b.levels();
  return { stream: opts.stream, at: opts.at, synced: b !== null, lastUpdateId: b?.lastUpdateId ?? null, snapshotAt: b === null ? null : snapshotAt, ...levels };
}
