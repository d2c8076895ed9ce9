/**
 * Finds the channel and instrument of a Bitget v2 push without JSON.parse. A push is
 * `{"action":"snapshot"|"update","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},"data":[…],"ts":…}`
 * ([G3][G4] push examples); a reply is `{"event":"subscribe"|"error",…,"arg":{…}}` and the heartbeat
 * the bare text `pong`. So: not an `event`, an `arg` object near the start (only string values: its
 * first `}` closes it), then `data`.
 */
import { QUOTE, findKey, keyPattern, latin1, startsWith, stringEnd } from '../bytes.js';
import type { FrameKeys } from '../types.js';

const ARG = keyPattern('arg');
const CHANNEL = keyPattern('channel');
const INST_ID = keyPattern('instId');
const DATA = keyPattern('data');
const EVENT_PREFIX = Buffer.from('{"event"');
/** `{"action":"snapshot",` comes first in v2 pushes: `arg` opens within this many bytes. */
const HEAD_BYTES = 48;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const BACKSLASH = 0x5c;

const span = { channel: 0, channelEnd: 0, instId: 0, instIdEnd: 0 };

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
 * Offset just after the `arg` object of a push (not a reply), or -1; fills `span`.
 */
export function locateArg(frame: Buffer): number {
  if (startsWith(frame, EVENT_PREFIX)) return -1;
  const a = findKey(frame, ARG, 0, Math.min(frame.length, HEAD_BYTES));
  if (a === -1 || frame[a] !== OPEN_BRACE) return -1;
  const n = frame.length;
  let close = a + 1;
  while (close < n && frame[close] !== CLOSE_BRACE) close++;
  if (close >= n) return -1;
  span.channel = valueIn(frame, CHANNEL, a, close);
  if (span.channel === -1) return -1;
  span.channelEnd = valueEnd;
  span.instId = valueIn(frame, INST_ID, a, close);
  if (span.instId === -1) return -1;
  span.instIdEnd = valueEnd;
  if (findKey(frame, DATA, close + 1) === -1) return -1;
  return close + 1;
}

/** The venue's StreamReader: `…"arg":{…"channel":"books","instId":"BTCUSDT"},…` → `books:BTCUSDT`. */
export function readBitgetStream(frame: Buffer, out: FrameKeys): string | null {
  const after = locateArg(frame);
  if (after === -1) return null;
  out.from = after;
  return `${latin1(frame, span.channel, span.channelEnd)}:${latin1(frame, span.instId, span.instIdEnd)}`;
}

/** Canonical id → the subscribe arg's channel and instId. */
export function bitgetArg(stream: string): { channel: string; instId: string } {
  const i = stream.lastIndexOf(':');
  return { channel: stream.slice(0, i), instId: stream.slice(i + 1) };
}
