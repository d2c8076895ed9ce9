/**
 * Bitget v2 public stream types and how to read their sequence keys (facts sheet "Bitget": [G3]
 * https://www.bitget.com/api-doc/spot/websocket/public/Depth-Channel, [G4] …/Trades-Channel). Key
 * readers start after the `arg` object (out.from, set by readBitgetStream) and never JSON.parse.
 *
 * The canonical id is `<channel>:<instId>` (`books:BTCUSDT`); the instType is the venue's.
 */
import { QUOTE, findKey, intAt, keyPattern, readInt, startsWith } from '../bytes.js';
import { KEY_RESET, type FrameKeys, type KeyReader, type StreamType } from '../types.js';

export const BITGET_ROUTE = '/v2/ws/public';

/** The v2 candle channels ([G3] family pages: "candle1m" … "candle1Mutc"). */
export const BITGET_CANDLES = ['1m', '5m', '15m', '30m', '1H', '4H', '6H', '12H', '1D', '3D', '1W', '1M', '6Hutc', '12Hutc', '1Dutc', '3Dutc', '1Wutc', '1Mutc'] as const;

const DATA = keyPattern('data');
const ACTION = keyPattern('action');
const TS = keyPattern('ts');
const SEQ = keyPattern('seq');
const PSEQ = keyPattern('pseq');
const SNAPSHOT = Buffer.from('"snapshot"');
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
/** 10^15: below 2^53, so every value modulo it is an exact double. */
const TAIL_DIGITS = 15;

function clear(out: FrameKeys): void {
  out.first = out.last = out.prev = out.time = NaN;
  out.flags = 0;
}

/**
 * The integer at `p` (bare or quoted), losslessly where it matters: a value of up to 15 digits is
 * read whole; a longer one (Bitget's UTA `seq` 1304314508780744705 exceeds 2^53, and JSON.parse
 * would round it) as its last 15 digits, which are exact. Differences and links between two such
 * values are then exact as long as they share their leading digits, which changes once every
 * 10^15 sequence numbers (a fall the router treats as a new epoch). NaN when there is no integer.
 */
export function seqAt(buf: Buffer, p: number): number {
  if (p < 0) return NaN;
  if (buf[p] === QUOTE) p++;
  let end = p;
  while (end < buf.length && buf[end]! >= 0x30 && buf[end]! <= 0x39) end++;
  if (end === p) return NaN;
  let v = 0;
  for (let i = Math.max(p, end - TAIL_DIGITS); i < end; i++) v = v * 10 + (buf[i]! - 0x30);
  return v;
}

/** Is the frame an action `snapshot` (the key comes before `arg` in v2 pushes)? */
function isSnapshot(frame: Buffer): boolean {
  const a = findKey(frame, ACTION, 0);
  return a !== -1 && startsWith(frame, SNAPSHOT, a);
}

