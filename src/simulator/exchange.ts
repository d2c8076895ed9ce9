import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import type { Venue } from '../venues/index.js';
import { SimConnection, type ConnectionHost, type ConnectionInit, type ConnectionSettings } from './connection.js';
import { MarketProtocol } from './control.js';
import { MarketFeed } from './feed.js';
import { AttemptLimiter } from './limits.js';
import type { BookLevels } from './book.js';
import { bookOf, marketRoutes } from './rest-market.js';
import { RestWeightLimiter, type RestAnswer, type RestLimitSettings } from './rest-weights.js';
import { builtinRoutes, errorBody, refuseUpgrade, sendJson } from './rest.js';
import { InstrumentTable } from './instruments.js';
import { CONTRACT_INFO, parseMarketPath, parseStreamName, type StreamSpec } from './streams.js';
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
} from './types.js';

/** Options after defaults from the venue were applied. */
export interface ExchangeSettings extends ConnectionSettings {
  host: string;
  port: number;
  venue: Venue;
  eventsPerSecond: number;
  tickMs: number;
  streamsPerConnection: number;
  connectionAttempts: number;
  connectionAttemptWindowMs: number;
  clock: () => number;
  shutdownGraceMs: number;
  maxBufferedBytes: number;
  idHistoryLimit: number;
  advanceWhileIdle: boolean;
  /** Synthetic symbols listed in exchangeInfo beside the usual ones (instruments.ts). */
  listings: number;
  onViolation: ((v: Violation) => void) | undefined;
  /** REQUEST_WEIGHT accounting (src/simulator/rest-weights.ts). */
  rest: RestLimitSettings;
  /** What REST serves of trade/aggTrade streams (src/simulator/history.ts). */
  tradeHistory: { maxRecords: number; maxAgeMs: number };
}

const ALL: ConnectionFilter = () => true;
/** Client messages larger than this are refused by the WebSocket layer (close 1009). */
const MAX_CLIENT_PAYLOAD = 1 << 20;
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * A Binance-compatible exchange on loopback: HTTP (REST) and WebSocket upgrades on one port, the
 * venue's limits enforced and recorded, and fault controls for rehearsals and tests.
 */
export class Exchange implements Simulator {
  totalConnections = 0;
  readonly upgradeAttempts: UpgradeAttempt[] = [];
  readonly violations: Violation[] = [];
  readonly notes: Note[] = [];
  onViolation: ((v: Violation) => void) | undefined;

  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly feed: MarketFeed;
  private readonly protocol: MarketProtocol;
  private readonly attempts: AttemptLimiter;
  private readonly weights: RestWeightLimiter;
  private readonly routeWeights = new Map<string, number | ((url: URL) => number)>();
  /** Every REST request answered, in order (docs/simulator.md, "REST weight"). */
  readonly restAnswers: RestAnswer[] = [];
  private restRefusal: { remaining: number; status: number; retryAfterS: number } | null = null;
  private readonly conns = new Map<number, SimConnection>();
  private readonly routes = new Map<string, RouteHandler>();
  private readonly wsRoutes: Array<{ prefix: string; handler: WsRouteHandler }> = [];
  private readonly host: ConnectionHost;
  private nextId = 1;
  private address = '';
  private boundPort = 0;
  private maintenanceUntil = -1;
  /** From when the status endpoint reports the maintenance (maintenance()'s statusLagMs). */
  private statusFrom = -1;
  private maintenanceRefusal = { status: 503, retryAfterS: 0 };
  private refusal: { remaining: number; status: number; retryAfterS: number } | null = null;
  private closing: Promise<void> | null = null;
  /** exchangeInfo, with listings and delistings (instruments.ts). */
  readonly instruments: InstrumentTable;

