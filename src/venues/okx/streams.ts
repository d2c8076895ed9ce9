/**
 * OKX v5 public stream types and how to read their sequence keys (facts sheet "OKX v5"; OKX
 * docs-v5 "WS / Trades channel", "WS / Order book channel", "WS / Tickers channel", "WS /
 * Candlesticks channel"). Key readers start after the `arg` object (out.from) and read only
 * `data[]` and `action`; `tradeId`, `count` and `ts` come as quoted strings, `seqId` as a number, and
 * intAt reads both.
 *
 * `expectedIntervalMs` is the longest silence OKX promises on an active market, 0 when it promises
 * none (readiness holds only streams with a promise against the feed, see Supervisor).
 */
import { findKey, intAt, keyPattern, readInt, startsWith } from '../bytes.js';
import { KEY_RESET, type FrameKeys, type KeyReader, type StreamType } from '../types.js';

export const PUBLIC_ROUTE = '/ws/v5/public';
/**
 * Candles moved to the business URL in 2023: subscribing on /public fails with 64001 "This channel
 * has been migrated to the '/business' URL" (docs-v5 "WS / Candlesticks channel": "URL Path
 * /ws/v5/business"; error-code table 64001). Streams on different routes never share a connection.
 */
export const BUSINESS_ROUTE = '/ws/v5/business';

/** The documented candle bars (docs-v5 "WS / Candlesticks channel", channel names). */
export const OKX_CANDLE_BARS = [
  '3M', '1M', '1W', '1D', '2D', '3D', '5D', '12H', '6H', '4H', '2H', '1H', '30m', '15m', '5m', '3m', '1m', '1s',
  '3Mutc', '1Mutc', '1Wutc', '1Dutc', '2Dutc', '3Dutc', '5Dutc', '12Hutc', '6Hutc',
] as const;

const DATA = keyPattern('data');
const ACTION = keyPattern('action');
const TRADE_ID = keyPattern('tradeId');
const COUNT = keyPattern('count');
const TS = keyPattern('ts');
const SEQ_ID = keyPattern('seqId');
const PREV_SEQ_ID = keyPattern('prevSeqId');
const SNAPSHOT = Buffer.from('"snapshot"');
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

function clear(out: FrameKeys): void {
  out.first = out.last = out.prev = out.time = NaN;
  out.flags = 0;
}

/**
 * trades: one message per taker order, and "tradeId is the last ID of `count` aggregated trades"
 * (docs: tradeId 123, count 3 = 123, 122, 121), contiguous per instrument. So an item covers
 * [tradeId - count + 1, tradeId]; the frame covers the smallest start to the largest tradeId of its
 * items. `count` is absent on one-trade messages (trades-all), which then cover one ID. Items hold
 * only scalar values, so each `{...}` in data[] is one item.
 */
export const tradeKeys: KeyReader = (frame, out) => {
  clear(out);
  const p = findKey(frame, DATA, out.from);
  if (p === -1 || frame[p] !== OPEN_BRACKET) return false;
  const n = frame.length;
  let first = NaN;
  let last = NaN;
  let time = NaN;
  let i = p + 1;
  for (;;) {
    while (i < n && frame[i] !== OPEN_BRACE && frame[i] !== CLOSE_BRACKET) i++;
    if (i >= n) return false;
    if (frame[i] === CLOSE_BRACKET) break;
    let end = i + 1;
    while (end < n && frame[end] !== CLOSE_BRACE) end++;
    if (end >= n) return false;
    const id = readInt(frame, TRADE_ID, i, end);
    if (id !== id) return false;
    const c = findKey(frame, COUNT, i, end);
    const count = c === -1 ? 1 : intAt(frame, c);
    if (!(count >= 1)) return false;
    const lo = id - count + 1;
    if (!(lo >= first)) first = lo;
    if (!(id <= last)) last = id;
    time = readInt(frame, TS, i, end);
    i = end + 1;
  }
  if (last !== last) return false;
  out.first = first;
  out.last = last;
  out.time = time;
  return true;
};

/**
 * books: each update names the previous one's `seqId` in `prevSeqId`; steps are arbitrary, so a
 * broken link is a gap of unknown size ('linked'). A new epoch starts with a snapshot
 * (`"action":"snapshot"`, `prevSeqId` -1) and after maintenance, when "users will receive an
 * incremental message with seqId smaller than prevSeqId" and the chain goes on from there: both are
 * flagged so a key that falls back is not taken for a run of duplicates. The idle heartbeat
 * (empty asks/bids, seqId = prevSeqId) reads as a repeat of the last key. `checksum` is deprecated
 * and always 0 since 2026-06-23: it is never read.
 */
