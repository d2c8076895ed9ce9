/**
 * Finds the channel and instrument of an OKX v5 push where they sit, without JSON.parse. Every push
 * starts `{"arg":{"channel":"X","instId":"Y"...},` (OKX docs-v5 "Push Data Example" of each
 * channel), while replies start with `id` or `event` and heartbeats are the bare text `pong`. Only
 * string values live inside `arg`, so its first `}` closes it; other keys there (instType, uid)
 * are tolerated in any order.
 */
import { QUOTE, findKey, keyPattern, latin1, stringEnd } from '../bytes.js';
import type { FrameKeys } from '../types.js';

const ARG_PREFIX = Buffer.from('{"arg":{');
const CHANNEL = keyPattern('channel');
const INST_ID = keyPattern('instId');
const CLOSE_BRACE = 0x7d;
const BACKSLASH = 0x5c;

/** Where the last located frame's names are: reused, so the hot path allocates nothing. */
const span = { channel: 0, channelEnd: 0, instId: 0, instIdEnd: 0 };

/**
 * Start of the non-empty, escape-free string value of `key` inside [from, to), or -1; its closing
 * quote goes to `valueEnd`.
 */
let valueEnd = 0;
function valueIn(frame: Buffer, key: Buffer, from: number, to: number): number {
  const p = findKey(frame, key, from, to);
  if (p === -1 || frame[p] !== QUOTE) return -1;
  const end = stringEnd(frame, p);
  if (end <= p + 1 || end >= to) return -1;
  for (let i = p + 1; i < end; i++) if (frame[i] === BACKSLASH) return -1;
  valueEnd = end;
  return p + 1;
}

/**
 * Offset just after the `arg` object of a push, or -1 when `frame` is not one; fills `span` with the
 * offsets of the channel and instId strings.
 */
export function locateArg(frame: Buffer): number {
  const n = frame.length;
  const start = ARG_PREFIX.length;
  if (n <= start) return -1;
  for (let i = 0; i < start; i++) if (frame[i] !== ARG_PREFIX[i]) return -1;
  let close = start;
  while (close < n && frame[close] !== CLOSE_BRACE) close++;
  if (close >= n) return -1;
  span.channel = valueIn(frame, CHANNEL, start, close);
  if (span.channel === -1) return -1;
  span.channelEnd = valueEnd;
  span.instId = valueIn(frame, INST_ID, start, close);
  if (span.instId === -1) return -1;
  span.instIdEnd = valueEnd;
  return close + 1;
}

/** The venue's StreamReader: `{"arg":{"channel":"trades","instId":"BTC-USDT"},...` → `trades:BTC-USDT`. */
export function readOkxStream(frame: Buffer, out: FrameKeys): string | null {
  const after = locateArg(frame);
  if (after === -1) return null;
  out.from = after;
  return `${latin1(frame, span.channel, span.channelEnd)}:${latin1(frame, span.instId, span.instIdEnd)}`;
}

/** Canonical id → the subscribe arg: `books:BTC-USDT` → `{channel:'books', instId:'BTC-USDT'}`. */
export function okxArg(stream: string): { channel: string; instId: string } {
  const i = stream.lastIndexOf(':');
  return { channel: stream.slice(0, i), instId: stream.slice(i + 1) };
}
