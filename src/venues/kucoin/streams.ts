/**
 * KuCoin spot (classic API) public stream types and how to read their sequence keys (facts sheet
 * "KuCoin (classic API)": [K4] https://www.kucoin.com/docs-new/3470072w0 (match),
 * https://www.kucoin.com/docs-new/3470068w0 (level2)). Key readers start at `data` (out.from, set
 * by readKucoinStream) and never JSON.parse.
 *
 * A config stream type is the topic without `/market/`: `match`, `level2`, `ticker`, `snapshot`; the
 * canonical id is `<type>:<SYMBOL>` (`level2:BTC-USDT`).
 */
import { QUOTE, findKey, intAt, keyPattern, readInt } from '../bytes.js';
import type { FrameKeys, KeyReader, StreamType } from '../types.js';

/** Every KuCoin stream comes from the one endpoint the bullet reply names: one route. */
export const KUCOIN_ROUTE = '/';

const TIME = keyPattern('time');
/** One page copy of the ticker example spells it `Time`: both are read. */
const TIME_CAPITAL = keyPattern('Time');
const DATETIME = keyPattern('datetime');
const SEQUENCE_START = keyPattern('sequenceStart');
const SEQUENCE_END = keyPattern('sequenceEnd');

function clear(out: FrameKeys): void {
  out.first = out.last = out.prev = out.time = NaN;
  out.flags = 0;
}

/**
 * Milliseconds of a nanosecond timestamp written as a quoted or bare integer (`"time":"1729843222921000000"`):
 * the digits but the last six, read exactly. A ns value exceeds 2^53, so reading it whole and
 * dividing would round. NaN when there is no such value.
 */
export function nsToMsAt(buf: Buffer, p: number): number {
  if (p < 0) return NaN;
  if (buf[p] === QUOTE) p++;
  let end = p;
  while (end < buf.length && buf[end]! >= 0x30 && buf[end]! <= 0x39) end++;
  const digits = end - p;
  if (digits <= 6) return digits === 0 ? NaN : 0;
  let v = 0;
  for (let i = p; i < end - 6; i++) v = v * 10 + (buf[i]! - 0x30);
  return v;
}

/**
 * match (`trade.l3match`): "No contiguity documented" for `tradeId`, and `sequence` and `time`
 * (ns) exceed 2^53. Ordered by the fill time in ms, read exactly from the ns string, with ties:
 * several fills share a millisecond, and among them duplicates are told by their bytes.
 */
export const matchKeys: KeyReader = (frame, out) => {
  clear(out);
  const ms = nsToMsAt(frame, findKey(frame, TIME, out.from));
  out.first = out.last = out.time = ms;
  return ms === ms;
};

/**
 * level2 (`trade.l2update`): each update covers [sequenceStart, sequenceEnd]. KuCoin's continuity
 * rule is `sequenceStart(new) ≤ sequenceEnd(old) + 1` and `sequenceEnd(new) > sequenceEnd(old)`
 * ([K5] classic docs, "Level-2 Market Data"), which is the `range` rule: a later start leaves
 * [old end + 1, new start − 1] missed, an exact range. The values are below 2^53 (14701689783 in the
 * docs example). time = `time` (ms).
 */
export const level2Keys: KeyReader = (frame, out) => {
  clear(out);
  const first = readInt(frame, SEQUENCE_START, out.from);
  const last = readInt(frame, SEQUENCE_END, out.from);
  out.first = first;
  out.last = last;
  out.time = readInt(frame, TIME, out.from);
  return first === first && last === last && first <= last;
};

/** ticker: ordered by its push time `time` (ms), ties (a push per 100 ms at most, when changed). */
export const tickerKeys: KeyReader = (frame, out) => {
  clear(out);
  let p = findKey(frame, TIME, out.from);
  if (p === -1) p = findKey(frame, TIME_CAPITAL, out.from);
  const t = p === -1 ? NaN : intAt(frame, p);
  out.first = out.last = out.time = t;
  return t === t;
};

/** snapshot (`trade.snapshot`): ordered by the inner `datetime` (ms), ties. */
export const snapshotKeys: KeyReader = (frame, out) => {
  clear(out);
  const t = readInt(frame, DATETIME, out.from);
  out.first = out.last = out.time = t;
  return t === t;
};

/** The stream type `type` (as written in config), or null when KuCoin has no such public topic here. */
export function kucoinStreamType(type: string): StreamType | null {
  const route = KUCOIN_ROUTE;
  switch (type) {
    case 'match':
      return { type, family: 'trade', sequence: { kind: 'ordered', field: 'time', ties: true }, expectedIntervalMs: 0, route, keys: matchKeys };
    case 'level2':
      // Pushed as the book changes; nothing on a quiet book.
      return { type, family: 'book', sequence: { kind: 'range', field: 'sequence' }, expectedIntervalMs: 0, route, keys: level2Keys };
    case 'ticker':
      return { type, family: 'ticker', sequence: { kind: 'ordered', field: 'time', ties: true }, expectedIntervalMs: 0, route, keys: tickerKeys };
    case 'snapshot':
      // "Push frequency: once every 2s" [K4]: readiness allows it the usual margin.
      return { type, family: 'ticker', sequence: { kind: 'ordered', field: 'datetime', ties: true }, expectedIntervalMs: 2000, route, keys: snapshotKeys };
  }
  return null;
}

export const KUCOIN_STREAM_TYPES: readonly string[] = ['match', 'level2', 'ticker', 'snapshot'];

/** Canonical id `<type>:<SYMBOL>`: `match:BTC-USDT`. */
export function kucoinStreamName(symbol: string, type: string): string {
  return `${type}:${symbol}`;
}

export function kucoinTypeOf(stream: string): string {
  return stream.slice(0, stream.indexOf(':'));
}

/** KuCoin spot symbols: `BTC-USDT`, `ETH-BTC`, `1INCH-USDT` (base-quote, upper case). */
export function isKucoinSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{1,20}-[A-Z0-9]{2,10}$/.test(symbol);
}
