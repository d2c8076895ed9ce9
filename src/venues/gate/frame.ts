/**
 * Finds the channel and pair of a Gate.io spot v4 push where they sit, without JSON.parse. A push is
 * `{"time":N,"time_ms":N,"channel":"spot.X","event":"update","result":{...}}` [T1]; replies to our
 * requests carry `"event":"subscribe"` / `"unsubscribe"`, pongs `"channel":"spot.pong"`, so only
 * `event` "update" is data. The pair is `currency_pair` in spot.trades and `s` elsewhere.
 */
import { QUOTE, findKey, keyPattern, latin1, startsWith, stringEnd } from '../bytes.js';
import type { FrameKeys } from '../types.js';

const CHANNEL = keyPattern('channel');
const EVENT = keyPattern('event');
const RESULT = keyPattern('result');
const CURRENCY_PAIR = keyPattern('currency_pair');
const S = keyPattern('s');
const UPDATE = Buffer.from('"update"');
const SPOT = Buffer.from('"spot.');
const TRADES = Buffer.from('"spot.trades"');
const OPEN_BRACE = 0x7b;
const BACKSLASH = 0x5c;

/** A non-empty escape-free string at p (a quote): its end quote, or -1. */
function plainString(frame: Buffer, p: number): number {
  if (p === -1 || frame[p] !== QUOTE) return -1;
  const end = stringEnd(frame, p);
  if (end <= p + 1) return -1;
  for (let i = p + 1; i < end; i++) if (frame[i] === BACKSLASH) return -1;
  return end;
}

/** The venue's StreamReader: `{"channel":"spot.trades",...,"result":{"currency_pair":"BTC_USDT"...` → `trades:BTC_USDT`. */
export function readGateStream(frame: Buffer, out: FrameKeys): string | null {
  const c = findKey(frame, CHANNEL, 0);
  if (c === -1 || !startsWith(frame, SPOT, c)) return null;
  const cEnd = plainString(frame, c);
  if (cEnd === -1) return null;
  const e = findKey(frame, EVENT, 0);
  if (e === -1 || !startsWith(frame, UPDATE, e)) return null;
  const r = findKey(frame, RESULT, 0);
  if (r === -1 || frame[r] !== OPEN_BRACE) return null;
  const s = findKey(frame, startsWith(frame, TRADES, c) ? CURRENCY_PAIR : S, r);
  const sEnd = plainString(frame, s);
  if (sEnd === -1) return null;
  out.from = r;
  return `${latin1(frame, c + SPOT.length, cEnd)}:${latin1(frame, s + 1, sEnd)}`;
}
