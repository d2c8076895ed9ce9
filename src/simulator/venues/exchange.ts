import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import { SimConnection, type ConnectionHost, type ConnectionSettings } from '../connection.js';
import { AttemptLimiter } from '../limits.js';
import { errorBody, refuseUpgrade, sendJson } from '../rest.js';
import type {
  ConnectionFilter,
  ConnectionInfo,
  DropOptions,
  Note,
  RouteHandler,
  Simulator,
  UpgradeAttempt,
  Violation,
  ViolationRule,
  WsRouteHandler,
} from '../types.js';
import { VenueFeed, type Tape } from './feed.js';
import { NEVER_MS, type VenueSettings } from './options.js';
import { Session } from './session.js';

/**
 * The rules the venue dialects enforce, beyond the Binance simulator's ViolationRule (src/simulator/
 * types.ts). Recorded in the same `violations` list.
 */
export type VenueViolationRule = ViolationRule | 'args_per_subscribe' | 'ping_timeout' | 'subscribes_per_hour' | 'token_expired' | 'token_reused' | 'connections_per_ip';

/** How a dialect's server hangs up on a silent connection. */
export interface KeepaliveRule {
  /** The exchange's time (SimTime) of the last traffic that counts on this venue. */
  lastActivity(s: Session): number;
  code: number;
  reason: string;
  detail: string;
  /** Cut without a close frame (Gate: the client sees 1006); code and reason then go unsent. */
  abrupt?: boolean;
}

const ALL: ConnectionFilter = () => true;
/** Client messages larger than this are refused by the WebSocket layer (close 1009). */
const MAX_CLIENT_PAYLOAD = 1 << 20;

/**
 * The part of a Bybit or OKX exchange on loopback that does not depend on the venue: HTTP and WebSocket
 * upgrades on one port, the connection-attempt budget, connection bookkeeping, the tick-driven feed,
 * the fault controls and the records. A dialect (bybit.ts, okx.ts) adds its paths, its control
 * protocol, its streams and its keepalive rule. Modelled on the Binance exchange (../exchange.ts),
 * whose connection class it reuses.
 */
export abstract class VenueExchange implements Simulator {
  totalConnections = 0;
  readonly upgradeAttempts: UpgradeAttempt[] = [];
  readonly violations: Violation[] = [];
  readonly notes: Note[] = [];
  onViolation: ((v: Violation) => void) | undefined;

  protected readonly feed: VenueFeed;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly attempts: AttemptLimiter;
  private readonly sessions = new Map<number, Session>();
  private readonly routes = new Map<string, RouteHandler>();
  private readonly wsRoutes: Array<{ prefix: string; handler: WsRouteHandler }> = [];
  private readonly host: ConnectionHost;
  private readonly connSettings: ConnectionSettings;
  private nextId = 1;
  private address = '';
  private boundPort = 0;
  private maintenanceUntil = -1;
  private maintenanceRefusal = { status: 503, retryAfterS: -1 };
  private refusal: { remaining: number; status: number; retryAfterS: number } | null = null;
  private closing: Promise<void> | null = null;

  /** WebSocket paths the venue serves (others: 404). */
  protected abstract readonly paths: ReadonlySet<string>;
  protected abstract readonly keepalive: KeepaliveRule;
  /** A fresh connection id in the venue's format. */
  protected abstract newConnId(): string;
  /** A text frame from the client (not while stalled or closing). */
  protected abstract onMessage(s: Session, text: string): void;
  /** The tape of a canonical stream id; null when the venue has no such stream. */
  protected abstract newTape(stream: string): Tape | null;
  /** What serverShutdown() sends first; null: the venue sends nothing and just closes. */
  protected abstract shutdownNotice(s: Session): string | null;
  /** A market connection was accepted (KuCoin checks its token and sends `welcome`). */
  protected onOpen(_s: Session, _url: URL): void {}

