import type { Clock } from '../clock.js';
import { FeedkeeperError, ErrorCodes, UpgradeRejectedError, parseRetryAfter } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { ReadHold, ReadHolder } from '../pipeline/read-hold.js';
import type { GapCause, SessionRef, StreamRouter } from '../pipeline/stream-router.js';
import type { ClientPing, MarketProtocol, ProtocolIO } from '../venues/types.js';
import { OutgoingLimiter } from './outgoing-limiter.js';
import { StaleWatchdog } from './stale-watchdog.js';
import { FeedSocket, HANDSHAKE_TIMEOUT, OPEN, type FeedSocketHandlers, type WireSocket } from './wire/feed-socket.js';
import { readThread, ThreadedFeedSocket } from './wire/threaded-socket.js';

/** How a session ended. */
export interface SessionEnd {
  cause: GapCause;
  code: number | null;
  detail: string;
  planned: boolean;
}

/** What a custom protocol (user data) may do with its socket. */
export interface SessionIO {
  readonly session: Session;
  /** Send a text message, paced by the connection's outgoing limiter. */
  send(text: string): void;
}

/**
 * A connection that is not a combined market-data stream (the user-data stream, the WebSocket
 * API): it subscribes its own way and reads every frame itself, on the same machinery (pings,
 * stale detection, rotation, attempt budget).
 */
export interface SessionProtocol {
  /** After the upgrade: subscribe; resolves once the exchange confirmed. */
  onOpen(io: SessionIO): Promise<void>;
  /** Every text frame. */
  onText(io: SessionIO, data: Buffer, now: number): void;
}

export interface SessionOptions {
  /** Planned connection id, e.g. `c0`. */
  connectionId: string;
  /**
   * The URL to dial: base URL + combined path for market data (e.g.
   * wss://stream.binance.com:9443/stream); for user data it carries a listen key that may change
   * between attempts, so it is asked for each time. Never logged.
   */
  url: () => string | Promise<string>;
  /** Set for connections that are not market-data streams (user data). */
  protocol?: SessionProtocol;
  /** The venue's market protocol for this connection (required unless `protocol` is set). */
  market?: MarketProtocol;
  /** The venue's client heartbeat; null where the server pings (Binance). */
  clientPing: ClientPing | null;
  /** The gap cause of a close code the server sent. */
  closeCause: (code: number) => GapCause;
  streams: readonly string[];
  streamsPerSubscribe: number;
  messagesPerSecond: number;
  staleAfterMs: number;
  handshakeTimeoutMs: number;
  router: StreamRouter;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** A serverShutdown event arrived: the worker opens a replacement at once. */
  onShutdownNotice: (session: Session) => void;
  /** The feed's read hold: the socket stops reading while the recording is behind (read-hold.ts). */
  reads?: ReadHold;
  /** `connection.readThreads`: 0 (or absent) reads the socket on this thread, N on one of N read threads. */
  readThreads?: number;
}

/**
 * Messages one socket may deliver before it yields the event loop. Under a burst libuv reads up to
 * 2 MiB per readable socket per turn and ws emits every message in it at once; with many sockets a
 * turn grew to 300 ms, starving timers, pongs and the recorder's write completions
 * (docs/performance.md). Pausing the socket for one setImmediate hop bounds a turn.
 */
const BURST_MESSAGES = 1000;
/**
 * Time allowed per subscribe message on top of the handshake: one slot of a 1 message/s pace (the
 * slowest a venue's outgoing limit leaves for requests), plus margin for the reply.
 */
const SUBSCRIBE_SLOT_MS = 1200;
let sessionSeq = 0;

/**
 * The session's one state field, checked at the top of each method (as ws checks readyState):
 *
 *   dialing ─► open ─► closing (close(): a planned end, waiting for the closing handshake) ─► ended
 *      │         └───────────────────────────────────────────────────────────────────────────►│
 *      └──────────────────────────────────────────────────────────────────────────────────────►│
 *
 * `alive` is open or closing: a closing socket still delivers until its close frame.
 */
type SessionState =
  | { readonly kind: 'dialing' }
  | { readonly kind: 'open' }
  | { readonly kind: 'closing'; readonly cause: GapCause; readonly detail: string }
  | { readonly kind: 'ended' };

