import { open } from 'node:fs/promises';

export interface ScanResult {
  /** Offset just past the last complete line. */
  endOffset: number;
  /** Bytes after the last newline: a line torn by a crash (never passed to onLine). */
  tornBytes: number;
}

const CHUNK = 1 << 20;

/**
 * Calls onLine for each newline-terminated line of `chunk` and returns the offset after the last
 * newline (the start of a line the next chunk completes). Splitting on the byte 0x0a is safe in
 * UTF-8: it never occurs inside a multi-byte character.
 */
export function eachLine(chunk: Buffer, onLine: (line: string) => void): number {
  let from = 0;
  for (;;) {
    const nl = chunk.indexOf(10, from);
    if (nl === -1) return from;
    onLine(chunk.toString('utf8', from, nl));
    from = nl + 1;
  }
}

/**
 * Calls onLine for each complete (newline-terminated) line of the file from byte `start`. Splitting
 * on the byte 0x0a is safe in UTF-8: it never occurs inside a multi-byte character.
 */
export async function scanLines(path: string, start: number, onLine: (line: string) => void): Promise<ScanResult> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer | null = null;
    let pos = start;
    let endOffset = start;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      let chunk = buf.subarray(0, bytesRead);
      if (carry !== null) {
        chunk = Buffer.concat([carry, chunk]);
        carry = null;
      }
      const from = eachLine(chunk, onLine);
      endOffset = pos - (chunk.length - from);
      // Copy: `buf` is reused by the next read.
      if (from < chunk.length) carry = Buffer.from(chunk.subarray(from));
    }
    return { endOffset, tornBytes: carry === null ? 0 : carry.length };
  } finally {
    await fh.close();
  }
}