export const bookKeys: KeyReader = (frame, out) => {
  clear(out);
  const a = findKey(frame, ACTION, out.from);
  const snapshot = a !== -1 && startsWith(frame, SNAPSHOT, a);
  const prev = readInt(frame, PREV_SEQ_ID, out.from);
  // The last seqId of data[] (one item in practice; a chain of several ends with the last).
  let seq = NaN;
  for (let p = findKey(frame, SEQ_ID, out.from); p !== -1; p = findKey(frame, SEQ_ID, p)) seq = intAt(frame, p);
  out.first = out.last = seq;
  out.prev = prev;
  out.time = readInt(frame, TS, out.from);
  out.flags = snapshot || prev === -1 || seq < prev ? KEY_RESET : 0;
  return seq === seq && prev === prev;
};

/**
 * Ordered by the generation time `ts` (tickers; books5 and bbo-tbt, see okxStreamType for why not
 * their seqId).
 */
export const tsKeys: KeyReader = (frame, out) => {
  clear(out);
  const ts = readInt(frame, TS, out.from);
  out.first = out.last = out.time = ts;
  return ts === ts;
};

/**
 * Candles: `data` is an array of arrays whose first element is the candle's start. Every update of
 * an open candle shares it ('ties'). The start is not an event time: `time` stays NaN.
 */
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

/** The stream type `type` (as written in config), or null when OKX has no such public channel. */
export function okxStreamType(type: string): StreamType | null {
  const route = PUBLIC_ROUTE;
  switch (type) {
    case 'trades':
      return { type, family: 'trade', sequence: { kind: 'contiguous', field: 'tradeId' }, expectedIntervalMs: 0, route, keys: tradeKeys };
    case 'books':
      // Deltas every 100 ms while the book changes; when idle "around 60 seconds" an empty update.
      return { type, family: 'book', sequence: { kind: 'linked', field: 'seqId' }, expectedIntervalMs: 60_000, route, keys: bookKeys };
    case 'books5':
    case 'bbo-tbt':
      // Full snapshots (5 levels every 100 ms, 1 level every 10 ms, when changed; re-sent after
      // about 60 s idle). Ordered by `ts`, not `seqId`: "the sequence number may be reset due to
      // maintenance", and with no prevSeqId on these channels nothing would show the reset, so
      // everything after it would look like duplicates. `ts` does not fall back; pushes sharing
      // a ms are told apart by their bytes ('ties').
      return {
        type,
        family: type === 'books5' ? 'bookPartial' : 'bookTicker',
        sequence: { kind: 'ordered', field: 'ts', ties: true },
        expectedIntervalMs: 60_000,
        route,
        keys: tsKeys,
      };
    case 'tickers':
      // "There will be no update if the event is not triggered."
      return { type, family: 'ticker', sequence: { kind: 'ordered', field: 'ts' }, expectedIntervalMs: 0, route, keys: tsKeys };
  }
  if (type.startsWith('candle') && (OKX_CANDLE_BARS as readonly string[]).includes(type.slice(6))) {
    // Only the fastest push interval (1 s) is documented, not a longest silence. The docs name the
    // candle's start (data[i][0]) `ts`.
    return { type, family: 'kline', sequence: { kind: 'ordered', field: 'ts', ties: true }, expectedIntervalMs: 0, route: BUSINESS_ROUTE, keys: candleKeys };
  }
  return null;
}

/** Every configurable stream type, for docs and tests. */
export const OKX_STREAM_TYPES: readonly string[] = ['trades', 'books', 'books5', 'bbo-tbt', 'tickers', ...OKX_CANDLE_BARS.map((b) => `candle${b}`)];

/** Canonical id `<channel>:<instId>`: `trades:BTC-USDT`, `books:BTC-USDT-SWAP`. */
export function okxStreamName(symbol: string, type: string): string {
  return `${type}:${symbol}`;
}

export function okxTypeOf(stream: string): string {
  return stream.slice(0, stream.lastIndexOf(':'));
}

/**
 * OKX instrument IDs: spot `BTC-USDT`, perpetual swaps `BTC-USDT-SWAP`, futures `BTC-USD-250328`,
 * options `BTC-USD-250328-60000-C`.
 */
export function isOkxSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{1,20}-[A-Z0-9]{2,10}(?:-SWAP|-\d{6}(?:-\d+(?:\.\d+)?-[CP])?)?$/.test(symbol);
}
