import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData, type ServerOptions } from 'ws';
import { systemClock, type Clock } from '../clock.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StreamRef } from '../pipeline/stream-ref.js';
import { dataOffset } from '../venues/binance/frame.js';
import { isBinanceVenue } from '../venues/index.js';
import { MessageRate, ServerHeartbeat } from './heartbeat.js';
import { relayMetrics, type ControlOutcome, type DropReason, type RefuseReason, type RelayMetrics, type RelaySource } from './metrics.js';
import { AddressAllowList, parseRelayPath, type RelayPath } from './paths.js';
import { errorReply, parseControl, resultReply, type Id, type MethodLabel } from './protocol.js';
import { refusalOf, type RelayClientStats, type RelayServerOptions, type RelaySink, type RelayStats, type RelayUpstream } from './types.js';

/**
 * The Binance-compatible local relay (docs/relay.md): a WebSocket server speaking Binance's
 * market-stream protocol, fed by the daemon with every accepted message (the `relay` sink of
 * src/pipeline/sinks.ts) and fanning each out to the clients subscribed to its stream. Raw clients
 * (`/ws`) get the bytes of the envelope's `data`, combined clients (`/stream`) the envelope as it
 * came: nothing is re-serialized. A slow client is closed (1008) when its send buffer passes
 * clientBufferBytes; nobody else, upstream included, waits for it.
 */

/**
 * A client's data messages waiting for the end of the current turn (see RelayServer.write): beyond
 * this many bytes they go to its socket at once, so that a burst never builds one huge buffer.
 */
const MAX_PENDING_BYTES = 256 * 1024;
/**
 * A batch is written out at the latest this long after its first frame was queued, even inside a
 * long turn (a backlog read after the daemon was descheduled, a burst): what a client waits for is
 * then bounded by this plus the writes of the clients before it, not by the length of the turn.
 * Checked every BATCH_AGE_CHECK_EVERY messages (a clock read each).
 */
const MAX_BATCH_AGE_MS = 0.25;
const BATCH_AGE_CHECK_EVERY = 16;
/** While probed (RelayServer.probe): one message in this many is timed, for every client that gets it. Prime. */
const PROBE_EVERY = 31;
/** A combined URL may name 1024 streams (Node's default of 16 KiB would refuse about 700 with 431). */
const MAX_HEADER_BYTES = 64 * 1024;
/** Control messages waiting behind a slow SUBSCRIBE (one whose streams are being subscribed upstream). */
const MAX_QUEUED = 64;
/** close(): how long clients get to answer the 1001 close frame before their sockets are destroyed. */
const CLOSE_WAIT_MS = 1000;
/** At most one relay_refused line per reason this often (a refused client that retries in a loop). */
const REFUSED_LOG_EVERY_MS = 10_000;
/** Raw TCP connections beyond maxClients that the HTTP server still accepts (to answer 403/404/503). */
const CONNECTION_SLACK = 64;

type ClientState = 'open' | 'closing' | 'closed';

class Client {
  state: ClientState = 'open';
  gaps = false;
  /** Streams the client receives (attached to their entries). */
  readonly streams = new Set<string>();
  /** Control messages not handled yet (one at a time, in order). */
  readonly queue: string[] = [];
  busy = false;
  maxBuffered = 0;
  heartbeat: ServerHeartbeat | undefined;
  /**
   * Data frames (WebSocket-framed, shared with every client that gets the same bytes) waiting to be
   * written to the socket in one write at the end of the turn; their bytes, the socket's buffered
   * bytes when the first was queued, and (only while probed) when the timed ones among them were
   * handed to write() (performance.now()).
   */
  pending: Buffer[] = [];
  pendingBytes = 0;
  pendingBase = 0;
  readonly probeTimes: number[] = [];

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    /** The socket under `ws`: data frames are written to it directly (ws writes its own frames there too). */
    readonly socket: Duplex,
    readonly venue: string,
    readonly remote: string,
    readonly path: string,
    public combined: boolean,
    readonly rate: MessageRate,
  ) {}
}

/** One stream some client wants: the clients receiving it, and how many hold it (receiving or waiting for it). */
interface Entry {
  readonly venue: string;
  readonly name: string;
  readonly clients: Client[];
  holders: number;
  state: 'pending' | 'ready' | 'failed';
  ready: Promise<void>;
}

export class RelayServer implements RelaySink, RelaySource {
  readonly name = 'relay';

