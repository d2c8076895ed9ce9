import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const HOUR_MS = 3_600_000;

/** Start of the UTC hour holding `ms`. */
export function hourStart(ms: number): number {
  return ms - (ms % HOUR_MS);
}

/**
 * The file a message received at `recvMs` goes to: one per UTC hour,
 * `<dir>/<venue>/<YYYY-MM-DD>/<venue>-<YYYY-MM-DD>T<HH>.ndjson`. Paths of one venue sort by time.
 */
export function recordingPath(dir: string, venue: string, recvMs: number): string {
  const iso = new Date(hourStart(recvMs)).toISOString(); // 2021-10-12T00:00:00.000Z
  const day = iso.slice(0, 10);
  return join(dir, venue, day, `${venue}-${day}T${iso.slice(11, 13)}.ndjson`);
}

const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;

/** The newest existing recording of `venue` under `dir` (by name, which is by hour), or null. */
export async function latestRecording(dir: string, venue: string): Promise<string | null> {
  const venueDir = join(dir, venue);
  const days = (await readdirOrEmpty(venueDir)).filter((d) => DAY_DIR.test(d)).sort().reverse();
  const file = new RegExp(`^${escapeRegExp(venue)}-\\d{4}-\\d{2}-\\d{2}T\\d{2}\\.ndjson$`);
  for (const day of days) {
    const files = (await readdirOrEmpty(join(venueDir, day))).filter((f) => file.test(f)).sort();
    const last = files[files.length - 1];
    if (last !== undefined) return join(venueDir, day, last);
  }
  return null;
}

async function readdirOrEmpty(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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

/**
 * fsync a directory so that a file created in it survives power loss (the file's own fsync does not
 * persist its directory entry: see fsync(2), "Calling fsync() does not necessarily ensure that the
 * entry in the directory containing the file has also reached disk").
 */
export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
