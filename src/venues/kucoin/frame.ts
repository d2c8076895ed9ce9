/**
 * Finds the topic of a KuCoin push without JSON.parse. Every push is
 * `{"topic":"/market/<type>:<SYMBOL>","type":"message","subject":…,"data":{…}}` — or with `type`
 * first, as the ticker's docs example shows ([K4]) — while replies (`welcome`, `ack`, `pong`,
 * `error`) carry no `topic`. So the reader looks for `"topic":"/market/` near the start, in any
 * order of the leading keys, and then for `data`.
 */
import { QUOTE, findKey, keyPattern, latin1 } from '../bytes.js';
import type { FrameKeys } from '../types.js';

const TOPIC = keyPattern('topic');
const DATA = keyPattern('data');
const MARKET = Buffer.from('/market/');
/** The leading keys (`type`, `topic`, `subject`) fit in this many bytes; `data` comes after them. */
const HEAD_BYTES = 160;
const COLON = 0x3a;
const BACKSLASH = 0x5c;

/** Offsets of the last topic read: `/market/` + [type, colon) + `:` + [colon + 1, end). */
const span = { type: 0, colon: 0, end: 0 };

/** Offset of the topic's value (after `/market/`), or -1; fills `span`. */
export function locateTopic(frame: Buffer): number {
  const to = Math.min(frame.length, HEAD_BYTES);
  const p = findKey(frame, TOPIC, 0, to);
  if (p === -1 || frame[p] !== QUOTE) return -1;
  let i = p + 1;
  for (let k = 0; k < MARKET.length; k++, i++) if (frame[i] !== MARKET[k]) return -1;
  span.type = i;
  span.colon = -1;
  const n = frame.length;
  for (; i < n && frame[i] !== QUOTE; i++) {
    if (frame[i] === BACKSLASH) return -1;
    if (frame[i] === COLON && span.colon === -1) span.colon = i;
  }
  if (i >= n || span.colon <= span.type || span.colon + 1 >= i) return -1;
  span.end = i;
  return i + 1;
}

/** The venue's StreamReader: `{"topic":"/market/match:BTC-USDT",…` → `match:BTC-USDT`; out.from = `data`. */
export function readKucoinStream(frame: Buffer, out: FrameKeys): string | null {
  const after = locateTopic(frame);
  if (after === -1) return null;
  // `data` follows the leading keys; the readers look inside it only.
  const d = findKey(frame, DATA, 0);
  if (d === -1) return null;
  out.from = d;
  return latin1(frame, span.type, span.end);
}

/** Canonical id → topic parts: `level2:BTC-USDT` → `['level2', 'BTC-USDT']`. */
export function kucoinTopic(stream: string): { type: string; symbol: string } {
  const i = stream.indexOf(':');
  return { type: stream.slice(0, i), symbol: stream.slice(i + 1) };
}
