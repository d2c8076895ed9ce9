import { randomBytes } from 'node:crypto';
import { systemClock } from '../../clock.js';
import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import type { GapCause } from '../../ledger/types.js';
import type { ClientPing, MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';
import { kucoinTopic, locateTopic } from './frame.js';

/** "POST /api/v1/bullet-public" ([K1]): a token for one public connection, no API key. */
export const BULLET_PATH = '/api/v1/bullet-public';

/** What the bullet reply holds, as far as it is read (facts sheet "KuCoin", token). */
export interface Bullet {
  token: string;
  endpoint: string;
  pingIntervalMs: number | undefined;
  pingTimeoutMs: number | undefined;
}

/**
 * Reads a bullet-public reply body. Throws FK_ERR_CONNECT saying what is wrong, never quoting the
 * body: it holds the token, which must not reach a log.
 */
export function parseBullet(body: string): Bullet {
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin ${BULLET_PATH}: the reply is not JSON`);
  }
  const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { code?: unknown; msg?: unknown; data?: unknown };
  if (m.code !== '200000') {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin ${BULLET_PATH} refused: code ${String(m.code)} ${typeof m.msg === 'string' ? m.msg.slice(0, 100) : ''}`.trim());
  }
  const d = (typeof m.data === 'object' && m.data !== null ? m.data : {}) as { token?: unknown; instanceServers?: unknown };
  const servers = Array.isArray(d.instanceServers) ? (d.instanceServers as unknown[]) : [];
  const s = (typeof servers[0] === 'object' && servers[0] !== null ? servers[0] : {}) as { endpoint?: unknown; pingInterval?: unknown; pingTimeout?: unknown };
  if (typeof d.token !== 'string' || d.token === '') throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin ${BULLET_PATH}: no token in the reply`);
  if (typeof s.endpoint !== 'string' || !/^wss?:\/\//.test(s.endpoint)) {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin ${BULLET_PATH}: no WebSocket endpoint in instanceServers`);
  }
  const ms = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);
  return { token: d.token, endpoint: s.endpoint, pingIntervalMs: ms(s.pingInterval), pingTimeoutMs: ms(s.pingTimeout) };
}

/** `{endpoint}?token={token}&connectId={id}` ([K1] "connect"). Never logged. */
export function connectUrl(endpoint: string, token: string, connectId: string): string {
  const u = new URL(endpoint);
  u.searchParams.set('token', token);
  u.searchParams.set('connectId', connectId);
  return u.toString();
}

/**
 * Subscribe requests for `streams`: one topic per type, up to `perRequest` symbols each
 * (`/market/level2:BTC-USDT,ETH-USDT`; "≤100 symbols per topic" [K1][K4], error 509 past it [I-K3]).
 */
export function topicBatches(streams: readonly string[], perRequest: number): Array<{ topic: string; streams: string[] }> {
  const byType = new Map<string, string[]>();
  for (const s of streams) {
    const { type } = kucoinTopic(s);
    let list = byType.get(type);
    if (list === undefined) byType.set(type, (list = []));
    list.push(s);
  }
  const out: Array<{ topic: string; streams: string[] }> = [];
  const n = Math.max(1, Math.min(100, perRequest));
  for (const [type, list] of byType) {
    for (let i = 0; i < list.length; i += n) {
      const part = list.slice(i, i + n);
      out.push({ topic: `/market/${type}:${part.map((s) => kucoinTopic(s).symbol).join(',')}`, streams: part });
    }
  }
  return out;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  what: string;
}

/** A KuCoin reply (welcome, ack, pong, error): only what is read. */
interface KucoinReply {
  id?: unknown;
  type?: unknown;
  code?: unknown;
  data?: unknown;
}

let pingSeq = 0;

/**
 * KuCoin spot public market protocol ([K1] "introduction"): before every connection a fresh token
 * from `POST /api/v1/bullet-public` — never one from an earlier attempt, so a token that expired
 * after its 24 h (or that the server refuses as used) never comes back ([I-K1]: clients that cache
 * it reconnect forever with `401 token is expired`). The reply names the endpoint and the ping
 * interval; the connection is usable only after `{"id":<connectId>,"type":"welcome"}`. Then
 * `{"id","type":"subscribe","topic":"/market/<type>:<symbols>","privateChannel":false,"response":true}`
 * requests, each acked by `{"id","type":"ack"}` or refused by `{"id","type":"error","code",…}`.
 *
 * A new protocol is built for each attempt (ConnectionWorker), so each attempt fetches its own token.
 * The token and the connectId live only in the URL, which the session never logs; errors here never
 * quote them.
 */
export class KucoinProtocol implements MarketProtocol {
  requestsSent = 0;
  pingIntervalMs: number | undefined;
  /** From the bullet reply: the server's deadline for our ping's pong (the stale watchdog's job). */
  pingTimeoutMs: number | undefined;
  private connectId = '';
  private nextId = 1;
  private welcomed = false;
  /** The connection was refused before its welcome (a frame may come before subscribe() runs). */
  private refused: Error | null = null;
  private welcome: Waiter | null = null;
  private readonly waiting = new Map<string, Waiter>();

  constructor(
    private readonly opts: ProtocolOptions,
    private readonly fetchFn: typeof fetch = fetch,
  ) {}

