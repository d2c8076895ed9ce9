/**
 * Byte-level readers for the hot path: what the daemon needs from an exchange frame, read where it
 * sits, without JSON.parse. Every venue's frame reader is built from these. A frame without the
 * expected shape gives NaN / -1 / null, which the caller counts as malformed; nothing here throws.
 *
 * Plain byte loops: for the few bytes involved they cost less than Buffer.compare / indexOf, which
 * cross into C++ (measured 2.3× faster for frameStream and readInt together; docs/performance.md).
 */

export const QUOTE = 0x22;

/** Node's Buffer has latin1Slice at run time (what toString('latin1') calls) but not in its types. */
type Latin1 = { latin1Slice(start: number, end: number): string };

/** A key pattern such as `"t":`, prepared once. */
export function keyPattern(key: string): Buffer {
  return Buffer.from(`"${key}":`);
}

/** Offset just after `key` (a keyPattern) at or after `from` and before `to`, or -1. */
export function findKey(buf: Buffer, key: Buffer, from: number, to = buf.length): number {
  const klen = key.length;
  const k1 = key[1];
  const last = to - klen;
  outer: for (let i = from; i <= last; i++) {
    if (buf[i + 1] !== k1 || buf[i] !== QUOTE) continue;
    for (let j = 2; j < klen; j++) if (buf[i + j] !== key[j]) continue outer;
    return i + klen;
  }
  return -1;
}

/** True when `buf` holds `prefix` at `at`. */
export function startsWith(buf: Buffer, prefix: Buffer, at = 0): boolean {
  if (at + prefix.length > buf.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * The integer at `p`: digits with an optional `-`, or the same inside quotes (OKX, Bybit and KuCoin
 * send IDs as strings). NaN when there is none. Exact up to 2^53; larger values lose precision,
 * which is why a venue whose IDs exceed 2^53 must compare them as strings.
 */
export function intAt(buf: Buffer, p: number): number {
  const quoted = buf[p] === QUOTE;
  if (quoted) p++;
  let neg = false;
  if (buf[p] === 0x2d) {
    neg = true;
    p++;
  }
  const start = p;
  let v = 0;
  for (; p < buf.length; p++) {
    const c = buf[p]! - 0x30;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  if (p === start) return NaN;
  if (quoted && buf[p] !== QUOTE) return NaN;
  return neg ? -v : v;
}

/**
 * The integer value of `key` (a keyPattern) at or after `from`, or NaN when absent or not an
 * integer. The hot path's reader: findKey and intAt written out in one function (measured: two
 * calls per key cost 15–20 % of the router's time per message).
 */
export function readInt(buf: Buffer, key: Buffer, from: number, to = buf.length): number {
  const klen = key.length;
  const k1 = key[1];
  const last = to - klen;
  outer: for (let i = from; i <= last; i++) {
    if (buf[i + 1] !== k1 || buf[i] !== QUOTE) continue;
    for (let j = 2; j < klen; j++) if (buf[i + j] !== key[j]) continue outer;
    let p = i + klen;
    const quoted = buf[p] === QUOTE;
    if (quoted) p++;
    let neg = false;
    if (buf[p] === 0x2d) {
      neg = true;
      p++;
    }
    const start = p;
    let v = 0;
    for (; p < buf.length; p++) {
      const c = buf[p]! - 0x30;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
    }
    if (p === start || (quoted && buf[p] !== QUOTE)) return NaN;
    return neg ? -v : v;
  }
  return NaN;
}

/** The string value (between quotes, no escapes) at `p`, or null. */
export function stringAt(buf: Buffer, p: number): string | null {
  if (buf[p] !== QUOTE) return null;
  let end = p + 1;
  while (end < buf.length && buf[end] !== QUOTE) end++;
  if (end >= buf.length) return null;
  return (buf as unknown as Latin1).latin1Slice(p + 1, end);
}

/** Offset of the quote closing the string that starts at `p` (a quote), or -1. */
export function stringEnd(buf: Buffer, p: number): number {
  let end = p + 1;
  while (end < buf.length && buf[end] !== QUOTE) end++;
  return end < buf.length ? end : -1;
}

/** latin1 text of buf[start, end): the stream names and symbols of every venue are ASCII. */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1).latin1Slice(start, end);
}
