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

const COLON = 0x3a;

/**
 * The one-character keys (`"E":`, `"t":`, `"u":`...) a KeyScan looks for in one pass: which byte is
 * which slot, and the skip of each byte (Horspool over the keys' four-byte patterns `"X":`).
 */
export interface KeyScan {
  /** slot + 1 of each key character, 0 for others. */
  readonly slot: Uint8Array;
  /** How far the pattern can move when its last byte (the `:`) lines up with each byte value. */
  readonly shift: Uint8Array;
  /** Bit mask of every slot. */
  readonly all: number;
}

/** Prepares the scan of the one-character `keys` (at most 8): `values[i]` gets `keys[i]`. */
export function keyScan(keys: readonly string[]): KeyScan {
  if (keys.length === 0 || keys.length > 8) throw new RangeError('a KeyScan reads 1 to 8 keys');
  const slot = new Uint8Array(256);
  const shift = new Uint8Array(256).fill(4);
  keys.forEach((k, i) => {
    if (k.length !== 1 || k.charCodeAt(0) > 0x7f || k === '"' || k === ':') throw new RangeError(`not a one-character key: ${k}`);
    slot[k.charCodeAt(0)] = i + 1;
    // The key byte sits at offset 1 of its pattern: two before the `:`.
    if (shift[k.charCodeAt(0)]! > 2) shift[k.charCodeAt(0)] = 2;
  });
  // A quote is at offset 0 or 2: one before the `:` at the nearest.
  shift[QUOTE] = 1;
  return { slot, shift, all: (1 << keys.length) - 1 };
}

/**
 * The integer values of a KeyScan's keys in buf[from..], into `values` (NaN where absent or not an
 * integer): the same values as readInt of each key from `from` (the first occurrence of each key
 * counts), read in one forward pass that stops once every key is found. The pass steps by the
 * Horspool shift of the byte where a pattern's `:` would be: in JSON text most bytes are none of
 * `"`, `:` or a key character, so it looks at about one byte in three or four.
 */
export function scanKeys(buf: Buffer, from: number, scan: KeyScan, values: Float64Array): void {
  const slot = scan.slot;
  const shift = scan.shift;
  let missing = scan.all;
  const n = buf.length;
  const last = n - 4;
  let i = from;
  while (i <= last) {
    const c = buf[i + 3]!;
    if (c !== COLON) {
      i += shift[c]!;
      continue;
    }
    if (buf[i + 2] === QUOTE && buf[i] === QUOTE) {
      const s = slot[buf[i + 1]!]!;
      if (s !== 0 && (missing & (1 << (s - 1))) !== 0) {
        missing &= ~(1 << (s - 1));
        // intAt, written out: calling it cost 146 → 159 ns a message (four keys, best of 30 runs);
        // test/frame.test.ts holds the two to the same values.
        let p = i + 4;
        const quoted = buf[p] === QUOTE;
        if (quoted) p++;
        let neg = false;
        if (buf[p] === 0x2d) {
          neg = true;
          p++;
        }
        const start = p;
        let v = 0;
        for (; p < n; p++) {
          const d = buf[p]! - 0x30;
          if (d < 0 || d > 9) break;
          v = v * 10 + d;
        }
        values[s - 1] = p === start || (quoted && buf[p] !== QUOTE) ? NaN : neg ? -v : v;
        if (missing === 0) return;
      }
    }
    i += 4;
  }
  for (let k = 0; missing !== 0; k++, missing >>>= 1) if ((missing & 1) !== 0) values[k] = NaN;
}
