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
  await syncDirAsync(dir);
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

async function syncDirAsync(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on some platforms and filesystems: nothing more can be done.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
