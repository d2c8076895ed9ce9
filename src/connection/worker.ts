import { delay, type Clock, type Timer } from '../clock.js';
import type { Config } from '../config/types.js';
import { ErrorCodes, UpgradeRejectedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { StreamRouter } from '../pipeline/stream-router.js';
import type { AttemptBudget } from './attempt-budget.js';
import { Backoff } from './backoff.js';
import { RecoveryGate } from './recovery-gate.js';
import type { MarketProtocol, Venue } from '../venues/types.js';
import { Session, type SessionEnd, type SessionProtocol } from './session.js';
import { StatusChannel, type StatusOf, type WorkerStatus, type WorkerStatusType } from './status.js';
import type { ReadHold } from '../pipeline/read-hold.js';

/**
 * One planned connection, kept up for as long as the daemon runs. The state is one field, and every
 * transition is logged once and counted:
 *
 *   idle ─► connecting ─► open ─► rotating ─► open ...
 *              ▲   │        │        (lifetime or serverShutdown: replacement first, then switch)
 *              │   ▼        ▼
 *            backoff ◄── (dropped, stale, refused)          any ─► closed (stop)
 *
 * The reconnect is one loop running one attempt at a time (nats.js dialLoop); every attempt is
 * taken from the supervisor-wide AttemptBudget; every delay is cancellable, so stop() cuts a
 * backoff short. Each transition, and each lost socket or failed replacement, is also a
 * WorkerStatus (status.ts) that status() and nextStatus() hand to whoever awaits it.
 */
export type WorkerState = 'idle' | 'connecting' | 'open' | 'rotating' | 'backoff' | 'closed';

/** Why a connection is switched over to a replacement (a bounded metric label). */
/** `silent_stream`: a stream lost its subscription upstream on a venue without live subscribe (silence-watch.ts). */
export type RotateReason = 'lifetime' | 'server_shutdown' | 'listen_key_renewed' | 'silent_stream';

export interface WorkerOptions {
  id: string;
  streams: readonly string[];
  /** The URL to dial, asked for each attempt (see SessionOptions.url). */
  url: () => string | Promise<string>;
  /** For connections that are not market-data streams (user data). */
  protocol?: SessionProtocol;
  /** The venue's market protocol, a new one per attempt, for the streams it subscribes. */
  market?: (streams: readonly string[]) => MarketProtocol;
  /** The venue: its client heartbeat and close codes. */
  venue: Pick<Venue, 'clientPing' | 'closeCause'>;
  config: Config;
  budget: AttemptBudget;
  router: StreamRouter;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** The exchange announced a shutdown (maintenance hint for the ledger). */
  onServerShutdown?: (at: number) => void;
  /** Shared by the feed's workers: one probes while upgrades are refused with 503 (recovery-gate.ts). */
  gate?: RecoveryGate;
  /** Attempts the prober leaves in the budget for the others' reconnects (the feed's connections). */
  reserve?: () => number;
  random?: () => number;
  /** The feed's read hold (recorder backpressure), handed to each session. */
  reads?: ReadHold;
}

/**
 * The `reason` of a failed attempt (the backoff line, docs/troubleshooting.md "Connection state
 * changes"), by the error's code: what the operator looks at first. A refused upgrade is
 * `upgrade_<status>`; an error without one of these codes `connect_failed`.
 */
const FAILURE_REASONS: Record<string, string> = {
  [ErrorCodes.FK_ERR_CONNECT]: 'network_error',
  [ErrorCodes.FK_ERR_CONNECT_TIMEOUT]: 'connect_timeout',
  [ErrorCodes.FK_ERR_CONNECTION_CLOSED]: 'closed_while_connecting',
  [ErrorCodes.FK_ERR_SUBSCRIBE]: 'subscribe_refused',
  [ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT]: 'subscribe_timeout',
};

/** 418 without Retry-After: Binance bans for 2 min to 3 days; start at 2 min. */
const DEFAULT_BAN_MS = 120_000;

export class ConnectionWorker {
  readonly id: string;
  private stateValue: WorkerState = 'idle';
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private current: Session | null = null;
  private replacement: Session | null = null;
  private attempts = 0;
  private rotateTimer: Timer | undefined;
  private wakeRotate: ((reason: RotateReason) => void) | null = null;
  private loop: Promise<void> | null = null;
  private readonly log: Logger;
  private readonly gate: RecoveryGate;
  /** The connection's streams: the plan's, and live additions (relay clients, the universe). */
  private readonly list: string[];
  private readonly statuses = new StatusChannel<WorkerStatus>();
  /** Resolves the first time the worker is open (every stream subscribed), or when it is closed first. */
  readonly opened: Promise<void> = this.statuses.next((s) => s.type === 'open').then(() => undefined);

  constructor(private readonly opts: WorkerOptions) {
    this.id = opts.id;
    this.list = [...opts.streams];
    this.backoff = new Backoff(opts.config.connection.backoff, opts.random);
    this.log = opts.logger.child({ connection: opts.id });
    this.gate = opts.gate ?? new RecoveryGate();
  }

  get state(): WorkerState {
    return this.stateValue;
  }

  /** The socket currently delivering (null while down). */
  get session(): Session | null {
    return this.current;
  }

  get streams(): readonly string[] {
    return this.list;
  }

  /** Every status from this call on, in order, until the worker is closed (nats.js status()). */
  status(): AsyncIterableIterator<WorkerStatus> {
    return this.statuses.iterate();
  }

  /**
   * The next status of `type` (that `match` accepts) from now on; null if the worker is closed
   * first (or `signal` aborts). E.g. `await worker.nextStatus('open')` after a drop.
   */
  nextStatus<T extends WorkerStatusType>(type: T, match: (s: StatusOf<T>) => boolean = () => true, signal?: AbortSignal): Promise<StatusOf<T> | null> {
    return this.statuses.next((s): s is StatusOf<T> => s.type === type && match(s as StatusOf<T>), signal);
  }

  /**
   * Add streams to this connection: subscribed at once on the open socket (and on a replacement
   * being opened), and on every later reconnect. Resolves once the current socket confirmed, or at
   * once while the connection is down (the next socket subscribes them).
   */
  async addStreams(names: readonly string[]): Promise<void> {
    const fresh = names.filter((n) => !this.list.includes(n));
    this.list.push(...fresh);
    await Promise.all([this.current, this.replacement].filter((s) => s !== null && s.alive).map((s) => s!.addStreams(fresh)));
  }

  /** Remove streams from this connection (unsubscribed on the open socket, not asked for again). */
  async removeStreams(names: readonly string[]): Promise<void> {
    for (const n of names) {
      const i = this.list.indexOf(n);
      if (i !== -1) this.list.splice(i, 1);
    }
    await Promise.all([this.current, this.replacement].filter((s) => s !== null && s.alive).map((s) => s!.removeStreams(names)));
  }

  start(): void {
    if (this.stateValue !== 'idle') return;
    this.loop = this.run().catch((err: unknown) => {
      this.log.error({ event: 'worker_failed', err }, 'connection worker failed');
    });
  }

  /** Close the connection for good (daemon shutdown). Resolves when it is closed. */
  async stop(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.abort.abort(new Error('stopping'));
    this.gate.leave(this.id);
    this.opts.clock.clearTimeout(this.rotateTimer);
    for (const s of [this.replacement, this.current]) s?.close('shutdown', 'daemon shutting down');
    this.transition({ type: 'closed', connection: this.id, reason: 'shutdown' });
    await this.loop;
    await Promise.all([this.current?.ended, this.replacement?.ended]);
    this.statuses.end();
  }

  /** Ask for a switch-over now (serverShutdown, tests, operator). */
  rotate(reason: RotateReason): void {
    this.wakeRotate?.(reason);
  }

  /** Enter the state `s` names: logged once, counted, reported (nothing after closed). */
  private transition(s: StatusOf<Exclude<WorkerState, 'idle'>>): void {
    if (this.stateValue === s.type || this.stateValue === 'closed') return;
    const from = this.stateValue;
    this.stateValue = s.type;
    this.opts.metrics.connectionStateChanges.inc({ state: s.type });
    const { type, connection: _connection, ...fields } = s;
    this.log[type === 'backoff' ? 'warn' : 'info']({ event: 'connection_state', from, state: type, ...fields }, `connection ${this.id} ${type}`);
    this.statuses.push(s);
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(): Promise<void> {
    let reason = 'start';
    while (!this.stopped) {
      const session = await this.connectWithRetry(reason);
      if (session === null) break;
      this.current = session;
      this.transition({ type: 'open', connection: this.id, reason, session: session.id, attempts: this.attempts });
      const end = await this.serve(session);
      if (this.stopped) break;
      reason = end.cause;
      this.opts.metrics.reconnects.inc({ reason: end.cause });
      // A connection that dies soon after opening keeps growing the backoff; one that lived
      // long enough starts again from the initial delay.
      if (this.opts.clock.now() - session.openedAt >= this.opts.config.connection.backoff.maxMs) this.backoff.reset();
      const wait = this.backoff.next();
      this.transition({ type: 'backoff', connection: this.id, reason: end.cause, code: end.code, detail: end.detail, delayMs: wait });
      try {
        await delay(wait, this.abort.signal, this.opts.clock);
      } catch {
        break;
      }
    }
    this.current = null;
  }

  /** Attempts until one connects and subscribes, with backoff between failures. Null when stopped. */
  private async connectWithRetry(reason: string, keepTrying: () => boolean = () => true): Promise<Session | null> {
    const probeMs = this.opts.config.connection.probeIntervalMs;
    for (;;) {
      if (this.stopped || !keepTrying()) return null;
      // While the exchange refuses upgrades with 503, wait for the prober instead of trying.
      await this.gate.enter(this.id, this.abort.signal);
      if (this.stopped || !keepTrying()) return null;
      if (this.gate.probing(this.id) && this.opts.budget.remaining() <= (this.opts.reserve?.() ?? 1)) {
        // Keep the budget's room for everyone's reconnect once the exchange is back.
        try {
          await delay(probeMs, this.abort.signal, this.opts.clock);
        } catch {
          return null;
        }
        continue;
      }
      this.transition({ type: this.current?.alive ? 'rotating' : 'connecting', connection: this.id, reason });
      try {
        const session = await this.attempt();
        if (this.gate.isDown) {
          this.gate.opened();
          this.log.info({ event: 'recovery_probe', state: 'up', session: session.id }, 'upgrades accepted again: every connection of the feed reconnects now');
        }
        return session;
      } catch (err) {
        if (this.stopped) return null;
        const unavailable = err instanceof UpgradeRejectedError && err.status === 503;
        if (unavailable && !this.gate.isDown) {
          this.gate.refused(this.id);
          this.log.warn({ event: 'recovery_probe', state: 'down', probeIntervalMs: probeMs }, 'upgrades refused with 503: one connection probes, the others wait for it');
        }
        // The prober tries at a steady interval; the others wait at the gate, spending no attempt.
        let wait = unavailable ? (this.gate.probing(this.id) ? probeMs : 0) : this.backoff.next();
        let code: number | null = null;
        if (err instanceof UpgradeRejectedError) {
          code = err.status;
          if (err.status === 429 || err.status === 418) {
            const retryAfter = err.retryAfterMs ?? (err.status === 418 ? DEFAULT_BAN_MS : wait);
            wait = Math.max(wait, retryAfter);
            // The limit is per IP: every worker waits, not only this one.
            this.opts.budget.pauseUntil(this.opts.clock.now() + retryAfter);
          } else if (err.retryAfterMs !== null) {
            wait = Math.max(wait, err.retryAfterMs);
          }
        }
        reason = err instanceof UpgradeRejectedError ? `upgrade_${err.status}` : (FAILURE_REASONS[(err as { code?: string }).code ?? ''] ?? 'connect_failed');
        const errorCode = (err as { code?: unknown }).code;
        const failed = { connection: this.id, reason, code, error: typeof errorCode === 'string' ? errorCode : undefined, detail: (err as Error).message, delayMs: wait };
        if (!this.current?.alive) this.transition({ type: 'backoff', ...failed });
        else {
          const { connection: _connection, ...fields } = failed;
          this.log.warn({ event: 'replacement_failed', ...fields }, 'replacement connection failed');
          this.statuses.push({ type: 'replacement_failed', ...failed });
        }
        try {
          await delay(wait, this.abort.signal, this.opts.clock);
        } catch {
          return null;
        }
      }
    }
  }

  private async attempt(): Promise<Session> {
    await this.opts.budget.acquire(this.abort.signal);
    this.attempts++;
    const c = this.opts.config;
    const streams = [...this.list];
    const session = new Session(
      {
        connectionId: this.id,
        url: this.opts.url,
        protocol: this.opts.protocol,
        market: this.opts.market?.(streams),
        clientPing: this.opts.venue.clientPing === null ? null : { ...this.opts.venue.clientPing, everyMs: c.connection.pingIntervalMs },
        closeCause: (code) => this.opts.venue.closeCause(code),
        streams,
        streamsPerSubscribe: c.limits.streamsPerSubscribe,
        messagesPerSecond: c.limits.messagesPerSecond,
        staleAfterMs: c.connection.staleAfterMs,
        handshakeTimeoutMs: c.connection.handshakeTimeoutMs,
        readThreads: c.connection.readThreads,
        router: this.opts.router,
        logger: this.log,
        metrics: this.opts.metrics,
        clock: this.opts.clock,
        reads: this.opts.reads,
        onShutdownNotice: (s) => {
          this.opts.onServerShutdown?.(this.opts.clock.now());
          if (s === this.current) this.rotate('server_shutdown');
        },
      },
      this.attempts,
    );
    this.replacement = session;
    // Whenever it ends, the router learns it once (its streams go dark or move on).
    void session.ended.then((end) => this.opts.router.sessionClosed(session, this.opts.clock.now(), end));
    try {
      await session.open();
      // Streams added while this socket was opening: subscribe them before it takes over.
      const late = this.list.filter((n) => !session.has(n));
      if (late.length > 0) await session.addStreams(late);
      this.opts.metrics.connectionAttempts.inc({ outcome: 'ok' });
      return session;
    } catch (err) {
      const outcome = err instanceof UpgradeRejectedError ? `http_${err.status}` : 'error';
      this.opts.metrics.connectionAttempts.inc({ outcome });
      throw err;
    } finally {
      this.replacement = null;
    }
  }

  /**
   * Serve one session until it ends; meanwhile rotate it before its lifetime ends or when the
   * exchange announces a shutdown. Returns how the last session ended.
   */
  private async serve(first: Session): Promise<SessionEnd> {
    let session = first;
    for (;;) {
      const c = this.opts.config.connection;
      const rotateIn = Math.max(0, session.openedAt + c.maxLifetimeMs - c.rotateBeforeMs - this.opts.clock.now());
      const wake = new Promise<RotateReason>((resolve) => {
        this.wakeRotate = resolve;
        // maxLifetimeMs 0: the venue cuts no connection on a timer (Bybit, OKX): no rotation.
        if (c.maxLifetimeMs > 0) this.rotateTimer = this.opts.clock.setTimeout(() => resolve('lifetime'), rotateIn);
      });
      const ev = await Promise.race([session.ended.then((end) => ({ end })), wake.then((why) => ({ why }))]);
      this.opts.clock.clearTimeout(this.rotateTimer);
      this.wakeRotate = null;
      if ('end' in ev) {
        this.current = null;
        if (!this.stopped) {
          const { cause, code, detail } = ev.end;
          this.log.warn({ event: 'connection_lost', session: session.id, cause, code, detail }, 'connection lost');
          this.statuses.push({ type: 'lost', connection: this.id, session: session.id, cause, code, detail });
        }
        return ev.end;
      }
      if (this.stopped) return session.ended;
      const next = await this.switchOver(session, ev.why);
      if (next === null) {
        // The old one died before a replacement came up, or we are stopping.
        return session.ended;
      }
      session = next;
    }
  }

  /** Open a replacement, let it take every stream over, then close the old one. */
  private async switchOver(old: Session, why: RotateReason): Promise<Session | null> {
    this.transition({ type: 'rotating', connection: this.id, reason: why, session: old.id });
    const next = await this.connectWithRetry(why, () => old.alive);
    if (next === null) return null;
    this.current = next;
    // The router moves each stream once the two connections overlap on it; wait for the last one,
    // the old connection's end, the switch-over timeout or stop, whichever comes first.
    let timer: Timer | undefined;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      this.opts.router.released(old, this.list),
      old.ended,
      new Promise<void>((r) => (timer = this.opts.clock.setTimeout(r, this.opts.config.connection.switchoverTimeoutMs))),
      new Promise<void>((r) => {
        onAbort = () => r();
        if (this.stopped) r();
        else this.abort.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    this.opts.clock.clearTimeout(timer);
    if (onAbort !== undefined) this.abort.signal.removeEventListener('abort', onAbort);
    const left = this.opts.router.ownedBy(old, this.list);
    old.close('switchover', why === 'lifetime' ? 'lifetime rotation' : `switch-over: ${why}`);
    this.opts.metrics.reconnects.inc({ reason: why });
    this.transition({ type: 'open', connection: this.id, reason: why, session: next.id, replaced: old.id, streamsNotOverlapped: left });
    return next;
  }
}
