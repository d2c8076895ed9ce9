/**
 * Gate.io spot v4 stream types and how to read their sequence keys (facts sheet "Gate.io (spot v4)";
 * Gate docs https://www.gate.io/docs/developers/apiv4/ws/en/ #public-trades-channel,
 * #changed-order-book-levels, #best-bid-or-ask-price). Key readers start at the `result` object
 * (out.from, set by readGateStream) and never JSON.parse.
 */
import { QUOTE, findKey, intAt, keyPattern, readInt, startsWith } from '../bytes.js';
import { KEY_RESET, type FrameKeys, type KeyReader, type StreamType } from '../types.js';

/** Every spot channel is served on one path (facts sheet, Gate "URLs"). */
export const GATE_ROUTE = '/ws/v4/';

const RANGE = keyPattern('range');
const ID_MARKET = keyPattern('id_market');
const CREATE_TIME_MS = keyPattern('create_time_ms');
const FULL = keyPattern('full');
const FIRST_U = keyPattern('U');
const LAST_U = keyPattern('u');
const T = keyPattern('t');
const TRUE = Buffer.from('true');
const DASH = 0x2d;

function clear(out: FrameKeys): void {
  out.first = out.last = out.prev = out.time = NaN;
  out.flags = 0;
}

/** The integer part of a number or a quoted decimal (`"1606292218213.4578"` → 1606292218213), or NaN. */
function msAt(buf: Buffer, p: number): number {
  if (p === -1) return NaN;
  if (buf[p] === QUOTE) p++;
  const start = p;
  let v = 0;
  for (; p < buf.length; p++) {
    const c = buf[p]! - 0x30;
    if (c < 0 || c > 9) break;
    v = v * 10 + c;
  }
  return p === start ? NaN : v;
}

/**
 * spot.trades: `id_market` "continuous growth within a single market" and `range` "start-end" is
 * the span a push covers [T1], so a jump is a gap with an exact range and count ('contiguous').
 * The keys come from `range`; only a push without one falls back to `id_market`. Gate's own example
 * frame repeats the key `id_market` (2390902, then 5736713) while its `range` says 2390902-2390902:
 * JSON.parse would keep the last value, this reader never looks past `range` (and, without it, takes
 * the first `id_market`), so a duplicate key cannot move the sequence.
 */
export const tradeKeys: KeyReader = (frame, out) => {
  clear(out);
  const from = out.from;
  out.time = msAt(frame, findKey(frame, CREATE_TIME_MS, from));
  const r = findKey(frame, RANGE, from);
  if (r !== -1 && frame[r] === QUOTE) {
    const a = intAt(frame, r + 1);
    let p = r + 1;
    while (p < frame.length && frame[p] !== DASH && frame[p] !== QUOTE) p++;
    const b = frame[p] === DASH ? intAt(frame, p + 1) : NaN;
    if (a === a && b === b && a <= b) {
      out.first = a;
      out.last = b;
      return true;
    }
    return false;
  }
  const id = readInt(frame, ID_MARKET, from);
  out.first = out.last = id;
  return id === id;
};

/**
 * spot.order_book_update: `U`/`u` are the first and last book update IDs of the push, and the pair's
 * book ID grows by 1 per update [T1]: the next `U` = this `u` + 1, a hole is an exact range ('range').
 * `"full":true` (Gate's irregular full pushes, [T3]) replaces the book: a new epoch.
 */
export const bookKeys: KeyReader = (frame, out) => {
  clear(out);
  const from = out.from;
  const first = readInt(frame, FIRST_U, from);
  const last = readInt(frame, LAST_U, from);
  const f = findKey(frame, FULL, from);
  if (f !== -1 && startsWith(frame, TRUE, f)) out.flags = KEY_RESET;
  out.first = first;
  out.last = last;
  out.time = readInt(frame, T, from);
  return first === first && last === last && first <= last;
};

/** spot.book_ticker: `u` is the book's update ID at that best bid/ask; it jumps by design ('ordered'). */
export const tickerKeys: KeyReader = (frame, out) => {
  clear(out);
  const u = readInt(frame, LAST_U, out.from);
  out.first = out.last = u;
  out.time = readInt(frame, T, out.from);
  return u === u;
};

/** Config type → the Gate channel. */
export const GATE_CHANNELS: Readonly<Record<string, string>> = {
  trades: 'spot.trades',
  order_book_update: 'spot.order_book_update',
  book_ticker: 'spot.book_ticker',
};

export const GATE_STREAM_TYPES: readonly string[] = Object.keys(GATE_CHANNELS);

export function gateStreamType(type: string): StreamType | null {
  const route = GATE_ROUTE;
  switch (type) {
    case 'trades':
      return { type, family: 'trade', sequence: { kind: 'contiguous', field: 'id_market' }, expectedIntervalMs: 0, route, keys: tradeKeys };
    case 'order_book_update':
      // 100 ms pushes of the 100-level book, only when it changed.
      return { type, family: 'depth', sequence: { kind: 'range', field: 'u' }, expectedIntervalMs: 0, route, keys: bookKeys };
    case 'book_ticker':
      return { type, family: 'bookTicker', sequence: { kind: 'ordered', field: 'u' }, expectedIntervalMs: 0, route, keys: tickerKeys };
  }
  return null;
}

/** Canonical id `<type>:<pair>`: `trades:BTC_USDT`, `order_book_update:ETH_USDT`. */
export function gateStreamName(symbol: string, type: string): string {
  return `${type}:${symbol}`;
}

export function gateTypeOf(stream: string): string {
  return stream.slice(0, stream.lastIndexOf(':'));
}

/** Gate currency pairs: `BTC_USDT`, `GT_USDT`, `1INCH_USDT`. */
export function isGateSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{1,20}_[A-Z0-9]{2,10}$/.test(symbol);
}