  private readonly opts: RelayServerOptions;
  private readonly venues: readonly string[];
  private readonly upstream: RelayUpstream;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly metrics: RelayMetrics;
  private readonly allowList: AddressAllowList;
  private readonly bufferLimit: number;
  private readonly streamsPerClient: number;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  /** venue → stream name → entry: the hot path's two lookups. */
  private readonly index = new Map<string, Map<string, Entry>>();
  private readonly clients = new Set<Client>();
  private pendingUpgrades = 0;
  private nextId = 1;
  private listening = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly refusedLog = new Map<string, { until: number; suppressed: number }>();
  /** Clients with pending data frames, written out by flush() at the end of the turn. */
  private dirty: Client[] = [];
  private flushQueued = false;
  /** performance.now() when the pending batch's first frame was queued. */
  private batchAt = 0;
  private sinceAgeCheck = 0;
  /**
   * Measurement hook (bench/relay-phase.ts): when set, one message in PROBE_EVERY is timed from its
   * write() call to the return of the socket write that carries it, for every client it goes to,
   * and probe() gets each of those times in µs. Costs one clock read per timed message and one per
   * socket write while set; null in the daemon.
   */
  probe: ((micros: number) => void) | null = null;
  private probeTurn = 0;

  constructor(opts: RelayServerOptions) {
    if (opts.venues.length === 0) throw new Error('relay: no venue to serve');
    for (const v of opts.venues) if (!isBinanceVenue(v)) throw new Error(`relay: ${v} is not a Binance venue (the relay speaks Binance's protocol only)`);
    for (const [k, v] of Object.entries({ maxClients: opts.maxClients, clientBufferBytes: opts.clientBufferBytes, maxPayloadBytes: opts.maxPayloadBytes, messagesPerSecond: opts.messagesPerSecond, pingIntervalMs: opts.pingIntervalMs, pongTimeoutMs: opts.pongTimeoutMs })) {
      if (!(Number.isFinite(v) && v > 0)) throw new Error(`relay: ${k} must be a positive number, got ${String(v)}`);
    }
    this.opts = opts;
    this.venues = [...new Set(opts.venues)];
    this.upstream = opts.upstream;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.metrics = relayMetrics(opts.registry);
    this.allowList = new AddressAllowList(opts.allow);
    this.bufferLimit = opts.clientBufferBytes;
    this.streamsPerClient = opts.streamsPerClient ?? 1024;
    for (const v of this.venues) this.index.set(v, new Map());

    const handshakeMs = opts.handshakeTimeoutMs ?? 10_000;
    const wsOptions: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: opts.maxPayloadBytes,
      // Client pings are answered by ws (and counted against the message rate below).
      autoPong: true,
      // How long a close handshake may wait for the client before the socket is destroyed: a slow
      // client closed with 1008 that never reads its close frame is gone after this (a ws option
      // that @types/ws does not list).
      closeTimeout: opts.closeTimeoutMs ?? 5000,
    };
    this.wss = new WebSocketServer(wsOptions);
    this.wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => {
      this.refuse(socket, req, 400, 'bad_handshake', -1, err.message);
    });
    // Half-open and never-upgrading sockets: the whole request within handshakeMs, checked often.
    this.server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        headersTimeout: handshakeMs,
        requestTimeout: handshakeMs,
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(handshakeMs / 2))),
        keepAliveTimeout: Math.min(5000, handshakeMs),
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.maxConnections = opts.maxClients + CONNECTION_SLACK;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.onUpgrade(req, socket, head);
      } catch (err) {
        this.logger.error({ event: 'relay_internal_error', err }, 'relay: upgrade failed');
        socket.destroy();
      }
    });
    // A request that never completes (handshakeMs), headers too large, garbage: answered as Node
    // would (408, 431, 400) and the socket closed.
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    this.metrics.sources.add(this);
  }

  listen(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('relay: closed'));
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.logger.error({ event: 'relay_server_error', err, host: this.opts.host, port: this.opts.port }, 'relay: cannot listen');
        reject(listenError(err, this.opts.host, this.opts.port));
      };
      this.server.once('error', onError);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.logger.error({ event: 'relay_server_error', err }, 'relay: server error'));
        this.listening = true;
        this.logger.info({ event: 'relay_listening', url: this.url, venues: this.venues }, `relay listening on ${this.url}`);
        resolve();
      });
    });
  }

  /** `ws://host:port` (the port the server got when opts.port was 0). */
  get url(): string {
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('relay: not listening');
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `ws://${host}:${a.port}`;
  }

  /** Closes every client with 1001, releases their streams and stops listening. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    this.closing = this.shutdown();
    return this.closing;
  }

  healthy(): boolean {
    return this.listening && !this.closed;
  }

  // ---- the sink (hot path) ----

  /**
   * One message of `stream` to every client subscribed to it: combined clients get `frame`, raw
   * clients its `data`. Each is framed as a WebSocket text message once per message, whatever the
   * number of clients (at most two frames: combined and raw), and queued on each client; at the end
   * of the turn (a microtask after the daemon's socket read that brought it) every client's queue
   * goes to its socket in one write, and clients whose queues hold the same frames share that
   * write's buffer. False only when the relay is closed; a slow client is closed, never a false.
   */
  write(frame: Buffer, _recvMs: number, stream: StreamRef): boolean {
    if (this.closed) return false;
    const entry = this.index.get(stream.venue)?.get(stream.name);
    if (entry === undefined) return true;
    const clients = entry.clients;
    if (clients.length === 0) return true;
    const limit = this.bufferLimit;
    let combined: Buffer | undefined;
    let raw: Buffer | undefined;
    let rawLength = 0;
    let sent = 0;
    let bytes = 0;
    let timed = -1;
    if (this.probe !== null && ++this.probeTurn >= PROBE_EVERY) {
      this.probeTurn = 0;
      timed = performance.now();
    }
    // Backwards: a client closed on the way is only marked (detached later), never spliced out here.
    for (let i = clients.length - 1; i >= 0; i--) {
      const c = clients[i]!;
      if (c.state !== 'open') continue;
      let out: Buffer;
      let length: number;
      if (c.combined) {
        out = combined ??= textFrame(frame, 0, frame.length);
        length = frame.length;
      } else {
        if (raw === undefined) {
          const from = dataOffset(stream.name.length);
          rawLength = frame.length - 1 - from;
          raw = textFrame(frame, from, frame.length - 1);
        }
        out = raw;
        length = rawLength;
      }
      if (c.pending.length === 0) c.pendingBase = c.ws.bufferedAmount;
      const buffered = c.pendingBase + c.pendingBytes;
      if (buffered > c.maxBuffered) c.maxBuffered = buffered;
      if (buffered + out.length > limit) {
        this.slow(c, buffered);
        continue;
      }
      if (c.pending.length === 0) this.markDirty(c);
      c.pending.push(out);
      c.pendingBytes += out.length;
      if (timed >= 0) c.probeTimes.push(timed);
      if (c.pendingBytes > MAX_PENDING_BYTES) this.flushClient(c);
      sent++;
      bytes += length;
    }
    this.metrics.hot.messages += sent;
    this.metrics.hot.bytes += bytes;
    if (this.dirty.length > 0 && ++this.sinceAgeCheck >= BATCH_AGE_CHECK_EVERY) {
      this.sinceAgeCheck = 0;
      if (performance.now() - this.batchAt > MAX_BATCH_AGE_MS) this.flush();
    }
    return true;
  }

  private markDirty(c: Client): void {
    if (this.dirty.length === 0) {
      this.batchAt = performance.now();
      this.sinceAgeCheck = 0;
    }
    this.dirty.push(c);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  /** The end of the turn: every client's pending frames to its socket, one write each. */
  private readonly flush = (): void => {
    this.flushQueued = false;
    const dirty = this.dirty;
    this.dirty = [];
    let lastList: Buffer[] | null = null;
    let lastOut: Buffer | null = null;
    for (let i = 0; i < dirty.length; i++) {
      const c = dirty[i]!;
      const list = c.pending;
      if (list.length === 0) continue; // written already (flushClient)
      let out: Buffer;
      if (list.length === 1) out = list[0]!;
      else if (lastList !== null && sameFrames(lastList, list)) out = lastOut!;
      else {
        out = Buffer.concat(list, c.pendingBytes);
        lastList = list;
        lastOut = out;
      }
      this.writeOut(c, out);
    }
  };

  /** A client's pending frames to its socket now (before ws sends anything of its own, or past MAX_PENDING_BYTES). */
  private flushClient(c: Client): void {
    const list = c.pending;
    if (list.length === 0) return;
    this.writeOut(c, list.length === 1 ? list[0]! : Buffer.concat(list, c.pendingBytes));
  }

  private writeOut(c: Client, out: Buffer): void {
    c.pending = [];
    c.pendingBytes = 0;
    if (c.state !== 'open' || !c.socket.writable) {
      c.probeTimes.length = 0;
      return;
    }
    c.socket.write(out);
    const times = c.probeTimes;
    if (times.length > 0) {
      const probe = this.probe;
      if (probe !== null) {
        const now = performance.now();
        for (let i = 0; i < times.length; i++) probe((now - times[i]!) * 1000);
      }
      times.length = 0;
    }
  }

  /**
   * A ledger entry was written (a gap opened or closed): `{"stream":"!gap","data":<line>}` to every
   * client of that stream that asked for gap notices (SET_PROPERTY ["gaps", true]). An entry without
   * a venue (ledgers of one-venue versions) belongs to the first venue.
   */
  gap(entry: { venue: string | null; stream: string; [k: string]: unknown }, line: string): void {
    if (this.closed) return;
    try {
      const e = this.index.get(entry.venue ?? this.venues[0]!)?.get(entry.stream);
      if (e === undefined) return;
      let text: string | undefined;
      let n = 0;
      for (let i = e.clients.length - 1; i >= 0; i--) {
        const c = e.clients[i]!;
        if (!c.gaps || c.state !== 'open') continue;
        text ??= `{"stream":"!gap","data":${line.endsWith('\n') ? line.slice(0, -1) : line}}`;
        if (this.sendText(c, text)) n++;
      }
      if (n > 0) this.metrics.gapNotices.inc(n);
    } catch (err) {
      this.logger.error({ event: 'relay_internal_error', err }, 'relay: gap notice failed');
    }
  }

  // ---- reports ----

  clientCount(): number {
    return this.clients.size;
  }

  streamCount(): number {
    let n = 0;
    for (const m of this.index.values()) for (const e of m.values()) if (e.clients.length > 0) n++;
    return n;
  }

  maxBufferedBytes(): number {
    let max = 0;
    for (const c of this.clients) max = Math.max(max, c.ws.bufferedAmount + c.pendingBytes);
    return max;
  }

  stats(): RelayStats {
    const streams: string[] = [];
    for (const [venue, m] of this.index) for (const e of m.values()) if (e.clients.length > 0) streams.push(`${venue} ${e.name}`);
    const perClient: RelayClientStats[] = [...this.clients].map((c) => ({
      id: c.id,
      venue: c.venue,
      remote: c.remote,
      path: c.path,
      combined: c.combined,
      gaps: c.gaps,
      streams: [...c.streams],
      bufferedBytes: c.ws.bufferedAmount + c.pendingBytes,
      maxBufferedBytes: c.maxBuffered,
      state: c.state,
    }));
    return { clients: this.clients.size, streams, perClient };
  }

  // ---- HTTP and the upgrade ----

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (!this.allowList.allows(req.socket.remoteAddress)) {
      this.refused(403, 'not_allowed', req);
      sendJson(res, 403, errorBody(-1, `Connections from ${req.socket.remoteAddress ?? 'unknown'} are not allowed (relay.allow)`));
      return;
    }
    const url = parseUrl(req.url);
    if (url !== null && parseRelayPath(this.venues, url) !== null) {
      this.refused(426, 'bad_handshake', req);
      sendJson(res, 426, errorBody(-1, 'This is a WebSocket endpoint: connect with a WebSocket client (ws://)'), { Upgrade: 'websocket' });
      return;
    }
    this.refused(404, 'not_found', req);
    sendJson(res, 404, errorBody(-1, `No WebSocket endpoint at ${clip(url?.pathname ?? String(req.url))}`));
  }

  /**
   * Order of the checks: shutting down, who connects (403), where to (404), what (400), room
   * (503); then the URL's streams are wanted upstream before the upgrade completes, so that a
   * client never gets a connection that stays silent (a refusal is HTTP 503 with Binance's error body).
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (this.closed || !this.listening) {
      this.refuse(socket, req, 503, 'closing', -1, 'The relay is shutting down.');
      return;
    }
    if (!this.allowList.allows(req.socket.remoteAddress)) {
      this.refuse(socket, req, 403, 'not_allowed', -1, `Connections from ${req.socket.remoteAddress ?? 'unknown'} are not allowed (relay.allow)`);
      return;
    }
    const url = parseUrl(req.url);
    const target = url === null ? null : parseRelayPath(this.venues, url);
    if (url === null || target === null) {
      this.refuse(socket, req, 404, 'not_found', -1, `No WebSocket endpoint at ${clip(url?.pathname ?? String(req.url))}`);
      return;
    }
    const upgrade = req.headers.upgrade;
    if (req.method !== 'GET' || typeof upgrade !== 'string' || upgrade.toLowerCase() !== 'websocket' || typeof req.headers['sec-websocket-key'] !== 'string') {
      this.refuse(socket, req, 400, 'bad_handshake', -1, 'Invalid WebSocket upgrade request');
      return;
    }
    // The relay passes the daemon's event times as they are (milliseconds): µs would be a lie.
    const timeUnit = url.searchParams.get('timeUnit');
    if (timeUnit !== null && timeUnit.toUpperCase() !== 'MILLISECOND') {
      this.refuse(socket, req, 400, 'bad_request', -1100, `Invalid timeUnit: ${clip(timeUnit)}: the relay serves millisecond event times only`);
      return;
    }
    let names = target.names;
    // `/ws/0`, `/ws/<placeholder>`: one segment that names no stream (no `@`) is a connection with
    // none, subscribed later by SUBSCRIBE; some clients dial that.
    if (!target.combined && names.length === 1 && !names[0]!.includes('@') && !this.valid(target.venue, names[0]!)) names = [];
    for (const n of names) {
      if (!this.valid(target.venue, n)) {
        this.refuse(socket, req, 400, 'bad_request', -1100, `Invalid stream name: ${clip(n)}`);
        return;
      }
    }
    if (names.length > this.streamsPerClient) {
      this.refuse(socket, req, 400, 'bad_request', -1100, `Too many streams: ${names.length}, at most ${this.streamsPerClient} per connection`);
      return;
    }
    if (this.clients.size + this.pendingUpgrades >= this.opts.maxClients) {
      this.refuse(socket, req, 503, 'max_clients', -1, `Too many relay clients: at most ${this.opts.maxClients} (relay.maxClients)`, 1);
      return;
    }
    const entries = names.map((n) => this.acquire(target.venue, n));
    if (entries.every((e) => e.state === 'ready')) {
      this.accept(req, socket, head, target, entries);
      return;
    }
    this.pendingUpgrades++;
    void Promise.allSettled(entries.map((e) => e.ready)).then((results) => {
      this.pendingUpgrades--;
      const i = results.findIndex((r) => r.status === 'rejected');
      if (i >= 0 || this.closed || socket.destroyed || !socket.writable) {
        for (const e of entries) this.unhold(e);
        if (i < 0) {
          if (this.closed) this.refuse(socket, req, 503, 'closing', -1, 'The relay is shutting down.');
          else socket.destroy();
          return;
        }
        const r = this.refusal(target.venue, names, entries[i]!.name, (results[i] as PromiseRejectedResult).reason, { remote: req.socket.remoteAddress });
        this.refuse(socket, req, 503, 'upstream_refused', r.code, r.message);
        return;
      }
      this.accept(req, socket, head, target, entries);
    });
  }

  private accept(req: IncomingMessage, socket: Duplex, head: Buffer, target: RelayPath, entries: Entry[]): void {
    let settled = false;
    // ws aborts a handshake it cannot complete without calling back: the held streams go with the socket.
    const abandoned = (): void => {
      if (settled) return;
      settled = true;
      for (const e of entries) this.unhold(e);
    };
    socket.once('close', abandoned);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', abandoned);
      if (settled || this.closed) {
        abandoned();
        ws.terminate();
        return;
      }
      settled = true;
      const remote = req.socket.remoteAddress ?? '';
      const c = new Client(this.nextId++, ws, socket, target.venue, remote, clip(req.url ?? ''), target.combined, new MessageRate(this.opts.messagesPerSecond));
      this.clients.add(c);
      for (const e of entries) this.attach(c, e);
      ws.on('message', (data: RawData) => {
        if (this.admit(c)) this.enqueue(c, rawText(data));
      });
      ws.on('ping', () => {
        this.admit(c);
      });
      ws.on('pong', (data: Buffer) => {
        if (this.admit(c)) c.heartbeat?.pong(data.toString('utf8'));
      });
      ws.on('error', (err: Error & { code?: string }) => {
        // ws closes the connection itself (1009 for a message over maxPayload, 1002/1007 otherwise).
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.drop(c, 'payload_too_large', 'none', 1009, 'message too big', `a message over ${this.opts.maxPayloadBytes} bytes`);
        else this.drop(c, 'protocol_error', 'none', 1002, 'protocol error', err.message);
      });
      ws.on('close', (code: number, reason: Buffer) => this.finish(c, code, reason.toString('utf8')));
      c.heartbeat = new ServerHeartbeat({
        intervalMs: this.opts.pingIntervalMs,
        timeoutMs: this.opts.pongTimeoutMs,
        clock: this.clock,
        ping: (payload) => {
          if (ws.readyState === WebSocket.OPEN) ws.ping(payload);
        },
        timeout: () => this.drop(c, 'pong_timeout', 'terminate', null, '', `no pong within ${this.opts.pongTimeoutMs} ms of a ping`),
      });
      c.heartbeat.start();
      this.logger.debug(
        { event: 'relay_client_connected', client: c.id, remote, venue: c.venue, path: c.path, combined: c.combined, streams: c.streams.size },
        'relay client connected',
      );
    });
  }

  // ---- a client's life ----

  /** Counts a frame from the client (message, ping, pong) against its rate; false: ignore it. */
  private admit(c: Client): boolean {
    if (c.state !== 'open') return false;
    if (c.rate.hit(performance.now())) {
      this.drop(c, 'rate_limited', 'close', 1008, 'too many requests', `more than ${this.opts.messagesPerSecond} messages within 1 s`);
      return false;
    }
    return true;
  }

  private slow(c: Client, buffered: number): void {
    this.drop(c, 'slow', 'close', 1008, `send buffer over ${this.bufferLimit} bytes: reading too slowly`, `${buffered} bytes waiting to be sent`);
  }

  /**
   * The relay closes a client: counted and logged once. Its streams are detached in a microtask, so
   * that a drop inside write() or gap() (the daemon's call) never reaches back upstream there.
   */
  private drop(c: Client, reason: DropReason, action: 'close' | 'terminate' | 'none', code: number | null, closeReason: string, detail: string): void {
    if (c.state !== 'open') return;
    if (action === 'close') this.flushClient(c);
    c.state = 'closing';
    c.heartbeat?.stop();
    this.metrics.clientsDropped.inc({ reason });
    this.logger.warn(
      { event: 'relay_client_dropped', client: c.id, remote: c.remote, venue: c.venue, reason, code, detail, streams: c.streams.size },
      `relay client dropped: ${reason}`,
    );
    if (action === 'close') {
      // What was accepted for it went first (above, while it was open), then the close frame.
      c.ws.close(code ?? 1000, closeReason);
    } else if (action === 'terminate') c.ws.terminate();
    queueMicrotask(() => this.detach(c));
  }

  private finish(c: Client, code: number, reason: string): void {
    if (c.state === 'closed') return;
    c.state = 'closed';
    c.heartbeat?.stop();
    c.queue.length = 0;
    this.clients.delete(c);
    this.detach(c);
    this.logger.debug({ event: 'relay_client_closed', client: c.id, remote: c.remote, code, reason: clip(reason) }, 'relay client closed');
  }

  private sendText(c: Client, text: string): boolean {
    if (c.state !== 'open') return false;
    // In order: the data frames queued before this reply or notice go first.
    this.flushClient(c);
    const buffered = c.ws.bufferedAmount;
    if (buffered + Buffer.byteLength(text) > this.bufferLimit) {
      this.slow(c, buffered);
      return false;
    }
    c.ws.send(text);
    return true;
  }

  // ---- control messages ----

  private enqueue(c: Client, text: string): void {
    if (c.queue.length >= MAX_QUEUED) {
      this.drop(c, 'rate_limited', 'close', 1008, 'too many requests', `more than ${MAX_QUEUED} control messages waiting for an answer`);
      return;
    }
    c.queue.push(text);
    if (!c.busy) void this.drain(c);
  }

  /** One control message at a time, in order (a LIST after a SUBSCRIBE sees it); synchronous when nothing waits upstream. */
  private async drain(c: Client): Promise<void> {
    c.busy = true;
    try {
      while (c.state === 'open' && c.queue.length > 0) {
        const text = c.queue.shift()!;
        let pending: Promise<void> | undefined;
        try {
          pending = this.control(c, text);
        } catch (err) {
          this.internalError(c, err);
        }
        if (pending !== undefined) await pending.catch((err: unknown) => this.internalError(c, err));
      }
    } finally {
      c.busy = false;
    }
  }

  /** A bug met while serving one client: logged, and that client closed (1011) so it is never left unanswered. */
  private internalError(c: Client, err: unknown): void {
    this.logger.error({ event: 'relay_internal_error', err, client: c.id }, 'relay: a control message failed');
    this.drop(c, 'internal_error', 'close', 1011, 'internal error', err instanceof Error ? err.message : String(err));
  }

  private control(c: Client, text: string): Promise<void> | undefined {
    const parsed = parseControl(text, (s) => this.valid(c.venue, s));
    if (!parsed.ok) {
      this.count(parsed.method, 'error');
      this.sendText(c, parsed.reply);
      return undefined;
    }
    const r = parsed.request;
    switch (r.method) {
      case 'SUBSCRIBE':
        return this.subscribe(c, r.streams, r.id);
      case 'UNSUBSCRIBE':
        for (const s of r.streams) this.unsubscribe(c, s);
        this.reply(c, r.method, resultReply(null, r.id));
        return undefined;
      case 'LIST_SUBSCRIPTIONS':
        this.reply(c, r.method, resultReply([...c.streams], r.id));
        return undefined;
      case 'SET_PROPERTY':
        if (r.property === 'combined') c.combined = r.value;
        else c.gaps = r.value;
        this.reply(c, r.method, resultReply(null, r.id));
        return undefined;
      case 'GET_PROPERTY':
        this.reply(c, r.method, resultReply(r.property === 'combined' ? c.combined : c.gaps, r.id));
        return undefined;
    }
  }

  private reply(c: Client, method: MethodLabel, text: string, outcome: ControlOutcome = 'ok'): void {
    this.count(method, outcome);
    this.sendText(c, text);
  }

  private count(method: MethodLabel, outcome: ControlOutcome): void {
    this.metrics.controlRequests.inc({ method, outcome });
  }

  /**
   * Every stream of the request wanted upstream (once per stream, however many clients), then all
   * attached and `{"result":null}`; one refusal and nothing of the request is subscribed.
   */
  private subscribe(c: Client, names: string[], id: Id): Promise<void> | undefined {
    const todo = names.filter((n) => !c.streams.has(n));
    if (c.streams.size + todo.length > this.streamsPerClient) {
      this.reply(c, 'SUBSCRIBE', errorReply(2, `Invalid request: too many streams: at most ${this.streamsPerClient} per connection`, id), 'error');
      return undefined;
    }
    const entries = todo.map((n) => this.acquire(c.venue, n));
    if (entries.every((e) => e.state === 'ready')) {
      for (const e of entries) this.attach(c, e);
      this.reply(c, 'SUBSCRIBE', resultReply(null, id));
      return undefined;
    }
    return Promise.allSettled(entries.map((e) => e.ready)).then((results) => {
      const i = results.findIndex((r) => r.status === 'rejected');
      if (i >= 0 || c.state !== 'open') {
        for (const e of entries) this.unhold(e);
        if (i >= 0) {
          const r = this.refusal(c.venue, names, entries[i]!.name, (results[i] as PromiseRejectedResult).reason, { client: c.id });
          this.reply(c, 'SUBSCRIBE', errorReply(r.code, r.message, id), 'refused');
        }
        return;
      }
      for (const e of entries) this.attach(c, e);
      this.reply(c, 'SUBSCRIBE', resultReply(null, id));
    });
  }

  private unsubscribe(c: Client, name: string): void {
    if (!c.streams.delete(name)) return;
    const e = this.index.get(c.venue)?.get(name);
    if (e === undefined) return;
    remove(e.clients, c);
    this.unhold(e);
  }

  /**
   * What the client is told of a stream want() refused, logged: a refusal (a numeric `code`) as
   * relay_subscribe_refused; anything else is unexpected (relay_upstream_error, with the error) and
   * reaches the client as code 2.
   */
  private refusal(venue: string, streams: string[], stream: string, err: unknown, who: Record<string, unknown>): { code: number; message: string } {
    const r = refusalOf(err);
    if (r !== null) {
      this.logger.info({ event: 'relay_subscribe_refused', ...who, venue, streams, stream, code: r.code, msg: r.message }, 'relay: a stream was refused upstream');
      return r;
    }
    this.logger.warn({ event: 'relay_upstream_error', ...who, venue, streams, stream, err }, 'relay: want() failed unexpectedly');
    return { code: 2, message: `Invalid request: ${stream} could not be subscribed: ${err instanceof Error ? err.message : String(err)}` };
  }

  // ---- streams and upstream ----

  private valid(venue: string, stream: string): boolean {
    try {
      return this.upstream.valid(venue, stream) === true;
    } catch (err) {
      this.logger.warn({ event: 'relay_upstream_error', err, venue, stream }, 'relay: upstream.valid failed');
      return false;
    }
  }

  /** The entry of `name`, held once more; want() is called when nobody held it. */
  private acquire(venue: string, name: string): Entry {
    const map = this.index.get(venue)!;
    let e = map.get(name);
    if (e === undefined) {
      let wanted: Promise<void>;
      try {
        wanted = Promise.resolve(this.upstream.want(venue, name));
      } catch (err) {
        wanted = Promise.reject(err);
      }
      const entry: Entry = { venue, name, clients: [], holders: 0, state: 'pending', ready: wanted };
      entry.ready = wanted.then(
        () => {
          entry.state = 'ready';
        },
        (err: unknown) => {
          entry.state = 'failed';
          if (map.get(name) === entry) map.delete(name);
          throw err;
        },
      );
      entry.ready.catch(() => {}); // every holder reads the outcome
      map.set(name, entry);
      e = entry;
    }
    e.holders++;
    return e;
  }

  private attach(c: Client, e: Entry): void {
    c.streams.add(e.name);
    e.clients.push(c);
  }

  /** The client leaves all its streams; the last holder of a stream releases it upstream. */
  private detach(c: Client): void {
    const map = this.index.get(c.venue);
    for (const name of c.streams) {
      const e = map?.get(name);
      if (e === undefined) continue;
      remove(e.clients, c);
      this.unhold(e);
    }
    c.streams.clear();
  }

  private unhold(e: Entry): void {
    if (--e.holders > 0) return;
    const map = this.index.get(e.venue)!;
    if (map.get(e.name) === e) map.delete(e.name);
    if (e.state === 'failed') return; // never delivered: nothing to release
    try {
      this.upstream.release(e.venue, e.name);
    } catch (err) {
      this.logger.warn({ event: 'relay_upstream_error', err, venue: e.venue, stream: e.name }, 'relay: upstream.release failed');
    }
  }

  // ---- refusals and shutdown ----

  private refuse(socket: Duplex, req: IncomingMessage, status: number, reason: RefuseReason, code: number, msg: string, retryAfterS?: number): void {
    this.refused(status, reason, req);
    refuseUpgrade(socket, status, errorBody(code, msg), retryAfterS);
  }

  private refused(status: number, reason: RefuseReason, req: IncomingMessage): void {
    this.metrics.refused.inc({ reason });
    const now = this.clock.now();
    const seen = this.refusedLog.get(reason);
    if (seen !== undefined && now < seen.until) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.refusedLog.set(reason, { until: now + REFUSED_LOG_EVERY_MS, suppressed: 0 });
    this.logger.info(
      { event: 'relay_refused', status, reason, remote: req.socket.remoteAddress, path: clip(req.url ?? ''), suppressed },
      `relay refused a connection: HTTP ${status} (${reason})`,
    );
  }

  private async shutdown(): Promise<void> {
    const waits: Array<Promise<void>> = [];
    for (const c of [...this.clients]) {
      if (c.state === 'open') {
        this.flushClient(c);
        c.state = 'closing';
        c.heartbeat?.stop();
        c.ws.close(1001, 'relay shutting down');
      }
      this.detach(c);
      if (c.ws.readyState !== WebSocket.CLOSED) waits.push(new Promise((resolve) => c.ws.once('close', () => resolve())));
    }
    if (waits.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(waits), new Promise<void>((resolve) => (timer = this.clock.setTimeout(resolve, CLOSE_WAIT_MS)))]);
      this.clock.clearTimeout(timer);
      for (const c of this.clients) c.ws.terminate();
    }
    this.wss.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.metrics.sources.delete(this);
    this.listening = false;
    this.logger.info({ event: 'relay_stopped' }, 'relay stopped');
  }
}

