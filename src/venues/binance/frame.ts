/**
 * Reads what the daemon needs from a Binance combined-stream frame where it sits, without JSON.parse:
 * the stream name, the sequence fields and the event time. Binance frames are compact JSON with the
 * keys of a payload in a fixed order and no whitespace (see test/fixtures/binance), so a key pattern
 * like `"t":` occurs once in a trade payload. A frame that does not have the expected shape gives
 * NaN / null and is counted as malformed by the caller; nothing here throws.
 */
import { keyPattern, readInt, QUOTE } from '../bytes.js';
import type { FrameKeys, NameSpan } from '../types.js';

export { keyPattern, readInt };

const STREAM_PREFIX = Buffer.from('{"stream":"');
const DATA_SEP = Buffer.from('","data":');

/**
 * Stream name of a combined frame, or null when the frame is not one (control replies, garbage).
 * Plain byte loops: for these few bytes they cost less than Buffer.compare / indexOf, which cross
 * into C++ (measured 2.3× faster for this function and readInt together; docs/performance.md).
 */
export function frameStream(buf: Buffer): string | null {
  const end = frameStreamEnd(buf);
  // latin1Slice directly: a wrapper call here measured 4 % of the router's time per message.
  return end === -1 ? null : (buf as unknown as Latin1).latin1Slice(STREAM_PREFIX.length, end);
}

/** Where the stream name of a combined frame ends (it starts right after `{"stream":"`), or -1. */
function frameStreamEnd(buf: Buffer): number {
  const n = buf.length;
  const p = STREAM_PREFIX.length;
  if (n < p + 10) return -1;
  for (let i = 0; i < p; i++) if (buf[i] !== STREAM_PREFIX[i]) return -1;
  let end = p;
  while (end < n && buf[end] !== QUOTE) end++;
  if (end + DATA_SEP.length > n) return -1;
  for (let i = 0; i < DATA_SEP.length; i++) if (buf[end + i] !== DATA_SEP[i]) return -1;
  return end;
}

/** Node's Buffer has latin1Slice at run time (what toString('latin1') calls) but not in its types. */
type Latin1 = { latin1Slice(start: number, end: number): string };

/** Offset of the `data` object in a combined frame whose stream name ends at `streamLength`. */
export function dataOffset(streamLength: number): number {
  return STREAM_PREFIX.length + streamLength + DATA_SEP.length;
}

/** The venue's StreamReader: the combined envelope's stream name, the payload after `"data":`. */
export function readBinanceStream(frame: Buffer, out: FrameKeys): string | null {
  const name = frameStream(frame);
  if (name !== null) out.from = dataOffset(name.length);
  return name;
}

/**
 * readBinanceStream without the string: the venue's StreamSpanReader. The name's FNV-1a hash
 * (the StreamTable's) is computed in the same loop that finds its closing quote.
 */
export function readBinanceStreamSpan(frame: Buffer, out: FrameKeys, span: NameSpan): boolean {
  const n = frame.length;
  const p = STREAM_PREFIX.length;
  if (n < p + 10) return false;
  for (let i = 0; i < p; i++) if (frame[i] !== STREAM_PREFIX[i]) return false;
  let end = p;
  let h = 0x811c9dc5;
  for (; end < n; end++) {
    const c = frame[end]!;
    if (c === QUOTE) break;
    h = Math.imul(h ^ c, 0x01000193);
  }
  if (end + DATA_SEP.length > n) return false;
  for (let i = 0; i < DATA_SEP.length; i++) if (frame[end + i] !== DATA_SEP[i]) return false;
  span.start = p;
  span.end = end;
  span.hash = h >>> 0;
  out.from = end + DATA_SEP.length;
  return true;
}
