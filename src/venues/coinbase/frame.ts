/**
 * Finds the channel and product of a Coinbase Advanced Trade push where they sit, without
 * JSON.parse, and the connection's `sequence_num`. Every message is
 * `{"channel":"X","client_id":"","timestamp":"…","sequence_num":N,"events":[…]}` [C2][C4]; the
 * product is the first `product_id` inside `events`. level2 frames arrive on channel `l2_data`.
 */
import { QUOTE, findKey, keyPattern, latin1, readInt, startsWith, stringEnd } from '../bytes.js';
import type { FrameKeys } from '../types.js';

const CHANNEL = keyPattern('channel');
const EVENTS = keyPattern('events');
const PRODUCT_ID = keyPattern('product_id');
const SEQUENCE_NUM = keyPattern('sequence_num');
const BACKSLASH = 0x5c;

/** Frame channel → canonical stream type, for the data channels only. */
const DATA_CHANNELS: ReadonlyArray<[Buffer, string]> = [
  [Buffer.from('"l2_data"'), 'level2'],
  [Buffer.from('"market_trades"'), 'market_trades'],
  [Buffer.from('"ticker"'), 'ticker'],
  [Buffer.from('"candles"'), 'candles'],
];

/** Where `events` starts in the last frame looked at, or -1. */
export function eventsAt(frame: Buffer): number {
  return findKey(frame, EVENTS, 0);
}

/** The connection-wide `sequence_num` of any message (data, heartbeats, subscriptions), or NaN. */
export function readSequenceNum(frame: Buffer, to = frame.length): number {
  return readInt(frame, SEQUENCE_NUM, 0, to);
}

/** The channel of a message (`heartbeats`, `subscriptions`, `l2_data`…), or null. */
export function channelOf(frame: Buffer): string | null {
  const c = findKey(frame, CHANNEL, 0);
  if (c === -1 || frame[c] !== QUOTE) return null;
  const end = stringEnd(frame, c);
  return end === -1 ? null : latin1(frame, c + 1, end);
}

/** The venue's StreamReader: `{"channel":"l2_data",…,"events":[{…"product_id":"BTC-USD"…` → `level2:BTC-USD`. */
export function readCoinbaseStream(frame: Buffer, out: FrameKeys): string | null {
  const c = findKey(frame, CHANNEL, 0);
  if (c === -1) return null;
  let type: string | null = null;
  for (const [name, t] of DATA_CHANNELS) {
    if (startsWith(frame, name, c)) {
      type = t;
      break;
    }
  }
  if (type === null) return null;
  const e = findKey(frame, EVENTS, c);
  if (e === -1) return null;
  const p = findKey(frame, PRODUCT_ID, e);
  if (p === -1 || frame[p] !== QUOTE) return null;
  const end = stringEnd(frame, p);
  if (end <= p + 1) return null;
  for (let i = p + 1; i < end; i++) if (frame[i] === BACKSLASH) return null;
  out.from = e;
  return `${type}:${latin1(frame, p + 1, end)}`;
}
