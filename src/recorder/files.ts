import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/**
 * The layout of a recording, in one place (docs/recording.md, "Files"): where a message's line goes,
 * what the files of a period are called (`.ndjson` while written, `.ndjson.gz` once compressed,
 * `.ndjson.gz.tmp` while compressing), and how a venue's files are listed in time order. The
 * recorder, the compressor (compress.ts), crash recovery and every reader (read.ts) use these.
 */

/** Start of the file period (`recorder.rotateEveryMs`, which divides a day) holding `ms`. */
export function periodStart(ms: number, periodMs: number = HOUR_MS): number {
  return ms - (ms % periodMs);
}

/**
 * What is wrong with a `recorder.rotateEveryMs` value, or null: whole seconds, from 1 s to 24 h,
 * dividing a day, so that periods line up with UTC days (and hours, when they divide an hour) and
 * every file starts on a whole second.
 */
export function periodProblem(periodMs: number): string | null {
  if (!Number.isSafeInteger(periodMs) || periodMs < 1000 || periodMs > DAY_MS || periodMs % 1000 !== 0 || DAY_MS % periodMs !== 0) {
    return `must be a whole number of seconds from 1000 to 86400000 (24 h) that divides a day (1000, 60000, 600000, 3600000, ...), got ${String(periodMs)}`;
  }
  return null;
}

/**
 * The time part of a file name: `HH` for a period starting on the hour (the hourly default: the names
 * of earlier versions), `HHMM` on a minute, `HHMMSS` otherwise. Trailing zero groups are dropped, and
 * `.` sorts before the digits, so names still sort by time whatever the period was.
 */
function stampOf(iso: string): string {
  const hh = iso.slice(11, 13);
  const mm = iso.slice(14, 16);
  const ss = iso.slice(17, 19);
  if (ss !== '00') return hh + mm + ss;
  if (mm !== '00') return hh + mm;
  return hh;
}

/**
 * The file a message received at `recvMs` goes to: one per period (default: one per UTC hour),
 * `<dir>/<venue>/<YYYY-MM-DD>/<venue>-<YYYY-MM-DD>T<HH[MM[SS]]>.ndjson`. Paths of one venue sort by time.
 */
export function recordingPath(dir: string, venue: string, recvMs: number, periodMs: number = HOUR_MS): string {
  const iso = new Date(periodStart(recvMs, periodMs)).toISOString(); // 2021-10-12T00:00:00.000Z
  const day = iso.slice(0, 10);
  return join(dir, venue, day, `${venue}-${day}T${stampOf(iso)}.ndjson`);
}

/** Suffix of a compressed period file (after `.ndjson`), and of one being compressed. */
export const GZ_SUFFIX = '.gz';
export const TMP_SUFFIX = '.gz.tmp';

const NAME = /^(.+)-(\d{4}-\d{2}-\d{2})T(\d{2}(?:\d{2}(?:\d{2})?)?)\.ndjson(\.gz(?:\.tmp)?)?$/;

export interface RecordingName {
  venue: string;
  /** `YYYY-MM-DDTHH[MM[SS]]`: the period's key, the same for its `.ndjson`, `.ndjson.gz` and `.ndjson.gz.tmp`. */
  key: string;
  /** Epoch ms the period starts. */
  startMs: number;
  kind: 'plain' | 'gz' | 'tmp';
}

/** A recording file's name parsed, or null when it is not one. */
export function parseRecordingName(name: string): RecordingName | null {
  const m = NAME.exec(name);
  if (m === null) return null;
  const [, venue, day, stamp, ext] = m as unknown as [string, string, string, string, string | undefined];
  const startMs = Date.parse(`${day}T${stamp.slice(0, 2)}:${stamp.slice(2, 4) || '00'}:${stamp.slice(4, 6) || '00'}.000Z`);
  if (Number.isNaN(startMs)) return null;
  return { venue, key: `${day}T${stamp}`, startMs, kind: ext === undefined ? 'plain' : ext === GZ_SUFFIX ? 'gz' : 'tmp' };
}

/** One period of a venue's recording and the files it has on disk. */
export interface RecordingFile {
  /** `YYYY-MM-DDTHH[MM[SS]]`, sorts by time. */
  key: string;
  startMs: number;
  /** The period's `.ndjson` path (the recorder's name for it), whether or not it still exists. */
  path: string;
  /** `<path>` exists: written now, or not compressed (yet). */
  plain: boolean;
  /** `<path>.gz` exists: compressed. With `plain` too, see read.ts (periodSources). */
  gz: boolean;
  /** `<path>.gz.tmp` exists: a compression under way, or one a crash interrupted. Never read. */
  tmp: boolean;
}

const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;

/** Every period of `venue` under `dir` that has a file, oldest first. */
export async function listRecordings(dir: string, venue: string): Promise<RecordingFile[]> {
  const venueDir = join(dir, venue);
  const byKey = new Map<string, RecordingFile>();
  for (const day of (await readdirOrEmpty(venueDir)).filter((d) => DAY_DIR.test(d))) {
    for (const name of await readdirOrEmpty(join(venueDir, day))) {
      const n = parseRecordingName(name);
      if (n === null || n.venue !== venue) continue;
      let f = byKey.get(n.key);
      if (f === undefined) {
        const base = n.kind === 'plain' ? name : name.slice(0, name.indexOf('.ndjson') + '.ndjson'.length);
        f = { key: n.key, startMs: n.startMs, path: join(venueDir, day, base), plain: false, gz: false, tmp: false };
        byKey.set(n.key, f);
      }
      f[n.kind] = true;
    }
  }
  return [...byKey.values()].sort((a, b) => a.startMs - b.startMs);
}

/** The newest existing uncompressed recording of `venue` under `dir` (by period), or null. */
export async function latestRecording(dir: string, venue: string): Promise<string | null> {
  const files = (await listRecordings(dir, venue)).filter((f) => f.plain);
  return files[files.length - 1]?.path ?? null;
}

async function readdirOrEmpty(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

const SCAN_BLOCK = 64 * 1024;

/**
 * A process killed in the middle of a write (SIGKILL, OOM, power loss) can leave the last line of a
 * recording without its `\n`. Cut the file after its last `\n` so that the next line starts on a line
 * of its own. Returns the number of bytes removed (0 when the file is absent, empty or whole).
 */
export async function repairTornLine(path: string): Promise<number> {
  let fh;
  try {
    fh = await open(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return 0;
    const block = Buffer.allocUnsafe(Math.min(SCAN_BLOCK, size));
    let end = size;
    let keep = 0; // bytes to keep: up to and including the last '\n'; 0 when there is none
    while (end > 0) {
      const start = Math.max(0, end - block.length);
      const { bytesRead } = await fh.read(block, 0, end - start, start);
      const nl = block.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (nl !== -1) {
        keep = start + nl + 1;
        break;
      }
      end = start;
    }
    if (keep === size) return 0;
    await fh.truncate(keep);
    await fh.sync();
    return size - keep;
  } finally {
    await fh.close();
  }
}
