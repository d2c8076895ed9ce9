import { readFile } from 'node:fs/promises';
import { listRecordings, parseRecordedLine } from '../ledger/recovery.js';
import type { RecordedMessage } from './invariant.js';

/**
 * Every message of a venue's recording under `recorderDir`, hour files in order. Safe to call while
 * a daemon writes or after it was killed: a line that does not parse (torn by a crash, or still
 * being written) is skipped and counted.
 */
export async function readRecording(recorderDir: string, venue: string): Promise<{ messages: RecordedMessage[]; skipped: number }> {
  const messages: RecordedMessage[] = [];
  let skipped = 0;
  for (const f of await listRecordings(recorderDir, venue)) {
    let text: string;
    try {
      text = await readFile(f.path, 'utf8');
    } catch {
      continue; // gone meanwhile (logrotate): nothing to read
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const l = parseRecordedLine(line);
      let data: unknown;
      try {
        data = l === null ? null : JSON.parse(l.data);
      } catch {
        data = null;
      }
      if (l === null || typeof data !== 'object' || data === null) {
        skipped++;
        continue;
      }
      messages.push({ recv: l.recv, stream: l.stream, data: data as Record<string, unknown>, raw: l.data });
    }
  }
  return { messages, skipped };
}
