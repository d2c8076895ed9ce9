import { randomBytes } from 'node:crypto';
import { MessageRate } from '../limits.js';
import { sendJson } from '../rest.js';
import { VenueExchange, type KeepaliveRule } from './exchange.js';
import type { Tape } from './feed.js';
import { KUCOIN_PATH, KUCOIN_SYMBOLS, KUCOIN_TYPES, newKucoinTape } from './kucoin-tapes.js';
import type { VenueSettings } from './options.js';
import type { Session } from './session.js';

/** "400 topics per connection (spot)" [K2]. */
const TOPICS_PER_CONNECTION = 400;
/** "100 topics per batch" [K2]; past it error 509 [I-K3]. */
const TOPICS_PER_REQUEST = 100;
/** "100 client messages/10 s" [K2]. */
const MESSAGES_PER_10S = 100;
/** The bullet reply's pingTimeout [K1]. */
const PING_TIMEOUT_MS = 10_000;

interface Token {
  issuedAt: number;
  used: boolean;
  /** Refused whatever its age: the expireTokens() fault. */
  expired: boolean;
}

/**
 * KuCoin spot (classic) public market data: `POST /api/v1/bullet-public` hands out a token and the
 * endpoint (this server's `/`), the WebSocket takes `?token=…&connectId=…`, says
 * `{"id":<connectId>,"type":"welcome"}`, answers `{"type":"ping"}` with `pong`, and acks
 * `{"type":"subscribe","topic":"/market/<type>:<symbols>"}` (facts sheet "KuCoin", [K1][K2][K4]).
 *
 * A token is valid tokenTtlMs (24 h) and, here, once: a client that comes back with an expired or
 * used token gets `{"type":"error","code":401,"data":"token is expired"}` and a close ([I-K1]), and
 * a violation. expireTokens(n): the next n tokens are refused although fresh (the server's side of
 * an expiry), which a client must survive by fetching another.
 */
export class KucoinExchange extends VenueExchange {
  protected readonly paths = new Set([KUCOIN_PATH]);
  protected readonly keepalive: KeepaliveRule;
  /** Bullet-public requests served (every connection attempt should make one). */
  bulletRequests = 0;
  /** When each `{"type":"ping"}` from a client arrived (the exchange's time, ms): the pace a client keeps. */
  readonly pings: number[] = [];
  /** Every token handed out and every connectId a client connected with, in order (for tests of logs). */
  readonly secrets: string[] = [];
  private readonly symbols: ReadonlySet<string>;
  private readonly tokens = new Map<string, Token>();
  private expireNext = 0;
  private bulletFailures: { remaining: number; status: number } | null = null;
  private readonly rates = new WeakMap<Session, MessageRate>();

  constructor(settings: VenueSettings) {
    super({ ...settings, streamsPerConnection: Number.isFinite(settings.streamsPerConnection) ? settings.streamsPerConnection : TOPICS_PER_CONNECTION });
    this.symbols = new Set(settings.instruments ?? KUCOIN_SYMBOLS);
    // "server drops a client silent for a long time" [K1]: here, no ping for pingInterval + pingTimeout.
    this.keepalive = {
      lastActivity: (s) => s.lastPingAt,
      code: 1000,
      reason: 'Ping timeout',
      detail: `no ping from the client for ${settings.keepaliveMs} ms`,
    };
    this.route('POST', '/api/v1/bullet-public', (_req, res) => {
      this.bulletRequests++;
      if (this.bulletFailures !== null) {
        const { status } = this.bulletFailures;
        if (--this.bulletFailures.remaining <= 0) this.bulletFailures = null;
        // KuCoin's error body: {"code":"<status>000","msg":…} (classic docs, "Request").
        sendJson(res, status, JSON.stringify({ code: `${status}000`, msg: status === 429 ? 'Too Many Requests' : 'Internal Server Error' }));
        return;
      }
      const token = randomBytes(48).toString('base64url') + '.' + randomBytes(16).toString('base64');
      const expired = this.expireNext > 0;
      if (expired) this.expireNext--;
      this.tokens.set(token, { issuedAt: this.settings.time.now(), used: false, expired });
      this.secrets.push(token);
      const server = { endpoint: `${this.wsUrl}${KUCOIN_PATH}`, encrypt: false, protocol: 'websocket', pingInterval: settings.pingIntervalMs, pingTimeout: PING_TIMEOUT_MS };
      sendJson(res, 200, JSON.stringify({ code: '200000', data: { token, instanceServers: [server] } }));
    });
    // `GET /api/v1/status` [K5]: always open here (maintenance() refuses upgrades instead).
    this.route('GET', '/api/v1/status', (_req, res) => sendJson(res, 200, '{"code":"200000","data":{"status":"open","msg":""}}'));
  }

