import { systemClock, type Clock } from '../clock.js';
import { ErrorCodes, FeedkeeperError } from '../errors.js';
import { createSigner, wsApiSignaturePayload, type Signer } from '../rest/signing.js';

/**
 * Spot user data through the WebSocket API (wss://ws-api.binance.com:443/ws-api/v3). Spot listen
 * keys (POST/PUT/DELETE /api/v3/userDataStream) were removed on 2026-02-20; the replacement is
 * `userDataStream.subscribe.signature` (binance-spot-api-docs, "User Data Stream requests"), which
 * works with any key type and needs no session logon.
 *
 * Pure functions plus one small stateful class. The connection worker owns the socket:
 *   on open:        ws.send(sub.subscribeMessage(nextId()))   (after every reconnect: a subscription
 *                                                              dies with its connection)
 *   on text frame:  switch (sub.onMessage(text).kind) { ... }
 */

export const SUBSCRIBE_SIGNATURE_METHOD = 'userDataStream.subscribe.signature';

/** A user data event, e.g. executionReport, outboundAccountPosition, balanceUpdate, eventStreamTerminated. */
export type UserDataEvent = { e?: string; E?: number } & Record<string, unknown>;

export type WsApiRequestId = string | number;

export interface SubscribeSignatureParams {
  apiKey: string;
  timestamp: number;
  recvWindow?: number;
  signature: string;
}

export interface SubscribeSignatureRequest {
  id: WsApiRequestId;
  method: typeof SUBSCRIBE_SIGNATURE_METHOD;
  params: SubscribeSignatureParams;
}

/**
 * The signed subscription request. The signature covers every parameter but `signature`, sorted by
 * name: `apiKey=...&[recvWindow=...&]timestamp=...`; hex HMAC-SHA256 for HMAC keys, base64 Ed25519
 * for Ed25519 keys (web-socket-api.md, "SIGNED request security").
 */
export function buildSubscribeSignatureRequest(opts: {
  id: WsApiRequestId;
  apiKey: string;
  signer: Signer;
  timestamp: number;
  recvWindow?: number;
}): SubscribeSignatureRequest {
  const unsigned: Record<string, string | number> = { apiKey: opts.apiKey, timestamp: opts.timestamp };
  if (opts.recvWindow !== undefined) unsigned.recvWindow = opts.recvWindow;
  const signature = opts.signer.sign(wsApiSignaturePayload(unsigned));
  const params: SubscribeSignatureParams = { apiKey: opts.apiKey, timestamp: opts.timestamp, signature };
  if (opts.recvWindow !== undefined) params.recvWindow = opts.recvWindow;
  return { id: opts.id, method: SUBSCRIBE_SIGNATURE_METHOD, params };
}

/** One WebSocket API frame, as far as user data cares. */
export type WsApiFrame =
  /** Answer to a request: `{"id":..,"status":200,"result":{...}}` or `{"id":..,"status":4xx,"error":{code,msg}}`. */
  | { type: 'response'; id: WsApiRequestId | null; status: number; result: unknown; error: { code: number; msg: string } | null }
  /** `{"subscriptionId":0,"event":{...}}` */
  | { type: 'event'; subscriptionId: number; event: UserDataEvent }
  | { type: 'unknown' }
  | { type: 'malformed' };

