/**
 * The read side of the recording's line format (the write side is encode.ts, with the StreamRef
 * heads of src/pipeline/stream-ref.ts; docs/recording.md, "Line format"). Every reader of a
 * recording (crash recovery, rehearse, replay, the backfill scan, the NATS audit) splits lines here.
 */

export interface RecordedLine {
  recv: number;
  /** The venue the line was recorded for; null in lines written before venues were recorded. */
  venue: string | null;
  stream: string;
  /** The `data` value's JSON text, as recorded: the exchange's bytes. */
  data: string;
  /** `rest` (a backfilled REST object), `book` (a local book snapshot); absent for stream messages. */
  src?: string;
}

const PREFIX = '{"recv":';
const VENUE = '"venue":"';
const STREAM = '"stream":"';
const DATA = ',"data":';

/**
 * Splits a recorded line `{"recv":<ms>,"venue":"<venue>","stream":"<name>","data":<frame>}` without
 * parsing `data` (the recorder writes the exchange's bytes verbatim; `venue` is absent in lines of
 * older versions). Falls back to JSON.parse for anything else; null when the line is not a recorded
 * message.
 */
export function parseRecordedLine(line: string): RecordedLine | null {
  if (line.startsWith(PREFIX) && line.endsWith('}')) {
    const comma = line.indexOf(',', PREFIX.length);
    let at = comma + 1;
    let venue: string | null = null;
    if (comma !== -1 && line.startsWith(VENUE, at)) {
      const v1 = line.indexOf('"', at + VENUE.length);
      if (v1 !== -1 && line[v1 + 1] === ',') {
        venue = line.slice(at + VENUE.length, v1);
        at = v1 + 2;
      }
    }
    if (comma !== -1 && line.startsWith(STREAM, at)) {
      const s0 = at + STREAM.length;
      const s1 = line.indexOf('"', s0);
      const recv = Number(line.slice(PREFIX.length, comma));
      if (s1 !== -1 && line.startsWith(DATA, s1 + 1) && Number.isFinite(recv) && !line.slice(s0, s1).includes('\\')) {
        return { recv, venue, stream: line.slice(s0, s1), data: line.slice(s1 + 1 + DATA.length, line.length - 1) };
      }
    }
  }
  try {
    const o = JSON.parse(line) as { recv?: unknown; venue?: unknown; stream?: unknown; data?: unknown; src?: unknown };
    if (typeof o.recv !== 'number' || typeof o.stream !== 'string' || o.data === undefined) return null;
    const l: RecordedLine = { recv: o.recv, venue: typeof o.venue === 'string' ? o.venue : null, stream: o.stream, data: JSON.stringify(o.data) };
    if (typeof o.src === 'string') l.src = o.src;
    return l;
  } catch {
    return null;
  }
}
