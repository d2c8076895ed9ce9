/**
 * Building a recorded line by copying bytes. This is the per-message part of the recorder, so it
 * allocates nothing and never goes through a string:
 *
 *   frame:  {"stream":"btcusdt@trade","data":{...}}
 *   line:   {"recv":1633998512068,"stream":"btcusdt@trade","data":{...}}\n
 *
 * The line is the 8-byte prefix `{"recv":`, the decimal digits of recvMs, then the whole frame copied
 * in one TypedArray.set with its opening `{` overwritten by `,`, then `\n`. Copying the whole frame
 * rather than `frame.subarray(1)` avoids allocating a view per message.
 */

/** Bytes a line adds around the frame: `{"recv":` (8) + `,` (1) + `\n` (1) - the frame's `{` (1). */
export const LINE_OVERHEAD = 9;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
const ZERO = 0x30;

/** The largest recvMs accepted: the largest time a JavaScript Date can hold (year 275760). */
export const MAX_RECV_MS = 8.64e15;

/** Number of decimal digits of a non-negative integer below 2^53. */
export function decimalLength(v: number): number {
  let digits = 1;
  let pow = 10;
  while (pow <= v) {
    digits++;
    pow *= 10;
  }
  return digits;
}

/**
 * True when `frame` can be spliced: it opens with `{"` and closes with `}`. Anything else (an empty
 * object, leading whitespace, a raw frame without the combined-stream envelope) would produce a line
 * that is not JSON, so the recorder refuses it rather than write it.
 */
export function isSpliceable(frame: Buffer): boolean {
  const n = frame.length;
  return n >= 3 && frame[0] === OPEN_BRACE && frame[1] === QUOTE && frame[n - 1] === CLOSE_BRACE;
}

/**
 * Writes the line for `frame` received at `recvMs` into `out` at `pos` and returns the position after
 * its `\n`. `recvMs` must be an integer in [0, MAX_RECV_MS], `digits` its decimalLength(), and `out`
 * must have `frame.length + digits + LINE_OVERHEAD` bytes free at `pos`.
 */
export function encodeLine(out: Buffer, pos: number, frame: Buffer, recvMs: number, digits: number): number {
  const comma = writeRecv(out, pos, recvMs, digits);
  out.set(frame, comma);
  out[comma] = COMMA;
  const end = comma + frame.length;
  out[end] = NEWLINE;
  return end + 1;
}

/**
 * `{"recv":` and the digits of the last recvMs written: the messages of one socket chunk share their
 * receive time, so the digits are made once per time (writeDigits) and copied per line.
 */
const recvHead = Buffer.from('{"recv":0000000000000000000000');
let recvHeadMs = -1;
let recvHeadLength = 0;

/** Writes `{"recv":` and the digits of recvMs at `pos`; returns the position after the digits. */
function writeRecv(out: Buffer, pos: number, recvMs: number, digits: number): number {
  if (recvMs !== recvHeadMs || recvHeadLength !== 8 + digits) {
    writeDigits(recvHead, recvMs, digits);
    recvHeadMs = recvMs;
    recvHeadLength = 8 + digits;
  }
  const h = recvHead;
  const n = recvHeadLength;
  for (let i = 0; i < n; i++) out[pos + i] = h[i]!;
  return pos + n;
}

/** The `digits` decimal digits of recvMs into recvHead after its `{"recv":`. */
function writeDigits(out: Buffer, recvMs: number, digits: number): void {
  let p = 8 + digits;
  // Digits right to left. Split off the low 8 digits so that every division is on a small integer
  // (a 13-digit millisecond time does not fit in 32 bits; the two halves do).
  let high = recvMs;
  if (recvMs >= 1e8) {
    high = Math.floor(recvMs / 1e8);
    let low = recvMs - high * 1e8;
    // Near 2^53 the division can round up to the next integer.
    if (low < 0) {
      high--;
      low += 1e8;
    }
    low |= 0;
    for (let i = 0; i < 8; i++) {
      const q = (low / 10) | 0;
      out[--p] = ZERO + low - q * 10;
      low = q;
    }
  }
  high |= 0;
  do {
    const q = (high / 10) | 0;
    out[--p] = ZERO + high - q * 10;
    high = q;
  } while (high > 0);
}

/**
 * The line of a stream with a prepared head (StreamRef): `{"recv":<ms>` + head + frame[start..] +
 * (close ? `}` : ``) + `\n`; returns the position after its `\n`. `out` must have
 * streamLineLength() bytes free at `pos`. With start 1 the frame is copied whole with its `{` on the
 * head's last byte (a `,`), which is then put back: no view of the frame is allocated.
 */
export function encodeStreamLine(out: Buffer, pos: number, head: Buffer, frame: Buffer, start: number, close: boolean, recvMs: number, digits: number): number {
  let p: number;
  if (start === 1) {
    // `{"recv":<ms>` + the head but its last byte, made once per (time, head) and copied in one
    // TypedArray.set: a socket chunk's messages share their time, and an envelope venue's streams
    // share their head (streamRef), so this is one copy per line instead of a byte loop of about
    // 45 bytes (docs/performance.md, "Fourth pass").
    if (recvMs !== prefixMs || head !== prefixHead || digits !== prefixDigits) makePrefix(head, recvMs, digits);
    out.set(prefix, pos);
    p = pos + prefix.length;
    // The frame's `{` lands on the head's last byte (its `,`), which is put back.
    out.set(frame, p);
    out[p] = head[head.length - 1]!;
  } else {
    p = writeRecv(out, pos, recvMs, digits);
    // The head is a few dozen bytes and differs per stream: a byte loop costs less than a
    // TypedArray.set into C++.
    const h = head.length;
    for (let i = 0; i < h; i++) out[p + i] = head[i]!;
    p += h;
    out.set(frame, p);
  }
  let end = p + frame.length;
  if (close) out[end++] = CLOSE_BRACE;
  out[end] = NEWLINE;
  return end + 1;
}

/** The prefix of encodeStreamLine's envelope lines for the last (recvMs, head) seen. */
let prefix: Buffer = Buffer.alloc(0);
let prefixMs = -1;
let prefixDigits = 0;
let prefixHead: Buffer | null = null;

function makePrefix(head: Buffer, recvMs: number, digits: number): void {
  const n = 8 + digits;
  const next = Buffer.allocUnsafe(n + head.length - 1);
  writeRecv(next, 0, recvMs, digits);
  head.copy(next, n, 0, head.length - 1);
  prefix = next;
  prefixMs = recvMs;
  prefixDigits = digits;
  prefixHead = head;
}

/** Bytes of the line encodeStreamLine writes. */
export function streamLineLength(head: Buffer, frame: Buffer, start: number, close: boolean, digits: number): number {
  return 8 + digits + head.length + frame.length - start + (close ? 1 : 0) + 1;
}


/**
 * A raw newline inside a frame can only be JSON whitespace (JSON strings cannot hold one), so the
 * recorder writes it as a space: one line is always one message. Binance sends none; checking costs
 * a memchr per message.
 */
export function blankNewlines(buf: Buffer, from: number, to: number): void {
  for (let i = buf.indexOf(NEWLINE, from); i !== -1 && i < to; i = buf.indexOf(NEWLINE, i + 1)) buf[i] = 0x20;
}
