/**
 * Reads what the daemon needs from a Binance combined-stream frame where it sits, without JSON.parse:
 * the stream name, the sequence fields and the event time. Binance frames are compact JSON with the
 * keys of a payload in a fixed order and no whitespace (see test/fixtures/binance), so a key pattern
 * like `"t":` occurs once in a trade payload. A frame that does not have the expected shape gives
 * NaN / null and is counted as malformed by the caller; nothing here throws.
 */

const STREAM_PREFIX = Buffer.from('{"stream":"');
const DATA_SEP = Buffer.from('","data":');
const QUOTE = 0x22;

/** Node's Buffer has latin1Slice at run time (what toString('latin1') calls) but not in its types. */
type Latin1 = { latin1Slice(start: number, end: number): string };

/**
 * Stream name of a combined frame, or null when the frame is not one (control replies, garbage).
 * Plain byte loops: for these few bytes they cost less than Buffer.compare / indexOf, which cross
 * into C++ (measured 2.3× faster for this function and readInt together; docs/performance.md).
 */
export function frameStream(buf: Buffer): string | null {
  const n = buf.length;
  const p = STREAM_PREFIX.length;
  if (n < p + 10) return null;
  for (let i = 0; i < p; i++) if (buf[i] !== STREAM_PREFIX[i]) return null;
  let end = p;
  while (end < n && buf[end] !== QUOTE) end++;
  if (end + DATA_SEP.length > n) return null;
  for (let i = 0; i < DATA_SEP.length; i++) if (buf[end + i] !== DATA_SEP[i]) return null;
  return (buf as unknown as Latin1).latin1Slice(p, end);
}

/** Offset of the `data` object in a combined frame whose stream name ends at `streamLength`. */
export function dataOffset(streamLength: number): number {
  return STREAM_PREFIX.length + streamLength + DATA_SEP.length;
}

/** A key pattern such as `"t":`, prepared once. */
export function keyPattern(key: string): Buffer {
  return Buffer.from(`"${key}":`);
}

/**
 * The integer value of `key` (a keyPattern) at or after `from`, or NaN when absent or not an
 * integer. Handles values up to 2^53 (Binance update IDs exceed 2^32 but not 2^53).
 */
export function readInt(buf: Buffer, key: Buffer, from: number): number {
  const klen = key.length;
  const k1 = key[1];
  const last = buf.length - klen;
  outer: for (let i = from; i <= last; i++) {
    if (buf[i + 1] !== k1 || buf[i] !== QUOTE) continue;
    for (let j = 2; j < klen; j++) if (buf[i + j] !== key[j]) continue outer;
    let p = i + klen;
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
    return neg ? -v : v;
  }
  return NaN;
}