/**
 * `payload[from, to)` as one unmasked WebSocket text frame (FIN, opcode 1), as ws's Sender frames a
 * server's message: a 2-, 4- or 10-byte header, then the bytes.
 */
function textFrame(payload: Buffer, from: number, to: number): Buffer {
  const len = to - from;
  const head = len < 126 ? 2 : len < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + len);
  out[0] = 0x81;
  if (head === 2) out[1] = len;
  else if (head === 4) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  payload.copy(out, head, from, to);
  return out;
}

/** The same frames, in the same order (the clients of one set of streams get identical queues). */
function sameFrames(a: Buffer[], b: Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A port in use or an address that is not ours is a config problem, as for the metrics port
 * (src/metrics/server.ts): a ConfigError naming the key, so that the daemon exits 2 at start,
 * before any connection upstream.
 */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
    case 'EACCES':
      return new ConfigError('relay.port', `cannot listen on ${where}: ${err.code}`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError('relay.host', `cannot listen on ${where}: ${err.code}`, { cause: err });
    default:
      return err;
  }
}

/** Swap-remove: order among a stream's clients does not matter. */
function remove(list: Client[], c: Client): void {
  const i = list.indexOf(c);
  if (i < 0) return;
  const last = list.pop()!;
  if (i < list.length) list[i] = last;
}

function parseUrl(raw: string | undefined): URL | null {
  try {
    return new URL(raw ?? '/', 'http://relay');
  } catch {
    return null;
  }
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function errorBody(code: number, msg: string): string {
  return JSON.stringify({ code, msg });
}

function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * Answers a WebSocket upgrade request with an HTTP error instead of 101, then closes the socket
 * (as the simulator's refuseUpgrade, src/simulator/rest.ts).
 */
function refuseUpgrade(socket: Duplex, status: number, body: string, retryAfterS?: number): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json;charset=UTF-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  if (retryAfterS !== undefined) head.push(`Retry-After: ${retryAfterS}`);
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
