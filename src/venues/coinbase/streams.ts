/**
 * Coinbase Advanced Trade stream types and how to read their keys (facts sheet "Coinbase Advanced
 * Trade"; [C2] https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels).
 * No per-stream ID is contiguous or linked: the one sequence is the connection-wide `sequence_num`
 * (protocol.ts). Streams are ordered by the frame's `timestamp`.
 */
import { QUOTE, findKey, keyPattern, startsWith } from '../bytes.js';
import { KEY_RESET, type FrameKeys, type KeyReader, type StreamType } from '../types.js';

/** The market-data host serves every channel at its root [C1]. */
export const COINBASE_ROUTE = '/';

const TIMESTAMP = keyPattern('timestamp');
const TYPE = keyPattern('type');
const SNAPSHOT = Buffer.from('"snapshot"');

/** Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function digits(buf: Buffer, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = buf[p + i]! - 0x30;
    if (c < 0 || c > 9) return NaN;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Epoch ms of the RFC 3339 UTC time in quotes at `p` (`"2023-02-09T20:19:35.39625135Z"`: Coinbase
 * sends up to nanoseconds; below the ms is dropped), or NaN. No Date object per message.
 */
export function isoMsAt(buf: Buffer, p: number): number {
  if (p === -1 || buf[p] !== QUOTE || p + 21 > buf.length) return NaN;
  const q = p + 1;
  if (buf[q + 4] !== 0x2d || buf[q + 7] !== 0x2d || (buf[q + 10] !== 0x54 && buf[q + 10] !== 0x20) || buf[q + 13] !== 0x3a || buf[q + 16] !== 0x3a) return NaN;
  const y = digits(buf, q, 4);
  const mo = digits(buf, q + 5, 2);
  const d = digits(buf, q + 8, 2);
  const h = digits(buf, q + 11, 2);
  const mi = digits(buf, q + 14, 2);
  const s = digits(buf, q + 17, 2);
  if (!(mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60)) return NaN;
  let ms = 0;
  let i = q + 19;
  if (buf[i] === 0x2e) {
    i++;
    let scale = 100;
    for (; i < buf.length; i++) {
      const c = buf[i]! - 0x30;
      if (c < 0 || c > 9) break;
      ms += c * scale;
      scale /= 10;
    }
    ms = Math.floor(ms);
  }
  if (buf[i] !== 0x5a) return NaN; // only UTC ("Z") is read
  return (daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000 + ms;
}

/**
 * Every channel: ordered by the frame's `timestamp` ('ordered', ties: two frames may share a ms).
 * The first event of type `snapshot` (level2's book, the trades and tickers sent on subscribe)
 * starts a new epoch: a snapshot stands alone and is never taken for a repeat.
 */
export const timestampKeys: KeyReader = (frame: Buffer, out: FrameKeys) => {
  out.first = out.last = out.prev = out.time = NaN;
  out.flags = 0;
  const ts = isoMsAt(frame, findKey(frame, TIMESTAMP, 0, out.from));
  const t = findKey(frame, TYPE, out.from);
  if (t !== -1 && startsWith(frame, SNAPSHOT, t)) out.flags = KEY_RESET;
  out.first = out.last = out.time = ts;
  return ts === ts;
};

/** Config type → the channel named in the subscribe message (and, but for level2, in its frames). */
export const COINBASE_STREAM_TYPES: readonly string[] = ['market_trades', 'level2', 'ticker', 'candles'];

export function coinbaseStreamType(type: string): StreamType | null {
  const route = COINBASE_ROUTE;
  const sequence = { kind: 'ordered', field: 'timestamp', ties: true } as const;
  switch (type) {
    case 'market_trades':
      // Trades batched over 250 ms, only when there are some [C2].
      return { type, family: 'trade', sequence, expectedIntervalMs: 0, route, keys: timestampKeys };
    case 'level2':
      return { type, family: 'depth', sequence, expectedIntervalMs: 0, route, keys: timestampKeys };
    case 'ticker':
      return { type, family: 'ticker', sequence, expectedIntervalMs: 0, route, keys: timestampKeys };
    case 'candles':
      // 5-minute candles, "updates every second" [C2] while the candle changes.
      return { type, family: 'kline', sequence, expectedIntervalMs: 0, route, keys: timestampKeys };
  }
  return null;
}

/** Canonical id `<channel>:<product>`: `level2:BTC-USD`, `market_trades:ETH-USD`. */
export function coinbaseStreamName(symbol: string, type: string): string {
  return `${type}:${symbol}`;
}

export function coinbaseTypeOf(stream: string): string {
  return stream.slice(0, stream.lastIndexOf(':'));
}

/** Coinbase product ids: `BTC-USD`, `ETH-USDC`, `1INCH-EUR`. */
export function isCoinbaseSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{1,20}-[A-Z0-9]{2,10}$/.test(symbol);
}