  async url(): Promise<string> {
    const rest = this.opts.rest;
    if (rest === undefined) throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, 'KuCoin needs endpoints.rest for its connection token');
    let res: Response;
    try {
      res = await this.fetchFn(`${rest}${BULLET_PATH}`, { method: 'POST', signal: AbortSignal.timeout(this.opts.replyTimeoutMs) });
    } catch (err) {
      throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin ${BULLET_PATH} failed: ${(err as Error).message}`, { cause: err });
    }
    const body = await res.text();
    if (!res.ok) throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin ${BULLET_PATH}: HTTP ${res.status}`);
    const b = parseBullet(body);
    this.pingIntervalMs = b.pingIntervalMs;
    this.pingTimeoutMs = b.pingTimeoutMs;
    this.connectId = randomBytes(8).toString('hex');
    return connectUrl(b.endpoint, b.token, this.connectId);
  }

  async subscribe(io: ProtocolIO): Promise<void> {
    await this.awaitWelcome();
    await this.change(io, 'subscribe', this.opts.streams);
  }

  add(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    return this.change(io, 'subscribe', streams);
  }

  remove(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    return this.change(io, 'unsubscribe', streams);
  }

  onFrame(io: ProtocolIO, frame: Buffer, _isBinary: boolean, now: number): void {
    if (locateTopic(frame) !== -1) {
      // "usable only after welcome" [K1]: a push before it is not ours to record.
      if (this.welcomed) io.data(frame, now);
      else io.malformed(frame, 'data before welcome');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(frame.toString('utf8'));
    } catch {
      io.malformed(frame, 'not JSON');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      io.malformed(frame, 'not a JSON object');
      return;
    }
    const m = msg as KucoinReply;
    switch (m.type) {
      case 'welcome':
        // Its id is our connectId [K1]; the socket is ours whatever it says, so any welcome counts
        // (a mismatch must not leave every connection waiting). Never logged: it may be the connectId.
        if (!this.welcomed && this.refused === null) {
          this.welcomed = true;
          this.settleWelcome()?.resolve();
        }
        return;
      case 'pong':
        return;
      case 'ack': {
        const w = typeof m.id === 'string' ? this.waiting.get(m.id) : undefined;
        if (w === undefined) io.unexpected(frame);
        else this.settle(m.id as string, w).resolve();
        return;
      }
      case 'error': {
        const detail = `${String(m.code)} ${typeof m.data === 'string' ? m.data.slice(0, 200) : ''}`.trim();
        const w = typeof m.id === 'string' ? this.waiting.get(m.id) : undefined;
        if (w !== undefined) {
          this.settle(m.id as string, w).reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `KuCoin refused ${w.what}: ${detail}`));
          return;
        }
        // Before the welcome an error refuses the connection itself (401 "token is expired"): the
        // attempt fails and the next one fetches a new token.
        if (!this.welcomed) {
          this.refused ??= new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT, `KuCoin refused the connection: ${detail}`);
          this.settleWelcome()?.reject(this.refused);
          return;
        }
        io.malformed(frame, `error ${detail}`);
        return;
      }
    }
    io.unexpected(frame);
  }

  closed(err: Error): void {
    this.settleWelcome()?.reject(err);
    for (const [id, w] of this.waiting) this.settle(id, w).reject(err);
  }

  private awaitWelcome(): Promise<void> {
    if (this.welcomed) return Promise.resolve();
    if (this.refused !== null) return Promise.reject(this.refused);
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const timer = clock.setTimeout(() => {
        this.welcome = null;
        reject(new FeedkeeperError(ErrorCodes.FK_ERR_CONNECT_TIMEOUT, `no KuCoin welcome within ${replyTimeoutMs} ms`));
      }, replyTimeoutMs);
      this.welcome = { resolve, reject, timer, what: 'welcome' };
    });
  }

  private settleWelcome(): Waiter | null {
    const w = this.welcome;
    if (w === null) return null;
    this.opts.clock.clearTimeout(w.timer);
    this.welcome = null;
    return w;
  }

  private async change(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', streams: readonly string[]): Promise<void> {
    const batches = topicBatches(streams, this.opts.streamsPerSubscribe);
    try {
      await Promise.all(batches.map((b) => this.request(io, op, b.topic, b.streams.length)));
    } catch (err) {
      for (const [id, w] of this.waiting) this.settle(id, w).reject(err as Error);
      throw err;
    }
  }

  private request(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', topic: string, count: number): Promise<void> {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const what = `${op} ${id} (${count} topics)`;
      const timer = clock.setTimeout(() => {
        this.waiting.delete(id);
        reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no reply to KuCoin ${what} within ${replyTimeoutMs} ms`));
      }, replyTimeoutMs);
      this.waiting.set(id, { resolve, reject, timer, what });
      this.requestsSent++;
      io.send(JSON.stringify({ id, type: op, topic, privateChannel: false, response: true }), op);
    });
  }

  private settle(id: string, w: Waiter): Waiter {
    this.opts.clock.clearTimeout(w.timer);
    this.waiting.delete(id);
    return w;
  }
}

/**
 * "client sends {"id":"…","type":"ping"} every pingInterval" (18 s in the docs' reply) [K1], busy
 * or not; the reply's own pingInterval wins when shorter (MarketProtocol.pingIntervalMs).
 */
export const kucoinClientPing: ClientPing = {
  everyMs: 18_000,
  whenIdle: false,
  text: () => `{"id":"${systemClock.now()}${++pingSeq % 1000}","type":"ping"}`,
};

/** No close codes are documented for KuCoin: 1008 and 1013 are limits, the rest plain server closes. */
export function kucoinCloseCause(code: number): GapCause {
  if (code === 1008 || code === 1013) return 'rate_limited';
  return 'server_close';
}
