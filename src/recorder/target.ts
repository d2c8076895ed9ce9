import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The two things the recorder's accepting side and its writer share: the file a line goes to
 * (Target) and the buffer it is copied into (Chunk). And the one way a recording file is opened.
 */

/** One file of the recording. A logrotate move gives the same path a second Target. */
export class Target {
  fh: FileHandle | null = null;
  dev = -1;
  ino = -1;
  /** Bytes handed to the OS for this target. */
  written = 0;
  /** Written since the last fsync. */
  dirty = false;
  /**
   * Directories to fsync with the file's first fsync: the file's own when the recorder created the
   * file, and the parents of directories it created, so that the new entries survive power loss.
   */
  dirsToSync: string[] = [];
  constructor(
    readonly path: string,
    /** Size of the file when the recorder first addressed it: offsets start here. */
    readonly base: number,
  ) {}

  /** A target for a file just opened: its offsets start at the file's size. */
  static of(path: string, f: OpenedFile): Target {
    const t = new Target(path, f.size);
    t.attach(f);
    return t;
  }

  /** Takes the handle of a file opened (or opened again) for this target. */
  attach(f: OpenedFile): void {
    this.fh = f.fh;
    this.dev = f.dev;
    this.ino = f.ino;
    if (this.written === 0 && f.size === 0) this.dirsToSync = f.dirsToSync;
  }
}

/** A preallocated buffer of whole lines, all for one target. Bytes [start, end) await the disk. */
export class Chunk {
  start = 0;
  end = 0;
  lines = 0;
  linesWritten = 0;
  /** No more lines go in: it is written as soon as the writer gets to it. */
  sealed = false;
  constructor(
    readonly buf: Buffer,
    readonly target: Target,
  ) {}
}

export interface OpenedFile {
  fh: FileHandle;
  size: number;
  dev: number;
  ino: number;
  isFile: boolean;
  /** What Target.dirsToSync must hold when the file is new (size 0). */
  dirsToSync: string[];
}

/**
 * The recorder's only way to open a file: its directories created (mkdir -p), opened for appending,
 * its size and identity (dev, ino: a logrotate move shows as a new ino at the same path) read. The
 * handle is closed again when the stat fails.
 */
export async function openAppend(path: string): Promise<OpenedFile> {
  const made = await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'a');
  try {
    const st = await fh.stat();
    return { fh, size: st.size, dev: st.dev, ino: st.ino, isFile: st.isFile(), dirsToSync: st.size === 0 ? dirsCreated(path, made) : [] };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** `file`'s directory, plus the parent of each directory mkdir -p reports having created (`made`). */
function dirsCreated(file: string, made: string | undefined): string[] {
  const dirs = [dirname(file)];
  if (made === undefined) return dirs;
  const top = dirname(made);
  for (let d = dirname(file); d !== top && d !== dirname(d); d = dirname(d)) dirs.push(dirname(d));
  return dirs;
}
