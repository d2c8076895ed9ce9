import type { Simulator } from '../types.js';
import { systemClock } from '../../clock.js';
import { ListenKeyStore, type ListenKeyCounters, type ListenKeyInfo } from './listen-keys.js';
import { RestFaults } from './rest-faults.js';
import { WsApiSim, type SimApiKey, type WsApiCounters } from './ws-api.js';

export type { ListenKeyInfo, ListenKeyCounters } from './listen-keys.js';
export type { SimApiKey, WsApiCounters } from './ws-api.js';

/** What installUserDataSimulator needs of a simulator: its two extension points. */
export type UserDataSimHost = Pick<Simulator, 'route' | 'wsRoute'>;

export interface UserDataSimOptions {
  /** A listen key not extended for this long expires. Default 3 600 000 (60 min). */
  listenKeyTtlMs?: number;
  /** Accounts the exchange knows. `secret` (HMAC) or `ed25519PublicKeyPem` verifies WS API signatures. */
  apiKeys: SimApiKey[];
  /** Source of server time (timestamps, expiry stamps). Default Date.now. */
  now?: () => number;
}

export interface UserDataSim {
  // ---- futures listen keys (POST/PUT/DELETE /fapi/v1/listenKey and /dapi/v1/listenKey)
  /** Expire a key now: open private streams get listenKeyExpired and are closed. False if unknown. */
  expire(listenKey: string): boolean;
  keys(): ListenKeyInfo[];
  /** Listen-key REST calls received (faulted ones included). Live object. */
  readonly counters: ListenKeyCounters;
  /** Send an event (e.g. {"e":"ORDER_TRADE_UPDATE",...}) on the private streams (of one key). Returns deliveries. */
  pushEvent(event: Record<string, unknown>, opts?: { listenKey?: string }): number;
  /** Open /private/ws connections (of one key). */
  privateStreams(listenKey?: string): number;

  // ---- spot WebSocket API (/ws-api/v3)
  /** Send {"subscriptionId":N,"event":event} to every subscription (of one API key). Returns deliveries. */
  pushSpotEvent(event: Record<string, unknown>, opts?: { apiKey?: string }): number;
  /** eventStreamTerminated to every subscription (of one API key), which then ends. */
  terminate(opts?: { apiKey?: string }): number;
  readonly wsApiCounters: WsApiCounters;
  /** Active spot subscriptions. */
  spotSubscriptions(): number;

  // ---- REST faults (listen-key endpoints)
  /** Every REST call answers 418 (IP banned) with Retry-After until retryAfterS have passed. */
  banRest(retryAfterS: number): void;
  /** The next n REST calls answer 429 with Retry-After: retryAfterS. */
  rateLimitRest(n: number, retryAfterS: number): void;
  /** The next n REST calls answer `status` (default 500). */
  failRest(n: number, status?: number): void;

  /** Clear the expiry timers. */
  close(): void;
}

/**
 * Binance user data on top of the market simulator (src/simulator/index.ts) or any host with
 * route()/wsRoute(): listen-key REST, the USD-M private stream /private/ws, and the spot WebSocket
 * API /ws-api/v3. Both WebSocket routes are wsRoute()s, so they get the host's pings, lifetime cut,
 * stall and drop like market connections.
 */
export function installUserDataSimulator(sim: UserDataSimHost, opts: UserDataSimOptions): UserDataSim {
  const now = opts.now ?? systemClock.now;
  const faults = new RestFaults(now);
  const store = new ListenKeyStore(opts.listenKeyTtlMs ?? 3_600_000, new Set(opts.apiKeys.map((k) => k.apiKey)), faults, now);
  const wsApi = new WsApiSim(opts.apiKeys, now);

  for (const path of ['/fapi/v1/listenKey', '/dapi/v1/listenKey']) {
    for (const method of ['POST', 'PUT', 'DELETE'] as const) sim.route(method, path, store.handler(method, path));
  }
  sim.wsRoute('/private/ws', (ws, req) => store.privateStream(ws, req));
  sim.wsRoute('/ws-api/v3', (ws) => wsApi.connection(ws));

  return {
    expire: (key) => store.expire(key),
    keys: () => store.keys(),
    counters: store.counters,
    pushEvent: (event, o) => store.push(event, o?.listenKey),
    privateStreams: (key) => store.openStreams(key),
    pushSpotEvent: (event, o) => wsApi.push(event, o?.apiKey),
    terminate: (o) => wsApi.terminate(o?.apiKey),
    wsApiCounters: wsApi.counters,
    spotSubscriptions: () => wsApi.subscriptions(),
    banRest: (s) => faults.ban(s),
    rateLimitRest: (n, s) => faults.rateLimit(n, s),
    failRest: (n, status) => faults.fail(n, status),
    close: () => store.close(),
  };
}
