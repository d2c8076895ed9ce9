import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { eachLine } from '../ledger/lines.js';
import { GZ_SUFFIX, type RecordingFile } from './files.js';

/**
 * Reading a recording, compressed or not: the one place every reader (crash recovery, the rehearsal
 * check, tests) goes through, so that a `.ndjson.gz` reads exactly like the `.ndjson` it was made
 * from, and a crash in the middle of a compression never shows a line twice or a half file
 * (docs/recording.md, "Compression").
 */

/** One file to read for a period: the plain file, or its gzip. */
export interface RecordingSource {
  path: string;
  gz: boolean;
}

export interface LinesResult {
  /** Uncompressed bytes of the source (from 0, whatever `start` was). */
  totalBytes: number;
  /** Bytes after the last newline: a line torn by a crash (never passed to onLine). */
  tornBytes: number;
}

const CHUNK = 1 << 20;

function open1(src: RecordingSource, start: number): Readable {
  if (!src.gz) return createReadStream(src.path, { start, highWaterMark: CHUNK });
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const file = createReadStream(src.path, { highWaterMark: CHUNK });
  file.on('error', (err) => gunzip.destroy(err));
  return file.pipe(gunzip);
}

/**
 * Calls onLine for each complete (newline-terminated) line of `src` from uncompressed byte `start`.
 * Splitting on the byte 0x0a is safe in UTF-8: it never occurs inside a multi-byte character. A gzip
 * that is not whole (never left by the compressor, which renames only a synced file) rejects.
 */
export async function readLines(src: RecordingSource, start: number, onLine: (line: string) => void): Promise<LinesResult> {
  if (!src.gz) {
    const size = (await stat(src.path)).size;
    if (start > size) return { totalBytes: size, tornBytes: 0 };
  }
  let pos = src.gz ? 0 : start; // uncompressed offset of the next byte read
  let carry: Buffer | null = null;
  for await (const raw of open1(src, src.gz ? 0 : start)) {
    let chunk = raw as Buffer;
    const at = pos;
    pos += chunk.length;
    if (pos <= start) continue;
    if (at < start) chunk = chunk.subarray(start - at);
    if (carry !== null) {
      chunk = Buffer.concat([carry, chunk]);
      carry = null;
    }
    const from = eachLine(chunk, onLine);
    // Copy: the stream may reuse its buffer.
    if (from < chunk.length) carry = Buffer.from(chunk.subarray(from));
  }
  return { totalBytes: pos, tornBytes: carry === null ? 0 : carry.length };
}

/**
 * Whether the uncompressed content of `gzPath` ends with the bytes of `plainPath`. Two passes over
 * the gzip (its length, then the comparison); only run on a period that has both files, which only
 * a crash (between the rename and the unlink) or a clock stepped back into a compressed period leaves.
 */
export async function gzEndsWith(gzPath: string, plainPath: string): Promise<boolean> {
  const size = (await stat(plainPath)).size;
  let total = 0;
  for await (const c of open1({ path: gzPath, gz: true }, 0)) total += (c as Buffer).length;
  if (total < size) return false;
  const skip = total - size;
  const fh = await open(plainPath, 'r');
  try {
    let pos = 0; // uncompressed offset in the gzip
    let plainAt = 0;
    const buf = Buffer.allocUnsafe(CHUNK);
    for await (const raw of open1({ path: gzPath, gz: true }, 0)) {
      let c = raw as Buffer;
      const at = pos;
      pos += c.length;
      if (pos <= skip) continue;
      if (at < skip) c = c.subarray(skip - at);
      while (c.length > 0) {
        const n = Math.min(c.length, buf.length);
        const { bytesRead } = await fh.read(buf, 0, n, plainAt);
        if (bytesRead !== n || buf.compare(c, 0, n, 0, n) !== 0) return false;
        plainAt += n;
        c = c.subarray(n);
      }
    }
    return plainAt === size;
  } finally {
    await fh.close();
  }
}

/**
 * What to read for a period, in order. Usually one file: the `.ndjson` (not compressed yet) or the
 * `.ndjson.gz`. When both exist: if the gzip's content ends with the plain file's, a compression was
 * interrupted between its rename and its unlink (the plain file is a copy): the gzip alone. Otherwise
 * the plain file holds lines written after the compression (the clock stepped back into the period):
 * the gzip, then the plain file. The `.ndjson.gz.tmp` of a compression under way is never read.
 */
export async function periodSources(f: RecordingFile): Promise<RecordingSource[]> {
  const gz: RecordingSource = { path: f.path + GZ_SUFFIX, gz: true };
  const plain: RecordingSource = { path: f.path, gz: false };
  if (f.gz && f.plain) {
    try {
      return (await gzEndsWith(gz.path, plain.path)) ? [gz] : [gz, plain];
    } catch (err) {
      // The plain file went meanwhile (its compression finished): the gzip alone.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [gz];
      throw err;
    }
  }
  if (f.gz) return [gz];
  if (f.plain) return [plain];
  return [];
}

/**
 * Every complete line of one period, its files in order (periodSources). A plain file compressed
 * while it was being listed is read from its gzip instead. `start`, when not 0, is an offset in the
 * recorder's coordinates (a checkpoint's position): in the period's plain file while it has one
 * beside the gzip, else in the one file there is.
 */
export async function readPeriodLines(f: RecordingFile, start: number, onLine: (line: string) => void): Promise<LinesResult & { sources: RecordingSource[] }> {
  let sources = await periodSources(f);
  if (start > 0 && sources.length === 2) sources = [sources[1]!];
  let totalBytes = 0;
  let tornBytes = 0;
  for (const src of sources) {
    let r: LinesResult;
    try {
      r = await readLines(src, start, onLine);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || src.gz) throw err;
      // Compressed between the listing and the open: the gzip holds the same bytes.
      r = await readLines({ path: src.path + GZ_SUFFIX, gz: true }, start, onLine);
    }
    totalBytes += r.totalBytes;
    tornBytes += r.tornBytes;
  }
  return { totalBytes, tornBytes, sources };
}