/** Offset just after the array that opens at `p` (strings skipped), or -1. */
function arrayEnd(frame: Buffer, p: number): number {
  if (frame[p] !== OPEN_BRACKET) return -1;
  let depth = 0;
  for (let i = p; i < frame.length; i++) {
    const c = frame[i];
    if (c === QUOTE) {
      i++;
      while (i < frame.length && frame[i] !== QUOTE) i++;
    } else if (c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACKET && --depth === 0) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * The largest `ts` of the objects in data[] (opening at `from`), or NaN: the push's own `ts`
 * after the array is the send time, not the event's.
 */
function maxTs(frame: Buffer, from: number): number {
  const to = arrayEnd(frame, from);
  if (to === -1) return NaN;
  let max = NaN;
  for (let p = findKey(frame, TS, from, to); p !== -1; p = findKey(frame, TS, p, to)) {
    const v = intAt(frame, p);
    if (v !== v) return NaN;
    if (!(v <= max)) max = v;
  }
  return max;
}

/**
 * trade: "No contiguity documented" for `tradeId` (and its v3 form exceeds 2^53), so ordered by
 * the largest fill `ts` in data[], with ties. The first push is a `snapshot` of recent trades:
 * what the daemon already has falls at or below the last key and is a duplicate; what came after
 * it (after a reconnect) is new.
 */
export const tradeKeys: KeyReader = (frame, out) => {
  clear(out);
  const d = findKey(frame, DATA, out.from);
  if (d === -1) return false;
  const ts = maxTs(frame, d);
  out.first = out.last = out.time = ts;
  return ts === ts;
};

/**
 * books: `seq` "incrementing except during symbol maintenance" [G3]. Where the frame carries
 * `pseq` (the previous push's `seq`: v3, and v2 captures), the chain is checked (`linked`); where it
 * does not, prev stays NaN and the router expects seq = last + 1, the documented increment. A
 * snapshot (`"action":"snapshot"`: the first push, a resubscribe) or pseq 0 (a restart [G5]) starts
 * a new epoch. Both values are read losslessly (seqAt).
 */
export const bookKeys: KeyReader = (frame, out) => {
  clear(out);
  const d = findKey(frame, DATA, out.from);
  const to = d === -1 ? -1 : arrayEnd(frame, d);
  if (to === -1) return false;
  const seq = seqAt(frame, findKey(frame, SEQ, d, to));
  const pp = findKey(frame, PSEQ, d, to);
  const prev = pp === -1 ? NaN : seqAt(frame, pp);
  out.first = out.last = seq;
  out.prev = prev;
  out.time = readInt(frame, TS, d, to);
  out.flags = isSnapshot(frame) || prev === 0 ? KEY_RESET : 0;
  return seq === seq;
};

/** books1/5/15 (a full snapshot every push) and ticker: ordered by the push's `ts` in data[], ties. */
export const tsKeys: KeyReader = (frame, out) => {
  clear(out);
  const d = findKey(frame, DATA, out.from);
  const ts = d === -1 ? NaN : maxTs(frame, d);
  out.first = out.last = out.time = ts;
  return ts === ts;
};

/** Candles: data[] holds arrays whose first element is the candle start; the largest, ties. */
export const candleKeys: KeyReader = (frame, out) => {
  clear(out);
  const p = findKey(frame, DATA, out.from);
  if (p === -1 || frame[p] !== OPEN_BRACKET) return false;
  const n = frame.length;
  let max = NaN;
  let i = p + 1;
  for (;;) {
    if (frame[i] !== OPEN_BRACKET) return false;
    const v = intAt(frame, i + 1);
    if (v !== v) return false;
    if (!(v <= max)) max = v;
    while (i < n && frame[i] !== CLOSE_BRACKET) i++;
    i++;
    if (frame[i] === COMMA) i++;
    else if (frame[i] === CLOSE_BRACKET) break;
    else return false;
  }
  out.first = out.last = max;
  return true;
};

/** The stream type `type` (as written in config), or null when Bitget v2 has no such public channel. */
export function bitgetStreamType(type: string): StreamType | null {
  const route = BITGET_ROUTE;
  switch (type) {
    case 'trade':
      return { type, family: 'trade', sequence: { kind: 'ordered', field: 'ts', ties: true }, expectedIntervalMs: 0, route, keys: tradeKeys };
    case 'books':
      // Updates every 200 ms while the book changes [G3].
      return { type, family: 'book', sequence: { kind: 'linked', field: 'seq' }, expectedIntervalMs: 0, route, keys: bookKeys };
    case 'books1':
    case 'books5':
    case 'books15':
      // Snapshots only ("books1" 60 ms, the others 200 ms, when changed [G3]): nothing missed can show.
      return { type, family: type === 'books1' ? 'bookTicker' : 'bookPartial', sequence: { kind: 'ordered', field: 'ts', ties: true }, expectedIntervalMs: 0, route, keys: tsKeys };
    case 'ticker':
      return { type, family: 'ticker', sequence: { kind: 'ordered', field: 'ts', ties: true }, expectedIntervalMs: 0, route, keys: tsKeys };
  }
  if (type.startsWith('candle') && (BITGET_CANDLES as readonly string[]).includes(type.slice(6))) {
    return { type, family: 'kline', sequence: { kind: 'ordered', field: 'ts', ties: true }, expectedIntervalMs: 0, route, keys: candleKeys };
  }
  return null;
}

export const BITGET_STREAM_TYPES: readonly string[] = ['trade', 'books', 'books1', 'books5', 'books15', 'ticker', ...BITGET_CANDLES.map((c) => `candle${c}`)];

export function bitgetStreamName(symbol: string, type: string): string {
  return `${type}:${symbol}`;
}

export function bitgetTypeOf(stream: string): string {
  return stream.slice(0, stream.lastIndexOf(':'));
}

/** Bitget v2 symbols: `BTCUSDT` (spot and USDT-M futures alike, upper case, no separator). */
export function isBitgetSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{2,30}$/.test(symbol);
}
