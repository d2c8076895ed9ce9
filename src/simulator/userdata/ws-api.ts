import { createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { WebSocket } from 'ws';
import { wsApiSignaturePayload, type SignableParams } from '../../rest/signing.js';

/**
 * The spot WebSocket API, as far as user data goes: `userDataStream.subscribe.signature` with a real
 * signature check (HMAC-SHA256 hex, Ed25519 base64, over the sorted parameters without `signature`)
 * and Binance's timing rule (web-socket-api.md "Timing security": accepted when
 * timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow; recvWindow default 5000,
 * max 60000). Events go out as {"subscriptionId":N,"event":{...}}.
 */
export interface SimApiKey {
  apiKey: string;
  /** HMAC secret. */
  secret?: string;
  /** Public half of an Ed25519 key, PEM (SPKI). */
  ed25519PublicKeyPem?: string;
}

export interface WsApiCounters {
  subscribeRequests: number;
  subscribed: number;
  refused: number;
}

interface Conn {
  ws: WebSocket;
  /** apiKey → subscriptionId */
  subs: Map<string, number>;
  nextSubId: number;
}

type Verifier = (payload: string, signature: string) => boolean;

const ERR = {
  badKey: { status: 401, code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' },
  badSignature: { status: 400, code: -1022, msg: 'Signature for this request is not valid.' },
  timestamp: { status: 400, code: -1021, msg: 'Timestamp for this request is outside of the recvWindow.' },
  ahead: { status: 400, code: -1021, msg: "Timestamp for this request was 1000ms ahead of the server's time." },
  // The code Binance sends for a second subscription of one account on one connection is not
  // documented in what we checked; -1013 ("rejected by the API") is a stand-in.
  duplicate: { status: 400, code: -1013, msg: 'User Data Stream subscription already active for this account.' },
} as const;

export class WsApiSim {
  readonly counters: WsApiCounters = { subscribeRequests: 0, subscribed: 0, refused: 0 };
  private readonly verifiers = new Map<string, Verifier>();
  private readonly conns = new Set<Conn>();

  constructor(apiKeys: readonly SimApiKey[], private readonly now: () => number) {
    for (const k of apiKeys) {
      if (k.ed25519PublicKeyPem !== undefined) this.verifiers.set(k.apiKey, ed25519Verifier(createPublicKey(k.ed25519PublicKeyPem)));
      else if (k.secret !== undefined) this.verifiers.set(k.apiKey, hmacVerifier(k.secret));
    }
  }

  connection(ws: WebSocket): void {
    const c: Conn = { ws, subs: new Map(), nextSubId: 0 };
    this.conns.add(c);
    ws.on('close', () => this.conns.delete(c));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.onRequest(c, data.toString());
    });
  }

  /** Send an event to every subscription (or those of one API key). Returns deliveries. */
  push(event: Record<string, unknown>, apiKey?: string): number {
    let n = 0;
    for (const c of this.conns) {
      for (const [k, id] of c.subs) {
        if (apiKey !== undefined && k !== apiKey) continue;
        if (c.ws.readyState !== c.ws.OPEN) continue;
        c.ws.send(JSON.stringify({ subscriptionId: id, event }));
        n++;
      }
    }
    return n;
  }

  /** End subscriptions (all, or one API key's) with eventStreamTerminated; connections stay open. */
  terminate(apiKey?: string): number {
    const n = this.push({ e: 'eventStreamTerminated', E: this.now() }, apiKey);
    for (const c of this.conns) {
      if (apiKey === undefined) c.subs.clear();
      else c.subs.delete(apiKey);
    }
    return n;
  }

  subscriptions(): number {
    let n = 0;
    for (const c of this.conns) n += c.subs.size;
    return n;
  }

  private onRequest(c: Conn, text: string): void {
    let req: { id?: unknown; method?: unknown; params?: unknown };
    try {
      req = JSON.parse(text) as typeof req;
    } catch {
      this.reply(c, null, 400, { code: -1135, msg: 'Invalid JSON Request' });
      return;
    }
    const id = typeof req.id === 'string' || typeof req.id === 'number' ? req.id : null;
    const params = (req.params !== null && typeof req.params === 'object' ? req.params : {}) as Record<string, unknown>;
    switch (req.method) {
      case 'userDataStream.subscribe.signature':
        this.subscribe(c, id, params);
        return;
      case 'userDataStream.unsubscribe': {
        const sid = params.subscriptionId;
        for (const [k, v] of c.subs) if (sid === undefined || v === sid) c.subs.delete(k);
        this.reply(c, id, 200, undefined, {});
        return;
      }
      case 'ping':
        this.reply(c, id, 200, undefined, {});
        return;
      case 'time':
        this.reply(c, id, 200, undefined, { serverTime: this.now() });
        return;
      default:
        this.reply(c, id, 400, { code: -1102, msg: `Unknown method '${String(req.method)}'.` });
    }
  }

  private subscribe(c: Conn, id: string | number | null, params: Record<string, unknown>): void {
    this.counters.subscribeRequests++;
    const refuse = (e: { status: number; code: number; msg: string }): void => {
      this.counters.refused++;
      this.reply(c, id, e.status, { code: e.code, msg: e.msg });
    };
    const { apiKey, timestamp, signature } = params;
    const recvWindow = params.recvWindow ?? 5000;
    if (typeof apiKey !== 'string' || typeof timestamp !== 'number' || typeof signature !== 'string') {
      this.counters.refused++;
      this.reply(c, id, 400, { code: -1102, msg: 'Mandatory parameter was not sent, was empty/null, or malformed.' });
      return;
    }
    if (typeof recvWindow !== 'number' || recvWindow <= 0 || recvWindow > 60_000) {
      this.counters.refused++;
      this.reply(c, id, 400, { code: -1131, msg: 'recvWindow must be less than 60000' });
      return;
    }
    const verifier = this.verifiers.get(apiKey);
    if (verifier === undefined) return refuse(ERR.badKey);
    const serverTime = this.now();
    if (timestamp >= serverTime + 1000) return refuse(ERR.ahead);
    if (serverTime - timestamp > recvWindow) return refuse(ERR.timestamp);
    const signable: SignableParams = {};
    for (const [k, v] of Object.entries(params)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') signable[k] = v;
    }
    if (!verifier(wsApiSignaturePayload(signable), signature)) return refuse(ERR.badSignature);
    if (c.subs.has(apiKey)) return refuse(ERR.duplicate);
    const subscriptionId = c.nextSubId++;
    c.subs.set(apiKey, subscriptionId);
    this.counters.subscribed++;
    this.reply(c, id, 200, undefined, { subscriptionId });
  }

  private reply(c: Conn, id: string | number | null, status: number, error?: { code: number; msg: string }, result?: unknown): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    const rateLimits = [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000, count: 2 }];
    c.ws.send(JSON.stringify(error ? { id, status, error, rateLimits } : { id, status, result, rateLimits }));
  }
}

function hmacVerifier(secret: string): Verifier {
  return (payload, signature) => {
    const expected = Buffer.from(createHmac('sha256', secret).update(payload).digest('hex'));
    // HMAC signatures are not case-sensitive (request-security, "Signature Case Sensitivity").
    const given = Buffer.from(signature.toLowerCase());
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}

function ed25519Verifier(key: KeyObject): Verifier {
  return (payload, signature) => {
    try {
      return verify(null, Buffer.from(payload, 'utf8'), key, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  };
}
