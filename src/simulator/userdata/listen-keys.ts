import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { RestFaults } from './rest-faults.js';
import { systemClock } from '../../clock.js';

/**
 * Futures listen keys as Binance runs them (derivatives docs, "User Data Streams Connect"; facts
 * sheet "User data"): one key per API key and product (/fapi, /dapi); POST creates it or returns the
 * live one and extends it; PUT extends it or answers -1125 when there is none; DELETE removes it; a key
 * not extended within its TTL expires, and its open private streams get listenKeyExpired, then close.
 */
export interface ListenKeyInfo {
  listenKey: string;
  apiKey: string;
  /** '/fapi/v1/listenKey' or '/dapi/v1/listenKey'. */
  path: string;
  expiresAt: number;
}

export interface ListenKeyCounters {
  post: number;
  put: number;
  delete: number;
}

interface KeyEntry extends ListenKeyInfo {
  timer: ReturnType<typeof setTimeout>;
}

interface PrivateStream {
  ws: WebSocket;
  listenKey: string;
  /** null: every event. */
  events: Set<string> | null;
}

const NO_SUCH_KEY = { code: -1125, msg: 'This listenKey does not exist.' };

export class ListenKeyStore {
  readonly counters: ListenKeyCounters = { post: 0, put: 0, delete: 0 };
  private readonly byKey = new Map<string, KeyEntry>();
  /** `${path} ${apiKey}` → key */
  private readonly active = new Map<string, string>();
  private readonly streams = new Set<PrivateStream>();

  constructor(
    private readonly ttlMs: number,
    private readonly apiKeys: ReadonlySet<string>,
    private readonly faults: RestFaults,
    private readonly now: () => number,
  ) {}

  /** REST handler for POST/PUT/DELETE on one listenKey path. */
  handler(method: 'POST' | 'PUT' | 'DELETE', path: string): (req: IncomingMessage, res: ServerResponse, url: URL) => void {
    return (req, res, url) => {
      if (method === 'POST') this.counters.post++;
      else if (method === 'PUT') this.counters.put++;
      else this.counters.delete++;
      if (this.faults.intercept(res, 1)) return;
      const apiKey = req.headers['x-mbx-apikey'];
      if (typeof apiKey !== 'string' || apiKey === '') {
        this.faults.send(res, 400, { code: -2014, msg: 'API-key format invalid.' });
        return;
      }
      if (!this.apiKeys.has(apiKey)) {
        this.faults.send(res, 401, { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' });
        return;
      }
      const slot = `${path} ${apiKey}`;
      const current = this.active.get(slot);
      // Some clients still send listenKey=; Binance's futures endpoints identify the key by the API key.
      const named = url.searchParams.get('listenKey');
      if (method === 'POST') {
        const key = current ?? this.create(slot, apiKey, path);
        this.extend(key);
        this.faults.send(res, 200, { listenKey: key });
        return;
      }
      if (current === undefined || (named !== null && named !== current)) {
        this.faults.send(res, 400, NO_SUCH_KEY);
        return;
      }
      if (method === 'PUT') {
        this.extend(current);
        this.faults.send(res, 200, { listenKey: current });
        return;
      }
      this.remove(current, false);
      this.faults.send(res, 200, {});
    };
  }

  /** WebSocket handler for /private/ws?listenKey=..&events=A/B. */
  privateStream(ws: WebSocket, req: IncomingMessage): void {
    const url = new URL(req.url ?? '/', 'http://sim');
    const key = url.searchParams.get('listenKey') ?? '';
    if (!this.byKey.has(key)) {
      ws.close(1008, 'invalid listenKey');
      return;
    }
    const ev = url.searchParams.get('events');
    const s: PrivateStream = { ws, listenKey: key, events: ev ? new Set(ev.split('/').filter((e) => e !== '')) : null };
    this.streams.add(s);
    ws.on('close', () => this.streams.delete(s));
  }

  /** Send an event to the open private streams (of one key, or all) whose `events` include its `e`. */
  push(event: Record<string, unknown>, listenKey?: string): number {
    const text = JSON.stringify(event);
    const e = typeof event.e === 'string' ? event.e : '';
    let n = 0;
    for (const s of this.streams) {
      if (listenKey !== undefined && s.listenKey !== listenKey) continue;
      if (s.events !== null && !s.events.has(e)) continue;
      if (s.ws.readyState !== s.ws.OPEN) continue;
      s.ws.send(text);
      n++;
    }
    return n;
  }

  /** Expire a key now, as the exchange does when it is not kept alive. False if unknown. */
  expire(listenKey: string): boolean {
    if (!this.byKey.has(listenKey)) return false;
    this.remove(listenKey, true);
    return true;
  }

  keys(): ListenKeyInfo[] {
    return [...this.byKey.values()].map(({ listenKey, apiKey, path, expiresAt }) => ({ listenKey, apiKey, path, expiresAt }));
  }

  openStreams(listenKey?: string): number {
    let n = 0;
    for (const s of this.streams) if (listenKey === undefined || s.listenKey === listenKey) n++;
    return n;
  }

  close(): void {
    for (const e of this.byKey.values()) systemClock.clearTimeout(e.timer);
    this.byKey.clear();
    this.active.clear();
  }

  private create(slot: string, apiKey: string, path: string): string {
    // 64 alphanumerics, like Binance's keys.
    const key = randomBytes(48).toString('base64').replace(/[^A-Za-z0-9]/g, '').padEnd(64, 'x').slice(0, 64);
    const timer = systemClock.setTimeout(() => this.remove(key, true), this.ttlMs);
    timer.unref();
    this.byKey.set(key, { listenKey: key, apiKey, path, expiresAt: this.now() + this.ttlMs, timer });
    this.active.set(slot, key);
    return key;
  }

  private extend(key: string): void {
    const e = this.byKey.get(key);
    if (e === undefined) return;
    systemClock.clearTimeout(e.timer);
    e.expiresAt = this.now() + this.ttlMs;
    e.timer = systemClock.setTimeout(() => this.remove(key, true), this.ttlMs);
    e.timer.unref();
  }

  private remove(key: string, expired: boolean): void {
    const e = this.byKey.get(key);
    if (e === undefined) return;
    systemClock.clearTimeout(e.timer);
    this.byKey.delete(key);
    const slot = `${e.path} ${e.apiKey}`;
    if (this.active.get(slot) === key) this.active.delete(slot);
    const text = JSON.stringify({ e: 'listenKeyExpired', E: this.now(), listenKey: key });
    for (const s of [...this.streams]) {
      if (s.listenKey !== key) continue;
      if (expired && s.ws.readyState === s.ws.OPEN) s.ws.send(text);
      s.ws.close(1000, expired ? 'listenKey expired' : 'listenKey deleted');
      this.streams.delete(s);
    }
  }
}
