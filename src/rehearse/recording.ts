import { listRecordings } from '../recorder/files.js';
import { parseRecordedLine } from '../recorder/line.js';
import { readPeriodLines } from '../recorder/read.js';
import type { RecordedMessage } from './invariant.js';

/**
 * Every message of a venue's recording under `recorderDir`, period files in order, compressed
 * (`.ndjson.gz`) or not (src/recorder/read.ts). Safe to call while a daemon writes or compresses, or
 * after it was killed: a line that does not parse (torn by a crash, or still being written) is
 * skipped and counted, and a compression a crash interrupted is never read twice.
 */
export async function readRecording(recorderDir: string, venue: string): Promise<{ messages: RecordedMessage[]; skipped: number }> {
  const messages: RecordedMessage[] = [];
  let skipped = 0;
  for (const f of await listRecordings(recorderDir, venue)) {
    const onLine = (line: string): void => {
      if (line === '') return;
      const l = parseRecordedLine(line);
      let data: unknown;
      try {
        data = l === null ? null : JSON.parse(l.data);
      } catch {
        data = null;
      }
      if (l === null || typeof data !== 'object' || data === null) {
        skipped++;
        return;
      }
      messages.push({ recv: l.recv, stream: l.stream, data: data as Record<string, unknown>, raw: l.data });
    };
    try {
      const { tornBytes } = await readPeriodLines(f, 0, onLine);
      if (tornBytes > 0) skipped++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // gone meanwhile (logrotate): nothing to read
    }
  }
  return { messages, skipped };
}