export function parseWsApiFrame(text: string): WsApiFrame {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { type: 'malformed' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { type: 'malformed' };
  const o = v as Record<string, unknown>;
  if (typeof o.subscriptionId === 'number' && o.event !== null && typeof o.event === 'object' && !Array.isArray(o.event)) {
    return { type: 'event', subscriptionId: o.subscriptionId, event: o.event as UserDataEvent };
  }
  if (typeof o.status === 'number' && 'id' in o) {
    const id = typeof o.id === 'string' || typeof o.id === 'number' ? o.id : null;
    let error: { code: number; msg: string } | null = null;
    if (o.error !== null && typeof o.error === 'object') {
      const e = o.error as { code?: unknown; msg?: unknown };
      error = { code: typeof e.code === 'number' ? e.code : 0, msg: typeof e.msg === 'string' ? e.msg : '' };
    }
    return { type: 'response', id, status: o.status, result: o.result ?? null, error };
  }
  return { type: 'unknown' };
}

/** What a text frame meant for the subscription. */
export type SpotUserDataMessage =
  /** Our subscription request was accepted. */
  | { kind: 'subscribed'; subscriptionId: number }
  /** An account event; `stream` is its type (`e`, e.g. "executionReport"), "unknown" if it has none. */
  | { kind: 'event'; event: UserDataEvent; stream: string; subscriptionId: number }
  /** eventStreamTerminated: no more events on this subscription; subscribe again (or reconnect). */
  | { kind: 'terminated'; event: UserDataEvent; subscriptionId: number }
  /** The subscription request was refused (e.g. -1022 bad signature, -1021 timestamp outside recvWindow, -2015 bad key), or the server reported an error with id null. */
  | { kind: 'error'; code: number; msg: string; status: number }
  /** Anything else: answers to other requests, events of other subscriptions, malformed frames. */
  | { kind: 'other'; reason: 'unrelated' | 'malformed' };

export type SpotUserDataState = 'idle' | 'pending' | 'subscribed' | 'terminated' | 'failed';

export interface SpotUserDataSubscriptionOptions {
  apiKey: string;
  /** HMAC secret, PEM Ed25519 private key, or a Signer. */
  secret: string | Signer;
  /** Source of `timestamp`. Inject a server-time-corrected clock if the host clock drifts. */
  clock?: Clock;
  /** Sent when set (Binance default 5000, max 60000). */
  recvWindow?: number;
}

/**
 * The spot user-data subscription of one WebSocket API connection. Not tied to a socket: the worker
 * sends subscribeMessage() on open and feeds every text frame to onMessage().
 */
export class SpotUserDataSubscription {
  private readonly apiKey: string;
  private readonly signer: Signer;
  private readonly clock: Clock;
  private readonly recvWindow: number | undefined;
  private pendingId: WsApiRequestId | null = null;
  private subId: number | null = null;
  private stateValue: SpotUserDataState = 'idle';

  constructor(opts: SpotUserDataSubscriptionOptions) {
    if (opts.apiKey === '') throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, 'spot user data needs an API key');
    this.apiKey = opts.apiKey;
    this.signer = typeof opts.secret === 'string' ? createSigner(opts.secret) : opts.secret;
    this.clock = opts.clock ?? systemClock;
    this.recvWindow = opts.recvWindow;
  }

  get state(): SpotUserDataState {
    return this.stateValue;
  }

  /** The id the server gave our subscription, null until 'subscribed'. */
  get subscriptionId(): number | null {
    return this.subId;
  }

  /**
   * The signed `userDataStream.subscribe.signature` request, freshly timestamped. Call on every new
   * connection: it forgets the previous subscription. Never log the result (apiKey and signature).
   */
  subscribeMessage(id: WsApiRequestId): string {
    this.pendingId = id;
    this.subId = null;
    this.stateValue = 'pending';
    const req = buildSubscribeSignatureRequest({
      id,
      apiKey: this.apiKey,
      signer: this.signer,
      timestamp: this.clock.now(),
      recvWindow: this.recvWindow,
    });
    return JSON.stringify(req);
  }

  onMessage(text: string): SpotUserDataMessage {
    const f = parseWsApiFrame(text);
    switch (f.type) {
      case 'event': {
        if (this.subId !== null && f.subscriptionId !== this.subId) return { kind: 'other', reason: 'unrelated' };
        if (f.event.e === 'eventStreamTerminated') {
          this.stateValue = 'terminated';
          this.subId = null;
          return { kind: 'terminated', event: f.event, subscriptionId: f.subscriptionId };
        }
        return { kind: 'event', event: f.event, stream: typeof f.event.e === 'string' ? f.event.e : 'unknown', subscriptionId: f.subscriptionId };
      }
      case 'response': {
        const ours = this.pendingId !== null && f.id === this.pendingId;
        if (!ours && f.id !== null) return { kind: 'other', reason: 'unrelated' };
        if (ours) this.pendingId = null;
        const subscriptionId = (f.result as { subscriptionId?: unknown } | null)?.subscriptionId;
        if (ours && f.status === 200 && typeof subscriptionId === 'number') {
          this.subId = subscriptionId;
          this.stateValue = 'subscribed';
          return { kind: 'subscribed', subscriptionId };
        }
        if (f.status === 200) return { kind: 'other', reason: 'unrelated' };
        if (ours) this.stateValue = 'failed';
        return { kind: 'error', code: f.error?.code ?? 0, msg: f.error?.msg ?? '', status: f.status };
      }
      case 'malformed':
        return { kind: 'other', reason: 'malformed' };
      default:
        return { kind: 'other', reason: 'unrelated' };
    }
  }
}
