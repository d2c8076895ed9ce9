/**
 * The futures private stream, as far as the connection worker needs it: the URL for a listen key and
 * what a text frame means. USD-M moved user data to /private/ws?listenKey=<key>&events=A/B on
 * 2026-04-23 (facts sheet, "User data"); COIN-M still serves /ws/<listenKey>.
 *
 * The URL contains the listen key: never log it (log keyPrefix(key) instead).
 */
import type { UserDataEvent } from './ws-api.js';

/** USD-M private stream URL, e.g. wss://fstream.binance.com/private/ws?listenKey=..&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE */
export function privateStreamUrl(baseUrl: string, listenKey: string, events: readonly string[]): string {
  const base = baseUrl.replace(/\/+$/, '');
  // '/' separates event names, as in Binance's examples; each name itself is encoded.
  const ev = events.length > 0 ? `&events=${events.map(encodeURIComponent).join('/')}` : '';
  return `${base}/private/ws?listenKey=${encodeURIComponent(listenKey)}${ev}`;
}

/** COIN-M user data stream URL: wss://dstream.binance.com/ws/<listenKey>. */
export function legacyUserDataUrl(baseUrl: string, listenKey: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/ws/${encodeURIComponent(listenKey)}`;
}

export type FuturesUserDataMessage =
  /** listenKeyExpired: call ListenKeyManager.notifyExpired(listenKey); the stream closes. */
  | { kind: 'expired'; listenKey: string | undefined; event: UserDataEvent }
  /** An account event; `stream` is its type (`e`, e.g. ORDER_TRADE_UPDATE). */
  | { kind: 'event'; event: UserDataEvent; stream: string }
  | { kind: 'other'; reason: 'malformed' | 'unrelated' };

/** Classify a text frame of the private stream (raw, or wrapped as {"stream":..,"data":{...}}). */
export function parseFuturesUserDataMessage(text: string): FuturesUserDataMessage {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { kind: 'other', reason: 'malformed' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { kind: 'other', reason: 'malformed' };
  let o = v as Record<string, unknown>;
  if (typeof o.stream === 'string' && o.data !== null && typeof o.data === 'object') o = o.data as Record<string, unknown>;
  const event = o as UserDataEvent;
  if (typeof event.e !== 'string') return { kind: 'other', reason: 'unrelated' };
  if (event.e === 'listenKeyExpired') {
    return { kind: 'expired', listenKey: typeof o.listenKey === 'string' ? o.listenKey : undefined, event };
  }
  return { kind: 'event', event, stream: event.e };
}