/**
 * One WebSocket to the exchange, from upgrade to close. The venue's market protocol builds the URL,
 * subscribes (its messages paced by the outgoing limiter) and sorts frames into data (to the router)
 * and control (replies, pongs, notices); the session answers server pings and sends the venue's
 * client pings through the same limiter, watches for silence, and ends exactly once with a cause.
 */
export class Session implements SessionRef, ReadHolder {
  readonly id: string;
  /** Order of creation: a replacement is always newer than the connection it replaces. */
  readonly seq: number;
  readonly connectionId: string;
  readonly ended: Promise<SessionEnd>;
  openedAt = 0;
  private ws: WireSocket | null = null;
  private readonly limiter: OutgoingLimiter;
  private readonly watchdog: StaleWatchdog;
  private resolveEnd!: (e: SessionEnd) => void;
  private state: SessionState = { kind: 'dialing' };
  private pongPayload: Buffer | null = null;
  /** Messages since the socket last yielded the event loop. */
  private burst = 0;
  /** Streams confirmed subscribed on this socket (the URL's, the subscribe's, live additions). */
  private readonly subscribedSet = new Set<string>();
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private pingQueued = false;
  /** The read hold is on: the socket stays paused (yieldLoop does not resume it). */
  private readsHeld = false;

  constructor(private readonly opts: SessionOptions, attempt: number) {
    this.seq = ++sessionSeq;
    this.connectionId = opts.connectionId;
    this.id = `${opts.connectionId}#${attempt}`;
    this.marketIO = this.createMarketIO();
    this.limiter = new OutgoingLimiter(opts.messagesPerSecond, opts.clock);
    this.watchdog = new StaleWatchdog(opts.staleAfterMs, (silent) => this.onStale(silent), opts.clock);
    this.ended = new Promise((resolve) => (this.resolveEnd = resolve));
  }

  get alive(): boolean {
    return this.state.kind === 'open' || this.state.kind === 'closing';
  }

  get lastFrameAt(): number {
    return this.watchdog.lastFrameAt;
  }

