import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Atomic replacement of a small state file (checkpoint, attempt log), the same way everywhere:
 * write `<path>.tmp`, fsync it, rename it over `path`, fsync the directory. A crash at any point
 * leaves the old file or the new one, never a torn one. Throws what the file system throws.
 */
export async function writeStateFile(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  const tmp = `${path}.tmp`;
  await mkdir(dir, { recursive: true });
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDirQuietly(dir);
}

/** writeStateFile for callers that cannot wait (the attempt log, saved on each connection attempt). */
export function writeStateFileSync(path: string, text: string): void {
  const dir = dirname(path);
  const tmp = `${path}.tmp`;
  mkdirSync(dir, { recursive: true });
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const d = openSync(dir, 'r');
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // EISDIR/EINVAL/EPERM on some platforms and filesystems: nothing more can be done.
  }
}

/**
 * fsync a directory so that a file created or renamed in it survives power loss (the file's own
 * fsync does not persist its directory entry: see fsync(2), "Calling fsync() does not necessarily
 * ensure that the entry in the directory containing the file has also reached disk"). Throws what
 * the file system throws (the recorder counts it as a failed sync).
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** syncDir, best effort: EISDIR/EINVAL/EPERM on some platforms and filesystems, where nothing more can be done. */
export async function syncDirQuietly(dir: string): Promise<void> {
  await syncDir(dir).catch(() => undefined);
}