  constructor(private readonly settings: ExchangeSettings) {
    this.instruments = new InstrumentTable(settings.venue.name, settings.listings);
    this.onViolation = settings.onViolation;
    this.attempts = new AttemptLimiter(settings.connectionAttempts, settings.connectionAttemptWindowMs);
    this.feed = new MarketFeed({
      venue: settings.venue.name,
      eventsPerSecond: settings.eventsPerSecond,
      tickMs: settings.tickMs,
      clock: settings.clock,
      time: settings.time,
      idHistoryLimit: settings.idHistoryLimit,
      advanceWhileIdle: settings.advanceWhileIdle,
      maxBufferedBytes: settings.maxBufferedBytes,
      history: settings.tradeHistory,
    });
    this.weights = new RestWeightLimiter(settings.rest);
    this.protocol = new MarketProtocol({
      venue: settings.venue,
      streamsPerConnection: settings.streamsPerConnection,
      attach: (conn, spec) => this.feed.attach(conn, spec),
      detach: (conn, name) => this.feed.detach(conn, name),
      violation: (conn, rule, detail) => this.violation(conn.id, rule, detail),
    });
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
        for (const name of conn.streams) this.feed.detach(conn, name);
        this.conns.delete(conn.id);
      },
    };
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      // A stalled connection must not answer pings; SimConnection answers them itself.
      autoPong: false,
      // Off, as on Binance; and textFrame() relies on it (see frame.ts).
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: MAX_CLIENT_PAYLOAD,
      // How long a close handshake may wait for the client before the socket is destroyed (a ws option
      // that @types/ws does not list).
      closeTimeout: 5000,
    };
    this.wss = new WebSocketServer(wsOptions);
    this.wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => {
      const status = req.method === 'GET' ? 400 : 405;
      this.recordAttempt(status, req);
      refuseUpgrade(socket, status, errorBody(-1, err.message), null);
    });
    // Binance does not document a URL length limit; 64 KiB lets a combined URL name 1024 streams
    // (Node's default of 16 KiB would refuse about 700 with 431).
    this.server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    for (const [method, pathname, handler] of builtinRoutes(settings.venue.name, {
      inMaintenance: () => this.inMaintenance() && this.settings.time.now() >= this.statusFrom,
      now: settings.clock,
    })) {
      this.route(method, pathname, handler);
    }
    for (const r of marketRoutes(settings.venue.name, this.feed)) this.route(r.method, r.path, r.handler, r.weight);
    for (const [method, pathname, handler] of this.instruments.routes(settings.clock)) this.route(method, pathname, handler);
    this.route('POST', '/_sim/dropSubscription', (_req, res, url) => sendJson(res, 200, JSON.stringify({ connections: this.dropSubscription(url.searchParams.get('stream') ?? '') })));
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
    for (const c of [...this.conns.values()]) {
      if (c.state === 'closing' || c.state === 'closed') continue;
      this.dropConn(c, opts);
      n++;
    }
    return n;
  }

  drop(connId: number, opts: DropOptions = {}): void {
    const c = this.conns.get(connId);
    if (c !== undefined) this.dropConn(c, opts);
  }

  stall(filter: ConnectionFilter = ALL): number {
    let n = 0;
    for (const c of this.conns.values()) if (filter(c) && c.stall()) n++;
    return n;
  }

  serverShutdown(filter: ConnectionFilter = ALL, opts: { graceMs?: number } = {}): number {
    const graceMs = opts.graceMs ?? this.settings.shutdownGraceMs;
    const E = this.settings.clock();
    let n = 0;
    for (const c of this.conns.values()) {
      if (!filter(c)) continue;
      const t = c.micro ? E * 1000 : E;
      const event = `{"e":"serverShutdown","E":${t}}`;
      if (c.serverShutdown(c.combined ? `{"stream":"!serverShutdown","data":${event}}` : event, graceMs)) n++;
    }
    return n;
  }

  /**
   * `statusLagMs`: GET /sapi/v1/system/status reports the maintenance only that long after it began
   * (a status page behind the servers), so that a test can order the disconnects before the poll.
   */
  maintenance(ms: number, opts: { status?: number; retryAfterS?: number; statusLagMs?: number } = {}): void {
    this.statusFrom = this.settings.time.now() + (opts.statusLagMs ?? 0);
    this.maintenanceUntil = this.settings.time.now() + ms;
    this.maintenanceRefusal = { status: opts.status ?? 503, retryAfterS: opts.retryAfterS ?? -1 };
    this.dropAll({ code: 1001 });
  }

  refuseUpgrades(count: number, status: number, retryAfterS = 1): void {
    this.refusal = count > 0 ? { remaining: count, status, retryAfterS } : null;
  }

  skip(stream: string, n: number): void {
    const spec = parseStreamName(this.settings.venue, stream);
    if (spec === null) throw new TypeError(`skip(): ${this.settings.venue.name} has no stream ${stream}`);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`skip(): n must be a non-negative integer, got ${n}`);
    this.feed.skip(spec, n);
  }

  pause(): void {
    this.feed.pause();
  }

  advance(ms: number): void {
    this.settings.time.advance(ms);
  }

  /** List a symbol in exchangeInfo (or change its status); USD-M pushes a `!contractInfo` event. */
  list(symbol: string, opts: { status?: string } = {}): void {
    this.instruments.list(symbol, opts);
    this.contractEvent(symbol, opts.status ?? 'TRADING');
  }

  /** Take a symbol out of exchangeInfo; USD-M pushes a `!contractInfo` event (status CLOSE). */
  delist(symbol: string): boolean {
    const was = this.instruments.delist(symbol);
    if (was) this.contractEvent(symbol, 'CLOSE');
    return was;
  }

  /** USD-M `!contractInfo` to every connection subscribed on the market route. */
  private contractEvent(symbol: string, status: string): void {
    if (this.settings.venue.name !== 'binance-usdm') return;
    const E = this.settings.clock();
    const event = `{"e":"contractInfo","E":${E},"s":"${symbol}","ps":"${symbol}","ct":"PERPETUAL","dt":4133404800000,"ot":${E},"cs":"${status}"}`;
    for (const c of this.conns.values()) {
      if (!c.streams.has(CONTRACT_INFO) || !c.path.startsWith('/market/') || c.state !== 'open') continue;
      c.sendText(c.combined ? `{"stream":"${CONTRACT_INFO}","data":${event}}` : event);
    }
  }

  /**
   * Lose a stream's subscription on every connection that has it, silently (no close, no message):
   * the connection delivers its other streams, LIST_SUBSCRIPTIONS no longer names it. Returns how
   * many connections lost it.
   */
  dropSubscription(stream: string): number {
    let n = 0;
    for (const c of this.conns.values()) {
      if (c.streams.delete(stream)) {
        this.feed.detach(c, stream);
        n++;
      }
    }
    return n;
  }

  resume(): void {
    this.feed.resume();
  }

  // ------------------------------------------------------------------ observation

  connections(): ConnectionInfo[] {
    return [...this.conns.values()].filter((c) => c.state !== 'closed');
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

  /** `weight`: the endpoint's REQUEST_WEIGHT (default 1), or a function of the request (depth by limit). */
  route(method: string, pathname: string, handler: RouteHandler, weight: number | ((url: URL) => number) = 1): void {
    this.routes.set(`${method.toUpperCase()} ${pathname}`, handler);
    this.routeWeights.set(`${method.toUpperCase()} ${pathname}`, weight);
  }

  /** The book behind `symbol`'s diff-depth stream (what REST depth serves), best first; null without one. */
  book(symbol: string, limit = 5000): BookLevels | null {
    const b = bookOf(this.feed, symbol);
    return b === null ? null : b.book.snapshot(b.tape.seq, limit, b.tape);
  }

  /** The next `count` REST requests are answered `status` (429, 418, 5xx) with Retry-After. */
  refuseRest(count: number, status: number, retryAfterS = 1): void {
    this.restRefusal = count > 0 ? { remaining: count, status, retryAfterS } : null;
  }

  wsRoute(pathPrefix: string, handler: WsRouteHandler): void {
    this.wsRoutes.push({ prefix: pathPrefix, handler });
    this.wsRoutes.sort((a, b) => b.prefix.length - a.prefix.length); // the most specific prefix wins
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.feed.stop();
      for (const c of this.conns.values()) c.destroy();
      this.wss.close();
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ internals

  private dropConn(c: SimConnection, opts: DropOptions): void {
    if (opts.abrupt) c.destroy();
    else c.close(opts.code ?? 1001, 'dropped by simulator');
  }

  private inMaintenance(): boolean {
    return this.maintenanceUntil > this.settings.time.now();
  }

  private violation(connId: number, rule: ViolationRule, detail: string): void {
    const v: Violation = { at: this.settings.clock(), connId, rule, detail };
    this.violations.push(v);
    try {
      this.onViolation?.(v);
    } catch {
      // an observer's bug must not take the exchange down
    }
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
    const key = `${req.method} ${url.pathname}`;
    if (!this.chargeRest(req, res, key, url)) return;
    const handler = this.routes.get(key);
    if (handler === undefined) {
      sendJson(res, 404, errorBody(-1, `Unknown endpoint: ${req.method} ${url.pathname}`));
      return;
    }
    try {
      handler(req, res, url);
    } catch {
      if (!res.headersSent) sendJson(res, 500, errorBody(-1000, 'An unknown error occurred while processing the request.'));
      else res.destroy();
    }
  }

  /** REQUEST_WEIGHT: false when the request was answered 429/418 (injected or earned). */
  private chargeRest(req: IncomingMessage, res: ServerResponse, key: string, url: URL): boolean {
    const w = this.routeWeights.get(key) ?? 1;
    const weight = typeof w === 'function' ? w(url) : w;
    const path = url.pathname;
    const at = this.settings.clock();
    const record = (status: number, used: number): void => {
      this.restAnswers.push({ at, method: req.method ?? '', path, status, weight, used });
    };
    if (this.restRefusal !== null) {
      const { status, retryAfterS } = this.restRefusal;
      if (--this.restRefusal.remaining <= 0) this.restRefusal = null;
      res.setHeader('Retry-After', String(retryAfterS));
      record(status, 0);
      sendJson(res, status, errorBody(-1003, `Refused by the simulator (HTTP ${status}).`));
      return false;
    }
    const charge = this.weights.charge(req.socket.remoteAddress ?? '', weight, this.settings.clock());
    res.setHeader('X-MBX-USED-WEIGHT-1M', String(charge.used));
    record(charge.status, charge.used);
    if (charge.status === 200) return true;
    res.setHeader('Retry-After', String(charge.retryAfterS));
    const { weightLimit, windowMs } = this.settings.rest;
    const msg =
      charge.status === 418
        ? `Way too many requests; IP banned until ${this.settings.clock() + charge.retryAfterS * 1000}.`
        : `Too much request weight used; current limit is ${weightLimit} request weight per ${windowMs} ms.`;
    sendJson(res, charge.status, errorBody(-1003, msg));
    return false;
  }

  /**
   * Order of the checks: every attempt counts against the IP's budget first (a client that hammers a
   * refusing server stays refused), then injected refusals, then maintenance, then the path.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    const refuse = (status: number, body: string, retryAfterS: number | null): void => {
      this.recordAttempt(status, req);
      refuseUpgrade(socket, status, body, retryAfterS);
    };
    const ip = req.socket.remoteAddress ?? '';
    const wait = this.attempts.hit(ip, this.settings.time.now());
    if (wait !== null) {
      const { connectionAttempts: n, connectionAttemptWindowMs: w } = this.settings;
      this.violation(0, 'connection_attempts', `more than ${n} connection attempts from ${ip} within ${w} ms`);
      refuse(429, errorBody(-1003, `Too many connection attempts; current limit is ${n} per ${w} ms.`), Math.ceil(wait / 1000));
      return;
    }
    if (this.refusal !== null) {
      const { status, retryAfterS } = this.refusal;
      if (--this.refusal.remaining <= 0) this.refusal = null;
      refuse(status, errorBody(status === 418 ? -1003 : -1, `Upgrade refused by the simulator (HTTP ${status}).`), retryAfterS);
      return;
    }
    if (this.inMaintenance()) {
      const { status, retryAfterS } = this.maintenanceRefusal;
      const left = Math.ceil((this.maintenanceUntil - this.settings.time.now()) / 1000);
      refuse(status, errorBody(-1016, 'System is under maintenance.'), retryAfterS >= 0 ? retryAfterS : left);
      return;
    }

    const url = new URL(req.url ?? '/', 'http://simulator');
    const custom = this.wsRoutes.find((r) => url.pathname.startsWith(r.prefix));
    if (custom !== undefined) {
      this.accept(req, socket, head, { path: url.pathname, kind: 'custom', combined: false, micro: false }, (conn, ws) =>
        custom.handler(ws, req, conn),
      );
      return;
    }
    const target = parseMarketPath(this.settings.venue, url);
    if (target === null) {
      refuse(404, errorBody(-1, `No WebSocket endpoint at ${url.pathname}`), null);
      return;
    }
    const specs: StreamSpec[] = [];
    for (const name of target.names) {
      const spec = parseStreamName(this.settings.venue, name);
      if (spec === null) {
        refuse(400, errorBody(-1100, `Invalid stream name: ${name}`), null);
        return;
      }
      specs.push(spec);
    }
    // timeUnit=MICROSECOND switches event times to µs (spot only).
    let micro = false;
    const timeUnit = url.searchParams.get('timeUnit');
    if (timeUnit !== null && this.settings.venue.name === 'binance-spot') {
      const u = timeUnit.toUpperCase();
      if (u !== 'MICROSECOND' && u !== 'MILLISECOND') {
        refuse(400, errorBody(-1100, `Invalid timeUnit: ${timeUnit}`), null);
        return;
      }
      micro = u === 'MICROSECOND';
    }
    this.accept(req, socket, head, { path: url.pathname, kind: 'market', combined: target.combined, micro }, (conn) => {
      conn.onText = (text) => this.protocol.message(conn, text);
      this.protocol.open(conn, specs);
    });
  }

  private accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    init: Pick<ConnectionInit, 'path' | 'kind' | 'combined' | 'micro'>,
    setup: (conn: SimConnection, ws: WebSocket) => void,
  ): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing !== null) {
        ws.terminate();
        return;
      }
      this.recordAttempt(101, req);
      this.totalConnections++;
      const conn = new SimConnection(
        ws,
        socket,
        {
          ...init,
          id: this.nextId++,
          openedAt: this.settings.clock(),
          remoteAddress: req.socket.remoteAddress ?? '',
          remotePort: req.socket.remotePort ?? 0,
        },
        this.settings,
        this.host,
      );
      this.conns.set(conn.id, conn);
      setup(conn, ws);
    });
  }
}
