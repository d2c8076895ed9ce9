/**
 * Bybit v5 public stream types and how to read their sequence keys (facts sheet "Bybit v5";
 * bybit-exchange/docs docs/v5/websocket/public/{trade,orderbook,ticker,kline}.mdx). Spot and linear
 * share the topics and payloads; only the route differs.
 *
 * `expectedIntervalMs` is the longest silence Bybit promises on an active market, 0 when it promises
 * none (readiness holds only streams with a promise against the feed, see Supervisor).
 */
import { findKey, intAt, keyPattern, readInt, startsWith } from '../bytes.js';
import { KEY_RESET, type KeyReader, type StreamType } from '../types.js';

const T = keyPattern('T');
const TS = keyPattern('ts');
const U = keyPattern('u');
const TYPE = keyPattern('type');
const START = keyPattern('start');
const SNAPSHOT = Buffer.from('"snapshot"');

/** Kline intervals (kline.mdx "Available intervals"): minutes, then day, week, month. */
export const BYBIT_KLINE_INTERVALS = ['1', '3', '5', '15', '30', '60', '120', '240', '360', '720', 'D', 'W', 'M'] as const;

/** Book depths (orderbook.mdx "Depths": 10/20/100/200 ms pushes, the same on spot and linear). */
const BOOK_DEPTHS = ['1', '50', '200', '1000'] as const;

/**
 * The largest integer value of `key` in the frame from `from` on (NaN when there is none, or when one
 * of them is not an integer: a frame with a broken key is malformed, not partly read).
 */
function maxInt(frame: Buffer, key: Buffer, from: number): number {
  let max = NaN;
  for (let p = findKey(frame, key, from); p !== -1; p = findKey(frame, key, p)) {
    const v = intAt(frame, p);
    if (v !== v) return NaN;
    if (!(v <= max)) max = v;
  }
  return max;
}

/**
 * publicTrade: trade IDs (`i`) are not contiguous and on linear they are UUIDs (trade.mdx example;
 * facts sheet: "No contiguity promised"), so the order key is the fill time `T`. One message may
 * carry up to 1024 trades and several messages may share a `T`: the key is the largest `T` in
 * `data[]`, and the rule says `ties` so that the router tells duplicates among equal keys by bytes.
 */
export const tradeKeys: KeyReader = (frame, out) => {
  const t = maxInt(frame, T, out.from);
  out.first = out.last = t;
  out.prev = NaN;
  out.time = readInt(frame, TS, out.from);
  out.flags = 0;
  return t === t;
};

/**
 * orderbook.{depth}: ordered by the update ID `u`. No rule promises `u` steps by 1 on these topics
 * (only orderbook.full does; facts sheet "book", "Still uncertain"), so a jump is not a gap. A
 * `snapshot` resets the book at any time, and `u` = 1 means the service restarted (also a snapshot):
 * both start a new epoch, so a key falling back to 1 is not mistaken for a run of duplicates. On
 * level 1 every message is a snapshot (orderbook.mdx), so every level-1 message carries the flag.
 */
export const bookKeys: KeyReader = (frame, out) => {
  const u = readInt(frame, U, out.from);
  const p = findKey(frame, TYPE, out.from);
  const snapshot = p !== -1 && startsWith(frame, SNAPSHOT, p);
  out.first = out.last = u;
  out.prev = NaN;
  out.time = readInt(frame, TS, out.from);
  out.flags = snapshot || u === 1 ? KEY_RESET : 0;
  return u === u;
};

/** tickers: ordered by the generation time `ts`; there is no ID to find a gap with. */
export const tickerKeys: KeyReader = (frame, out) => {
  const ts = readInt(frame, TS, out.from);
  out.first = out.last = out.time = ts;
  out.prev = NaN;
  out.flags = 0;
  return ts === ts;
};

/**
 * kline: ordered by the candle's `start`. Every update of an open candle shares its `start`, hence
 * `ties` (the bytes differ, so none is taken for a duplicate). `start` never falls back, which `ts`
 * is not promised to do: the docs example gives it the value of the candle's last match time.
 */
export const klineKeys: KeyReader = (frame, out) => {
  const start = maxInt(frame, START, out.from);
  out.first = out.last = start;
  out.prev = NaN;
  out.time = readInt(frame, TS, out.from);
  out.flags = 0;
  return start === start;
};

/** The stream type `type` (as written in config) on `route`, or null when Bybit has no such topic. */
export function bybitStreamType(type: string, route: string): StreamType | null {
  if (type === 'publicTrade') {
    return { type, family: 'trade', sequence: { kind: 'ordered', field: 'T', ties: true }, expectedIntervalMs: 0, route, keys: tradeKeys };
  }
  if (type === 'tickers') {
    // Pushes only what changed, when it changed (ticker.mdx): no interval is promised.
    return { type, family: 'ticker', sequence: { kind: 'ordered', field: 'ts' }, expectedIntervalMs: 0, route, keys: tickerKeys };
  }
  let m = /^orderbook\.(\d+)$/.exec(type);
  if (m && (BOOK_DEPTHS as readonly string[]).includes(m[1]!)) {
    // Deltas come only when the book changes; level 1 re-sends its snapshot after 3 s unchanged.
    const expectedIntervalMs = m[1] === '1' ? 3000 : 0;
    return { type, family: 'book', sequence: { kind: 'ordered', field: 'u' }, expectedIntervalMs, route, keys: bookKeys };
  }
  m = /^kline\.(\w+)$/.exec(type);
  if (m && (BYBIT_KLINE_INTERVALS as readonly string[]).includes(m[1]!)) {
    // "Push frequency: 1-60s" (kline.mdx).
    return { type, family: 'kline', sequence: { kind: 'ordered', field: 'start', ties: true }, expectedIntervalMs: 60_000, route, keys: klineKeys };
  }
  return null;
}

/** Every configurable stream type, for docs and tests. */
export const BYBIT_STREAM_TYPES: readonly string[] = [
  'publicTrade',
  ...BOOK_DEPTHS.map((d) => `orderbook.${d}`),
  'tickers',
  ...BYBIT_KLINE_INTERVALS.map((i) => `kline.${i}`),
];

/** Canonical id `<type>:<SYMBOL>`: `publicTrade:BTCUSDT`, `orderbook.50:BTCUSDT`. */
export function bybitStreamName(symbol: string, type: string): string {
  return `${type}:${symbol}`;
}

export function bybitTypeOf(stream: string): string {
  return stream.slice(0, stream.lastIndexOf(':'));
}

/** Spot pairs: upper-case letters and digits, as Bybit spells them (`BTCUSDT`). */
export function isBybitSpotSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{2,25}$/.test(symbol);
}

/**
 * Linear: perpetuals (`BTCUSDT`, `BTCPERP`), dated USDT futures (`BTCUSDT-15AUG25`) and USDC futures
 * (`BTC-26DEC25`), as in the docs' examples.
 */
export function isBybitLinearSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{2,25}(?:-\d{1,2}[A-Z]{3}\d{2})?$/.test(symbol);
}
