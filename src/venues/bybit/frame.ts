/**
 * Finds the topic of a Bybit v5 public data frame where it sits, without JSON.parse. Every public
 * push starts `{"topic":"<topic>",...` (bybit-exchange/docs v5/websocket/public/*: trade, orderbook,
 * ticker, kline), while replies and pongs start with `success`, `op` or `args`, so the first bytes
 * tell a data frame from a control frame. The topic is `<type>.<SYMBOL>` with the type itself
 * dotted (`orderbook.50`, `kline.5`), so the canonical id replaces the LAST dot with `:`.
 */
import { QUOTE, latin1 } from '../bytes.js';
import type { FrameKeys } from '../types.js';

const TOPIC_PREFIX = Buffer.from('{"topic":"');
const DOT = 0x2e;
const BACKSLASH = 0x5c;

/**
 * Offset of the last `.` in the topic of a data frame, or -1 when `frame` is not one. The topic
 * must close its quote, hold no escape, and have text on both sides of the dot. No allocation: the
 * protocol's hot path calls this for every frame.
 */
export function topicDot(frame: Buffer): number {
  const n = frame.length;
  const start = TOPIC_PREFIX.length;
  if (n <= start) return -1;
  for (let i = 0; i < start; i++) if (frame[i] !== TOPIC_PREFIX[i]) return -1;
  let dot = -1;
  let end = start;
  for (; end < n; end++) {
    const c = frame[end]!;
    if (c === QUOTE) break;
    if (c === BACKSLASH || c < 0x20) return -1;
    if (c === DOT) dot = end;
  }
  if (end >= n || dot <= start || dot >= end - 1) return -1;
  return dot;
}

/** The closing quote of the topic whose last dot is at `dot` (call only after topicDot succeeded). */
function topicEnd(frame: Buffer, dot: number): number {
  let end = dot + 1;
  while (frame[end] !== QUOTE) end++;
  return end;
}

/**
 * The venue's StreamReader: `publicTrade.BTCUSDT` → `publicTrade:BTCUSDT`,
 * `orderbook.50.BTCUSDT` → `orderbook.50:BTCUSDT`. Key readers start after the topic: the payload's
 * key order varies (orderbook page: `ts` before `type` on spot and on futures level 1, after it
 * elsewhere), so they search the rest of the frame rather than a fixed position.
 */
export function readBybitStream(frame: Buffer, out: FrameKeys): string | null {
  const dot = topicDot(frame);
  if (dot === -1) return null;
  const end = topicEnd(frame, dot);
  out.from = end + 1;
  return `${latin1(frame, TOPIC_PREFIX.length, dot)}:${latin1(frame, dot + 1, end)}`;
}

/** Canonical id → the topic Bybit subscribes by: `orderbook.50:BTCUSDT` → `orderbook.50.BTCUSDT`. */
export function bybitTopic(stream: string): string {
  const i = stream.lastIndexOf(':');
  return `${stream.slice(0, i)}.${stream.slice(i + 1)}`;
}