  /** The next `n` tokens bullet-public hands out are refused as expired when used. */
  expireTokens(n = 1): void {
    this.expireNext += n;
  }

  /** The next `n` bullet-public requests fail with HTTP `status` (and KuCoin's error body). */
  failBullets(n: number, status = 500): void {
    this.bulletFailures = n > 0 ? { remaining: n, status } : null;
  }

  /** Tokens handed out so far. */
  get tokensIssued(): number {
    return this.tokens.size;
  }

  protected newConnId(): string {
    return randomBytes(4).toString('hex');
  }

  protected newTape(stream: string): Tape | null {
    return newKucoinTape(stream, this.symbols);
  }

  /** KuCoin announces nothing before a cut (facts sheet, KuCoin "status"). */
  protected shutdownNotice(): null {
    return null;
  }

  protected override onOpen(s: Session, url: URL): void {
    const token = url.searchParams.get('token') ?? '';
    const connectId = url.searchParams.get('connectId') ?? '';
    if (connectId !== '') this.secrets.push(connectId);
    const t = this.tokens.get(token);
    let refusal: string | null = null;
    if (t === undefined) {
      refusal = 'token is invalid';
    } else if (t.used) {
      this.violation(s.conn.id, 'token_reused', 'connected with a token that already served a connection');
      refusal = 'token is expired';
    } else if (this.settings.time.now() - t.issuedAt > this.settings.tokenTtlMs) {
      this.violation(s.conn.id, 'token_expired', `connected with a token older than ${this.settings.tokenTtlMs} ms`);
      refusal = 'token is expired';
    } else if (t.expired) {
      refusal = 'token is expired';
    }
    if (t !== undefined) t.used = true;
    if (refusal !== null) {
      s.send(JSON.stringify({ id: connectId, type: 'error', code: 401, data: refusal }));
      s.conn.close(1000, refusal);
      return;
    }
    s.send(JSON.stringify({ id: connectId, type: 'welcome' }));
  }

  protected onMessage(s: Session, text: string): void {
    if (this.rate(s).hit(this.settings.time.now())) {
      this.violation(s.conn.id, 'messages_per_second', `more than ${MESSAGES_PER_10S} messages from the client within 10 s`);
      s.conn.close(1008, 'too many requests');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.error(s, undefined, 400, 'request is not JSON');
      return;
    }
    const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { id?: unknown; type?: unknown; topic?: unknown; response?: unknown };
    const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
    if (m.type === 'ping') {
      s.lastPingAt = this.settings.time.now();
      this.pings.push(s.lastPingAt);
      s.send(JSON.stringify({ id, type: 'pong' }));
      return;
    }
    if ((m.type !== 'subscribe' && m.type !== 'unsubscribe') || typeof m.topic !== 'string') {
      this.error(s, id, 400, `unsupported request type ${String(m.type)}`);
      return;
    }
    const streams = this.parseTopic(s, id, m.topic);
    if (streams === null) return;
    if (m.type === 'unsubscribe') {
      this.unsubscribeAll(s, streams);
    } else if (!this.subscribeAll(s, streams)) {
      this.error(s, id, 509, `exceed max subscription count limitation of ${this.settings.streamsPerConnection} per session`);
      return;
    }
    if (m.response === true) s.send(JSON.stringify({ id, type: 'ack' }));
  }

  /** `/market/level2:BTC-USDT,ETH-USDT` → canonical ids; null (and the error sent) when refused. */
  private parseTopic(s: Session, id: string | number | undefined, topic: string): string[] | null {
    const m = /^\/market\/([A-Za-z0-9]+):(.+)$/.exec(topic);
    const type = m?.[1];
    if (m === null || type === undefined || !(KUCOIN_TYPES as readonly string[]).includes(type)) {
      this.error(s, id, 404, `topic ${topic} is not found`);
      return null;
    }
    const symbols = m[2]!.split(',');
    if (symbols.length > TOPICS_PER_REQUEST) {
      this.violation(s.conn.id, 'args_per_subscribe', `${symbols.length} symbols in one topic (at most ${TOPICS_PER_REQUEST})`);
      this.error(s, id, 509, `exceed max subscription count limitation of ${TOPICS_PER_REQUEST} per time`);
      return null;
    }
    const bad = symbols.find((x) => !this.symbols.has(x));
    if (bad !== undefined) {
      this.error(s, id, 404, `topic /market/${type}:${bad} is not found`);
      return null;
    }
    return symbols.map((x) => `${type}:${x}`);
  }

  private rate(s: Session): MessageRate {
    let r = this.rates.get(s);
    if (r === undefined) this.rates.set(s, (r = new MessageRate(MESSAGES_PER_10S, 10_000)));
    return r;
  }

  private error(s: Session, id: string | number | undefined, code: number, data: string): void {
    s.send(JSON.stringify({ id, type: 'error', code, data }));
  }
}