  /**
   * Connect and subscribe. Resolves once every stream is confirmed subscribed; rejects with
   * UpgradeRejectedError (429/418/503...), FK_ERR_CONNECT (network), FK_ERR_CONNECT_TIMEOUT,
   * FK_ERR_CONNECTION_CLOSED, FK_ERR_SUBSCRIBE (refused) or FK_ERR_SUBSCRIBE_TIMEOUT.
   */
  async open(): Promise<void> {
    const { streams, streamsPerSubscribe, protocol, market } = this.opts;
    let url: string;
    try {
      url = await (market ? market.url() : this.opts.url());
    } catch (err) {
      // No socket yet (KuCoin's token request failed): the session still ends, once, like a failed dial.
      this.finish({ cause: 'network_error', code: null, detail: (err as Error).message, planned: false });
      throw err;
    }
    await this.dial(url);
    if (this.state.kind !== 'dialing') throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, 'closed during the handshake');
    this.state = { kind: 'open' };
    this.openedAt = this.opts.clock.now();
    this.watchdog.start();
    this.opts.reads?.join(this);
    this.startPings();
    this.opts.metrics.connectionsOpen.inc();
    const subscribed = protocol ? protocol.onOpen(this.io) : market!.subscribe(this.marketIO);
    const timeoutMs = this.opts.handshakeTimeoutMs + Math.ceil(streams.length / streamsPerSubscribe) * SUBSCRIBE_SLOT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        subscribed,
        this.ended.then((e) => Promise.reject(new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, `closed while subscribing: ${e.detail}`))),
        new Promise((_, reject) => {
          timer = this.opts.clock.setTimeout(
            () => reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no subscribe reply within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (err) {
      this.terminate('network_error', (err as Error).message);
      throw err;
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
    for (const name of streams) this.subscribedSet.add(name);
    this.opts.metrics.streamsSubscribed.inc(streams.length);
    this.opts.router.sessionReady(this, streams, this.opts.clock.now());
  }

  /** Is `name` confirmed subscribed on this socket? */
  has(name: string): boolean {
    return this.subscribedSet.has(name);
  }

  /**
   * Subscribe more streams on the open socket (the venue's live subscribe, paced by the limiter).
   * Resolves once the exchange confirmed; rejects with FK_ERR_SUBSCRIBE (refused, or a venue
   * without live changes), FK_ERR_SUBSCRIBE_TIMEOUT or FK_ERR_CONNECTION_CLOSED (the socket ended meanwhile).
   */
  async addStreams(names: readonly string[]): Promise<void> {
    const fresh = names.filter((n) => !this.subscribedSet.has(n));
    if (fresh.length === 0) return;
    await this.change('add', fresh);
    for (const n of fresh) this.subscribedSet.add(n);
    this.opts.metrics.streamsSubscribed.inc(fresh.length);
    this.opts.router.sessionReady(this, fresh, this.opts.clock.now());
  }

  /** Unsubscribe streams on the open socket. */
  async removeStreams(names: readonly string[]): Promise<void> {
    const held = names.filter((n) => this.subscribedSet.has(n));
    if (held.length === 0) return;
    await this.change('remove', held);
    for (const n of held) this.subscribedSet.delete(n);
    this.opts.metrics.streamsSubscribed.dec(held.length);
  }

  /** Can this socket's subscriptions change while it is open (MarketProtocol.add)? */
  get changesLive(): boolean {
    return this.opts.market?.add !== undefined;
  }

  /**
   * The exchange's own list of this socket's subscriptions (MarketProtocol.list), or null where the
   * venue cannot list them. Rejects like addStreams when the socket ends or no reply comes.
   */
  async listSubscriptions(): Promise<string[] | null> {
    const market = this.opts.market;
    if (market?.list === undefined) return null;
    if (!this.alive) throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, 'connection not open');
    return this.bounded(market.list(this.marketIO), this.opts.handshakeTimeoutMs + SUBSCRIBE_SLOT_MS, 'no LIST_SUBSCRIPTIONS reply');
  }

  /**
   * Subscribe again streams the exchange stopped delivering (the silence check): unsubscribed first
   * where the exchange still lists them (`listed`), then subscribed.
   */
  async resubscribe(names: readonly string[], listed: boolean): Promise<void> {
    if (listed) await this.change('remove', names).catch(() => undefined);
    const held = names.filter((n) => this.subscribedSet.delete(n));
    this.opts.metrics.streamsSubscribed.dec(held.length);
    await this.addStreams(names);
  }

  private async bounded<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        work,
        this.ended.then((e) => Promise.reject(new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, `closed while waiting: ${e.detail}`))),
        new Promise<never>((_, reject) => {
          timer = this.opts.clock.setTimeout(() => reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `${what} within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }

  private async change(op: 'add' | 'remove', names: readonly string[]): Promise<void> {
    const market = this.opts.market;
    const fn = market?.[op];
    if (market === undefined || fn === undefined) throw new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, 'this venue does not support changing subscriptions on a live connection');
    if (!this.alive) throw new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, 'connection not open');
    const timeoutMs = this.opts.handshakeTimeoutMs + Math.ceil(names.length / this.opts.streamsPerSubscribe) * SUBSCRIBE_SLOT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        fn.call(market, this.marketIO, names),
        this.ended.then((e) => Promise.reject(new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, `closed while changing subscriptions: ${e.detail}`))),
        new Promise((_, reject) => {
          timer = this.opts.clock.setTimeout(() => reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no ${op === 'add' ? 'subscribe' : 'unsubscribe'} reply within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }

  /** The protocol's handle on this socket. */
  readonly io: SessionIO = {
    session: this,
    send: (text: string) =>
      this.limiter.enqueue(() => {
        if (this.ws && this.ws.readyState === OPEN) {
          this.ws.send(text);
          this.opts.metrics.outgoingMessages.inc({ kind: 'request' });
        }
      }),
  };

  /** The market protocol's handle on this socket (built in the constructor, once `id` is set). */
  private readonly marketIO: ProtocolIO;

  private createMarketIO(): ProtocolIO {
    return {
      id: this.id,
      send: (text: string, kind: string) =>
        this.limiter.enqueue(() => {
          if (this.ws && this.ws.readyState === OPEN) {
            this.ws.send(text);
            this.opts.metrics.outgoingMessages.inc({ kind });
          }
        }),
      data: (frame, now) => this.opts.router.route(this, frame, now),
      malformed: (frame, why) => this.opts.router.malformed(this, frame, why),
      // Until the subscribe is confirmed the planned streams are the connection's.
      connectionGap: (missed, detail) =>
        this.opts.router.connectionGap(this, this.subscribedSet.size > 0 ? [...this.subscribedSet] : this.opts.streams, this.opts.clock.now(), missed, detail),
      shutdownNotice: (detail) => {
        this.opts.logger.warn({ event: 'server_shutdown', connection: this.id, detail }, 'exchange announced a server shutdown: opening a replacement now');
        this.opts.onShutdownNotice(this);
      },
      unexpected: (frame) =>
        this.opts.logger.debug({ event: 'control_message', connection: this.id, text: frame.toString('utf8', 0, 200) }, 'unexpected control message'),
    };
  }

  /** Close politely on purpose (rotation, shutdown): the end is `planned`. */
  close(cause: GapCause, detail: string): void {
    if (this.state.kind === 'ended' || this.state.kind === 'closing') return;
    if (this.state.kind === 'open' && this.ws && this.ws.readyState === OPEN) {
      this.state = { kind: 'closing', cause, detail };
      this.ws.close(1000, detail.slice(0, 100));
      // A peer that does not answer the close handshake is cut after a moment.
      const t = this.opts.clock.setTimeout(() => this.ws?.terminate(), 2000);
      void this.ended.then(() => this.opts.clock.clearTimeout(t));
    } else {
      this.ws?.terminate();
      this.finish({ cause, code: null, detail, planned: true });
    }
  }

  /** Cut the socket without a close handshake (stale connection, failed subscribe). */
  terminate(cause: GapCause, detail: string): void {
    if (this.state.kind === 'ended') return;
    const planned = this.state.kind === 'closing';
    this.ws?.terminate();
    this.finish({ cause, code: null, detail, planned });
  }

  private dial(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        if (err === null) resolve();
        else reject(err);
      };
      const handlers: FeedSocketHandlers = {
        unexpectedResponse: (res) => {
          const err = new UpgradeRejectedError(res.statusCode ?? 0, parseRetryAfter(res.headers['retry-after']));
          res.resume();
          res.destroy();
          settle(err);
          // Only 429 and 418 are the exchange's rate limit; 403, 503... are the server refusing.
          const status = res.statusCode ?? 0;
          this.finish({ cause: status === 429 || status === 418 ? 'rate_limited' : 'server_close', code: status || null, detail: err.message, planned: false });
        },
        open: () => settle(null),
        error: (err) => {
          const timedOut = (err as NodeJS.ErrnoException).code === HANDSHAKE_TIMEOUT;
          settle(new FeedkeeperError(timedOut ? ErrorCodes.FK_ERR_CONNECT_TIMEOUT : ErrorCodes.FK_ERR_CONNECT, `cannot connect: ${err.message}`, { cause: err }));
          this.finish({ cause: 'network_error', code: null, detail: err.message, planned: this.state.kind === 'closing' });
        },
        close: (code, reason) => {
          settle(new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, `closed during the handshake (${code})`));
          const st = this.state;
          if (st.kind === 'closing') {
            this.finish({ cause: st.cause, code, detail: st.detail, planned: true });
          } else if (code === 1006) {
            // 1006 is never sent on the wire: it stands for a TCP connection that ended without a
            // close frame (a reset, a dead peer). That is the network, not the server closing.
            this.finish({ cause: 'network_error', code: null, detail: 'connection lost without a close frame', planned: false });
          } else {
            const cause = this.opts.closeCause(code);
            this.finish({ cause, code, detail: `closed by the server: ${code} ${reason.toString()}`.trim(), planned: false });
          }
        },
        ping: (data) => {
          this.watchdog.touch(this.opts.clock.now());
          // Pong with the ping's payload, through the limiter: pongs count against the message rate.
          // Only the newest ping needs an answer, so at most one pong waits: pings arriving faster
          // than the rate allows never crowd out everything else.
          const queued = this.pongPayload !== null;
          this.pongPayload = data;
          if (queued) return;
          this.limiter.enqueue(() => {
            const payload = this.pongPayload;
            this.pongPayload = null;
            if (payload !== null && ws.readyState === OPEN) {
              ws.pong(payload);
              this.opts.metrics.outgoingMessages.inc({ kind: 'pong' });
            }
          }, true);
        },
        pong: () => this.watchdog.touch(this.opts.clock.now()),
        message: (data, isBinary, at) => this.onMessage(data, isBinary, at),
      };
      const socketOpts = { handshakeTimeoutMs: this.opts.handshakeTimeoutMs, maxPayload: 16 * 1024 * 1024, clock: this.opts.clock };
      const threads = this.opts.readThreads ?? 0;
      const ws: WireSocket = threads > 0 ? new ThreadedFeedSocket(url, socketOpts, handlers, readThread(threads)) : new FeedSocket(url, socketOpts, handlers);
      this.ws = ws;
    });
  }

  /** `now`: the socket's time for the chunk the message came in (one clock read per chunk). */
  private onMessage(data: Buffer, isBinary: boolean, now: number): void {
    this.watchdog.touch(now);
    if (++this.burst >= BURST_MESSAGES) this.yieldLoop();
    if (this.opts.protocol) this.opts.protocol.onText(this.io, data, now);
    else this.opts.market!.onFrame(this.marketIO, data, isBinary, now);
  }

  /**
   * The venue's client heartbeat (Bybit `{"op":"ping"}` every 20 s, OKX text `ping` when idle),
   * through the limiter ahead of requests, like a pong: pings count against the message rate. At
   * most one waits in the limiter.
   */
  private startPings(): void {
    const ping = this.opts.clientPing;
    if (ping === null || this.opts.protocol) return;
    const clock = this.opts.clock;
    // The exchange may set the interval per connection (KuCoin's bullet reply): the smaller wins.
    const everyMs = Math.min(ping.everyMs, this.opts.market?.pingIntervalMs ?? Number.POSITIVE_INFINITY);
    // An idle ping is due `everyMs` after the last frame: look four times per interval.
    const period = ping.whenIdle ? Math.max(1, Math.floor(everyMs / 4)) : everyMs;
    const tick = (): void => {
      if (!this.alive) return;
      const due = !ping.whenIdle || clock.now() - this.watchdog.lastFrameAt >= everyMs;
      if (due && !this.pingQueued) {
        this.pingQueued = true;
        this.limiter.enqueue(() => {
          this.pingQueued = false;
          const ws = this.ws;
          if (ws && ws.readyState === OPEN) {
            ws.send(ping.text());
            this.opts.metrics.outgoingMessages.inc({ kind: 'ping' });
          }
        }, true);
      }
      this.pingTimer = clock.setTimeout(tick, period);
    };
    this.pingTimer = clock.setTimeout(tick, period);
  }

  private yieldLoop(): void {
    const ws = this.ws;
    if (ws === null || ws.isPaused) return;
    ws.pause();
    setImmediate(() => {
      this.burst = 0;
      if (ws.readyState === OPEN && !this.readsHeld) ws.resume();
    });
  }

  /**
   * The read hold (ReadHolder): the socket stops reading; what the exchange sends meanwhile waits in
   * the socket buffers. Released, the silence that was ours is not the connection's: the stale
   * watchdog counts from now.
   */
  holdReads(on: boolean): void {
    this.readsHeld = on;
    const ws = this.ws;
    if (ws === null || ws.readyState !== OPEN) return;
    if (on) {
      if (!ws.isPaused) ws.pause();
      return;
    }
    this.watchdog.touch(this.opts.clock.now());
    this.burst = 0;
    if (ws.isPaused) ws.resume();
  }

  private onStale(silentMs: number): void {
    this.opts.logger.warn({ event: 'connection_stale', code: ErrorCodes.FK_ERR_STALE, connection: this.id, silentMs, streams: this.subscribedSet.size }, 'no frame within staleAfterMs: terminating');
    this.terminate('stale', `no frame for ${silentMs} ms`);
  }

  private finish(end: SessionEnd): void {
    if (this.state.kind === 'ended') return;
    const wasOpen = this.state.kind !== 'dialing';
    this.state = { kind: 'ended' };
    this.watchdog.stop();
    this.opts.reads?.leave(this);
    this.opts.clock.clearTimeout(this.pingTimer);
    this.limiter.close();
    this.opts.market?.closed(new FeedkeeperError(ErrorCodes.FK_ERR_CONNECTION_CLOSED, `connection ended: ${end.detail}`));
    if (this.subscribedSet.size > 0) this.opts.metrics.streamsSubscribed.dec(this.subscribedSet.size);
    if (wasOpen) this.opts.metrics.connectionsOpen.dec();
    this.resolveEnd(end);
  }
}
