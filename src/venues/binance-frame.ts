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

/** Stream name of a combined frame, or null when the frame is not one (control replies, garbage). */
export function frameStream(buf: Buffer): string | null {
  if (buf.length < STREAM_PREFIX.length + 10 || buf.compare(STREAM_PREFIX, 0, STREAM_PREFIX.length, 0, STREAM_PREFIX.length) !== 0) {
    return null;
  }
  const end = buf.indexOf(QUOTE, STREAM_PREFIX.length);
  if (end < 0 || end + DATA_SEP.length > buf.length) return null;
  if (buf.compare(DATA_SEP, 0, DATA_SEP.length, end, end + DATA_SEP.length) !== 0) return null;
  return buf.toString('latin1', STREAM_PREFIX.length, end);
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
 * The integer value of `key` at or after `from`, or NaN when absent or not an integer.
 * Handles values up to 2^53 (Binance update IDs exceed 2^32 but not 2^53).
 */
export function readInt(buf: Buffer, key: Buffer, from: number): number {
  const at = buf.indexOf(key, from);
  if (at < 0) return NaN;
  let i = at + key.length;
  const len = buf.length;
  let neg = false;
  if (i < len && buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  const start = i;
  let v = 0;
  for (; i < len; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  if (i === start) return NaN;
  return neg ? -v : v;
}