  constructor(protected readonly settings: VenueSettings) {
    this.onViolation = settings.onViolation;
    this.attempts = new AttemptLimiter(settings.connectionAttempts, settings.connectionAttemptWindowMs);
    this.feed = new VenueFeed({
      eventsPerSecond: settings.eventsPerSecond,
      tickMs: settings.tickMs,
      clock: settings.clock,
      time: settings.time,
      idHistoryLimit: settings.idHistoryLimit,
      advanceWhileIdle: settings.advanceWhileIdle,
      maxBufferedBytes: settings.maxBufferedBytes,
      newTape: (stream) => this.tapeOrThrow(stream),
    });
    // The client pings on these venues, never the server (facts sheet: Bybit and OKX "heartbeat"), so
    // SimConnection's Binance-style server ping is pushed out of reach.
    this.connSettings = {
      messagesPerSecond: settings.messagesPerSecond,
      pingIntervalMs: NEVER_MS,
      pongTimeoutMs: NEVER_MS,
      maxLifetimeMs: settings.maxLifetimeMs,
      time: settings.time,
    };
    this.host = {
      violation: (conn, rule, detail) => this.violation(conn.id, rule, detail),
      slowConsumer: (conn, bytes) =>
        this.notes.push({
          at: settings.clock(),
          connId: conn.id,
          kind: 'slow_consumer',
          detail: `${bytes} bytes waiting to be sent (limit ${settings.maxBufferedBytes}): connection cut`,
        }),
      closed: (conn) => {
        const s = this.sessions.get(conn.id);
        if (s === undefined) return;
        for (const stream of conn.streams) this.feed.detach(s, stream);
        s.closed();
        this.sessions.delete(conn.id);
      },
    };
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      autoPong: false, // SimConnection answers pings itself, and not while stalled
      perMessageDeflate: false, // textFrame() relies on it (../frame.ts)
      clientTracking: false,
      maxPayload: MAX_CLIENT_PAYLOAD,
      closeTimeout: 5000, // a ws option @types/ws does not list
    };
    this.wss = new WebSocketServer(wsOptions);
    this.wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => {
      const status = req.method === 'GET' ? 400 : 405;
      this.recordAttempt(status, req);
      refuseUpgrade(socket, status, errorBody(status, err.message), null);
    });
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.settings.port, this.settings.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    this.boundPort = addr.port;
    this.address = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.feed.start();
  }

  get port(): number {
    return this.boundPort;
  }

  get wsUrl(): string {
    return `ws://${this.address}:${this.boundPort}`;
  }

  get httpUrl(): string {
    return `http://${this.address}:${this.boundPort}`;
  }

  // ------------------------------------------------------------------ faults

  dropAll(opts: DropOptions = {}): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (s.conn.state === 'closing' || s.conn.state === 'closed') continue;
      dropConn(s.conn, opts);
      n++;
    }
    return n;
  }

  drop(connId: number, opts: DropOptions = {}): void {
    const s = this.sessions.get(connId);
    if (s !== undefined) dropConn(s.conn, opts);
  }

  stall(filter: ConnectionFilter = ALL): number {
    let n = 0;
    for (const s of this.sessions.values()) if (filter(s.conn) && s.conn.stall()) n++;
    return n;
  }

  serverShutdown(filter: ConnectionFilter = ALL, opts: { graceMs?: number } = {}): number {
    const graceMs = opts.graceMs ?? this.settings.shutdownGraceMs;
    let n = 0;
    for (const s of this.sessions.values()) {
      if (!filter(s.conn)) continue;
      const notice = this.shutdownNotice(s);
      if (notice === null ? s.shutDownQuietly(graceMs) : s.conn.serverShutdown(notice, graceMs)) n++;
    }
    return n;
  }

  maintenance(ms: number, opts: { status?: number; retryAfterS?: number } = {}): void {
    this.maintenanceUntil = this.settings.time.now() + ms;
    this.maintenanceRefusal = { status: opts.status ?? 503, retryAfterS: opts.retryAfterS ?? -1 };
    this.dropAll({ code: 1001 });
  }

  refuseUpgrades(count: number, status: number, retryAfterS = 1): void {
    this.refusal = count > 0 ? { remaining: count, status, retryAfterS } : null;
  }

  /** Throws TypeError for a stream the venue does not have (through the feed's tape factory). */
  skip(stream: string, n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`skip(): n must be a non-negative integer, got ${n}`);
    this.feed.skip(stream, n);
  }

  /** A stream's subscription lost silently on every connection that has it (no close, no message). */
  dropSubscription(stream: string): number {
    let n = 0;
    for (const s of this.sessions.values()) {
      if (s.conn.streams.delete(stream)) {
        this.feed.detach(s, stream);
        n++;
      }
    }
    return n;
  }

  pause(): void {
    this.feed.pause();
  }

  advance(ms: number): void {
    this.settings.time.advance(ms);
  }

  resume(): void {
    this.feed.resume();
  }

  // ------------------------------------------------------------------ observation

  connections(): ConnectionInfo[] {
    return [...this.sessions.values()].map((s) => s.conn).filter((c) => c.state !== 'closed');
  }

  sentIds(stream: string): number[] {
    return this.feed.sentIds(stream);
  }

  skippedIds(stream: string): number[] {
    return this.feed.skippedIds(stream);
  }

  generated(stream: string): number {
    return this.feed.generated(stream);
  }

  // ------------------------------------------------------------------ extension

  route(method: string, pathname: string, handler: RouteHandler): void {
    this.routes.set(`${method.toUpperCase()} ${pathname}`, handler);
  }

  wsRoute(pathPrefix: string, handler: WsRouteHandler): void {
    this.wsRoutes.push({ prefix: pathPrefix, handler });
    this.wsRoutes.sort((a, b) => b.prefix.length - a.prefix.length); // the most specific prefix wins
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.feed.stop();
      for (const s of this.sessions.values()) s.conn.destroy();
      this.wss.close();
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ for the dialects

  /**
   * Starts delivering streams the dialect validated, all or none: false (and a violation) when they
   * would take the connection past limits.streamsPerConnection (neither venue documents such a cap for
   * spot and linear/public streams: facts sheet "Corrections"; only an override sets one).
   */
  protected subscribeAll(s: Session, streams: readonly string[]): boolean {
    const added = [...new Set(streams)].filter((x) => !s.conn.streams.has(x));
    const max = this.settings.streamsPerConnection;
    if (s.conn.streams.size + added.length > max) {
      this.violation(s.conn.id, 'streams_per_connection', `more than ${max} streams on one connection: ${added.join(', ')} refused`);
      return false;
    }
    for (const x of added) {
      s.conn.streams.add(x);
      this.feed.attach(s, x);
    }
    return true;
  }

  protected unsubscribeAll(s: Session, streams: readonly string[]): void {
    for (const x of streams) if (s.conn.streams.delete(x)) this.feed.detach(s, x);
  }

  protected violation(connId: number, rule: VenueViolationRule, detail: string): void {
    // The shared Violation type names Binance's rules only; the venue rules are documented beside it.
    const v: Violation = { at: this.settings.clock(), connId, rule: rule as ViolationRule, detail };
    this.violations.push(v);
    try {
      this.onViolation?.(v);
    } catch {
      // an observer's bug must not take the exchange down
    }
  }

  // ------------------------------------------------------------------ internals

  private tapeOrThrow(stream: string): Tape {
    const tape = this.newTape(stream);
    if (tape === null) throw new TypeError(`${this.settings.venue} has no stream ${stream}`);
    return tape;
  }

  private inMaintenance(): boolean {
    return this.maintenanceUntil > this.settings.time.now();
  }

  private recordAttempt(status: number, req: IncomingMessage): void {
    this.upgradeAttempts.push({
      at: this.settings.clock(),
      status,
      path: (req.url ?? '/').split('?')[0]!,
      remoteAddress: req.socket.remoteAddress ?? '',
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.httpUrl);
    const handler = this.routes.get(`${req.method} ${url.pathname}`);
    if (handler === undefined) {
      sendJson(res, 404, errorBody(404, `Unknown endpoint: ${req.method} ${url.pathname}`));
      return;
    }
    try {
      handler(req, res, url);
    } catch {
      if (!res.headersSent) sendJson(res, 500, errorBody(500, 'Internal error'));
      else res.destroy();
    }
  }

  /**
   * The checks in the Binance simulator's order: the IP's attempt budget first (every attempt counts,
   * refused ones too: a rate, facts sheet "Corrections" for Bybit), then injected refusals, then
   * maintenance, then the path.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    const refuse = (status: number, msg: string, retryAfterS: number | null): void => {
      this.recordAttempt(status, req);
      refuseUpgrade(socket, status, errorBody(status, msg), retryAfterS);
    };
    const ip = req.socket.remoteAddress ?? '';
    const wait = this.attempts.hit(ip, this.settings.time.now());
    if (wait !== null) {
      const { connectionAttempts: n, connectionAttemptWindowMs: w } = this.settings;
      this.violation(0, 'connection_attempts', `more than ${n} connection attempts from ${ip} within ${w} ms`);
      refuse(429, `Too many connection attempts; current limit is ${n} per ${w} ms.`, Math.ceil(wait / 1000));
      return;
    }
    if (this.refusal !== null) {
      const { status, retryAfterS } = this.refusal;
      if (--this.refusal.remaining <= 0) this.refusal = null;
      refuse(status, `Upgrade refused by the simulator (HTTP ${status}).`, retryAfterS);
      return;
    }
    if (this.inMaintenance()) {
      const { status, retryAfterS } = this.maintenanceRefusal;
      const left = Math.ceil((this.maintenanceUntil - this.settings.time.now()) / 1000);
      refuse(status, 'System is under maintenance.', retryAfterS >= 0 ? retryAfterS : left);
      return;
    }
    const path = new URL(req.url ?? '/', 'http://simulator').pathname;
    const custom = this.wsRoutes.find((r) => path.startsWith(r.prefix));
    if (custom !== undefined) {
      this.accept(req, socket, head, path, 'custom', (s, ws) => custom.handler(ws, req, s.conn));
      return;
    }
    if (!this.paths.has(path)) {
      refuse(404, `No WebSocket endpoint at ${path}`, null);
      return;
    }
    this.accept(req, socket, head, path, 'market', (s) => {
      s.conn.onText = (text) => {
        s.lastClientAt = this.settings.time.now();
        this.onMessage(s, text);
      };
      const k = this.keepalive;
      s.keepAlive(this.settings.keepaliveMs, () => k.lastActivity(s), () => {
        this.violation(s.conn.id, 'ping_timeout', k.detail);
        if (k.abrupt === true) s.conn.destroy();
        else s.conn.close(k.code, k.reason);
      });
      this.onOpen(s, new URL(req.url ?? '/', 'http://simulator'));
    });
  }

  private accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    path: string,
    kind: 'market' | 'custom',
    setup: (s: Session, ws: WebSocket) => void,
  ): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing !== null) {
        ws.terminate();
        return;
      }
      this.recordAttempt(101, req);
      this.totalConnections++;
      const init = {
        id: this.nextId++,
        path,
        kind,
        combined: false,
        micro: false,
        openedAt: this.settings.clock(),
        remoteAddress: req.socket.remoteAddress ?? '',
        remotePort: req.socket.remotePort ?? 0,
      };
      const s = new Session(new SimConnection(ws, socket, init, this.connSettings, this.host), this.newConnId());
      this.sessions.set(s.conn.id, s);
      setup(s, ws);
    });
  }
}

function dropConn(c: SimConnection, opts: DropOptions): void {
  if (opts.abrupt) c.destroy();
  else c.close(opts.code ?? 1001, 'dropped by simulator');
}
