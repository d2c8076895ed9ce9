import { parseRecordedLine } from '../recorder/line.js';
import type { Logger } from '../log.js';
import { listRecordings } from '../recorder/files.js';
import { readPeriodLines } from '../recorder/read.js';

/**
 * The IDs of REST lines (`"src":"rest"`) already in the recording for the given streams, in files
 * whose period ends at or after `fromMs` (a REST line is written after its gap closed, so older
 * files cannot hold one). Used at start, so that a range an interrupted run half backfilled is
 * finished without writing an ID twice.
 */
export async function scanRestIds(opts: {
  recorderDir: string;
  venue: string;
  /** Stream → the REST object's ID field. */
  idField: ReadonlyMap<string, string>;
  fromMs: number;
  logger: Logger;
}): Promise<Map<string, Set<number>>> {
  const found = new Map<string, Set<number>>();
  const files = await listRecordings(opts.recorderDir, opts.venue);
  for (let i = 0; i < files.length; i++) {
    const next = files[i + 1];
    if (next !== undefined && next.startMs <= opts.fromMs) continue;
    try {
      await readPeriodLines(files[i]!, 0, (text) => {
        if (!text.includes('"src":"rest"')) return;
        const l = parseRecordedLine(text);
        if (l === null || l.src !== 'rest') return;
        const field = opts.idField.get(l.stream);
        if (field === undefined) return;
        const id = (JSON.parse(l.data) as Record<string, unknown>)[field];
        if (typeof id !== 'number') return;
        let set = found.get(l.stream);
        if (set === undefined) found.set(l.stream, (set = new Set()));
        set.add(id);
      });
    } catch (err) {
      opts.logger.warn({ event: 'backfill_scan_failed', err, file: files[i]!.path }, 'backfill: a recording file could not be scanned for REST lines');
    }
  }
  return found;
}
