import { EventEmitter } from 'node:events';
import cron, { type ScheduledTask } from 'node-cron';
import { delay, systemClock, type Clock, type Timer } from '../clock.js';
import { AbortedError, ConfigError, ErrorCodes, FeedkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { RestClient } from '../rest/client.js';
import { binanceCodeOf, retryAfterOf } from '../rest/errors.js';
import { keyPrefix } from './secrets.js';

/**
 * Keeps a USD-M or COIN-M futures listen key alive (facts sheet, "User data"; Binance derivatives docs,
 * "User Data Streams Connect"): a key lives 60 min, a PUT extends it by 60 min, a POST while one
 * exists returns the same key, a PUT on a dead key answers -1125. Spot has no listen keys since
 * 2026-02-20: see ws-api.ts.
 *
 * The key is a credential (it reads the account's events): only keyPrefix() is ever logged.
 */
export type ListenKeyPath = '/fapi/v1/listenKey' | '/dapi/v1/listenKey';

/** Why a new key was fetched. */
export type RenewReason =
  /** The exchange answered a keepalive with -1125: the key is gone. */
  | 'unknown_key'
  /** The stream delivered listenKeyExpired (notifyExpired()). */
  | 'expired'
  /** Keepalives failed for as long as the key could still be valid. */
  | 'keepalive_failed'
  /** A keepalive answer named another key than ours. */
  | 'replaced'
  /** renew() called by hand. */
  | 'manual';

export type ListenKeyState = 'idle' | 'starting' | 'active' | 'stopped';

export interface ListenKeyRenewed {
  /** The new key, in full: the user-data connection needs it for its URL. Never log it. */
  key: string;
  reason: RenewReason;
  previousKeyPrefix: string | null;
}

export interface ListenKeyEvents {
  /** A new key is in force: move the user-data connection to it. */
  renewed: [ListenKeyRenewed];
  /** One keepalive PUT finished (retries are separate events). */
  keepalive: [{ outcome: 'ok' | 'error' | 'unknown_key' }];
}

export interface ListenKeyManagerOptions {
  /** A RestClient for the futures REST host, made with the API key (X-MBX-APIKEY). */
  rest: RestClient;
  path: ListenKeyPath;
  /** node-cron expression, five fields or six with seconds; the facts sheet advises every 30 min. */
  keepaliveCron: string;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** How long a key lives without a keepalive. Default 3 600 000 (60 min). */
  validityMs?: number;
  /** Backoff between failed keepalives or renewals: doubles from initialMs up to maxMs. Default 1 s → 60 s. */
  retry?: { initialMs?: number; maxMs?: number };
  /** node-cron time zone; default the process's. Irrelevant for "every N minutes" expressions. */
  timezone?: string;
}

const UNKNOWN_LISTEN_KEY = -1125;

export class ListenKeyManager extends EventEmitter<ListenKeyEvents> {
  private readonly rest: RestClient;
  private readonly path: ListenKeyPath;
  private readonly cronExpr: string;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly validityMs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly timezone: string | undefined;

  private stateValue: ListenKeyState = 'idle';
  private key: string | null = null;
  /** When the exchange last confirmed the key (POST or PUT success), epoch ms. */
  private confirmedAt = 0;
  private task: ScheduledTask | null = null;
  private ageTimer: Timer | undefined;
  private keepaliveRunning: Promise<void> | null = null;
  private renewing: Promise<string> | null = null;
  private readonly abort = new AbortController();

  constructor(opts: ListenKeyManagerOptions) {
    super();
    if (!cron.validate(opts.keepaliveCron)) {
      throw new ConfigError('userData.keepaliveCron', `"${opts.keepaliveCron}" is not a valid cron expression`);
    }
    this.rest = opts.rest;
    this.path = opts.path;
    this.cronExpr = opts.keepaliveCron;
    this.logger = opts.logger.child({ component: 'listen-key', path: opts.path });
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.validityMs = opts.validityMs ?? 3_600_000;
    this.retryInitialMs = opts.retry?.initialMs ?? 1000;
    this.retryMaxMs = opts.retry?.maxMs ?? 60_000;
    this.timezone = opts.timezone;
  }

  get state(): ListenKeyState {
    return this.stateValue;
  }

  /** The key in force, or null before start() and after stop(). */
  current(): string | null {
    return this.key;
  }

  /** POST a key, then keep it alive on the cron schedule. Resolves with the key; rejects with a RestError. */
  async start(): Promise<string> {
    if (this.stateValue !== 'idle') throw new FeedkeeperError(ErrorCodes.FK_ERR_LISTEN_KEY, `start() called in state ${this.stateValue}`);
    this.stateValue = 'starting';
    let key: string;
    try {
      key = await this.post(this.abort.signal);
    } catch (err) {
      this.stateValue = 'idle';
      throw err;
    }
    if (this.stateValue !== 'starting') throw new AbortedError('listen key manager stopped during start()');
    this.key = key;
    this.confirmed();
    this.stateValue = 'active';
    this.logger.info({ event: 'listen_key_created', listenKeyPrefix: keyPrefix(key), keepaliveCron: this.cronExpr }, 'listen key created');
    this.task = cron.schedule(this.cronExpr, () => this.runKeepalive(), {
      // No noOverlap: keepalive() already shares one cycle between overlapping ticks.
      name: `listen-key-keepalive${this.path}`,
      timezone: this.timezone,
      logger: cronLogger(this.logger),
    });
    this.scheduleAgeUpdate();
    return key;
  }

  /**
   * One keepalive cycle: PUT, retried with backoff (1 s, 2 s, 4 s... capped) while the key can still
   * be valid; -1125 renews at once ('unknown_key'); when the key's validity has run out, renews
   * ('keepalive_failed'). The cron calls this; so may tests. Overlapping calls share one cycle.
   */
  keepalive(): Promise<void> {
    if (this.stateValue !== 'active') return Promise.resolve();
    this.keepaliveRunning ??= this.keepaliveCycle().finally(() => {
      this.keepaliveRunning = null;
    });
    return this.keepaliveRunning;
  }

  /**
   * POST a new key and emit 'renewed'. Retries with backoff until it succeeds or stop() is called
   * (then rejects with FK_ERR_ABORTED). Concurrent calls share one renewal.
   */
  renew(reason: RenewReason = 'manual'): Promise<string> {
    if (this.stateValue !== 'active') {
      return Promise.reject(new FeedkeeperError(ErrorCodes.FK_ERR_LISTEN_KEY, `renew() called in state ${this.stateValue}`));
    }
    this.renewing ??= this.renewLoop(reason).finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  /**
   * The user-data stream delivered `{"e":"listenKeyExpired",...}`: fetch a new key. Pass the event's
   * `listenKey` so that a late event about a key already replaced is ignored. Never throws; the
   * outcome arrives as 'renewed'.
   */
  notifyExpired(listenKey?: string): void {
    if (this.stateValue !== 'active') return;
    if (listenKey !== undefined && this.key !== null && listenKey !== this.key) {
      this.logger.debug({ event: 'listen_key_expired_other', listenKeyPrefix: keyPrefix(listenKey) }, 'listenKeyExpired for a key no longer in use: ignored');
      return;
    }
    this.logger.warn({ event: 'listen_key_expired', listenKeyPrefix: keyPrefix(this.key) }, 'listen key expired: renewing');
    this.renew('expired').catch((err: unknown) => this.logStopped(err, 'renewal after listenKeyExpired'));
  }

  /**
   * Stop the keepalives, cancel retries, DELETE the key. A failed or slow DELETE (at most
   * `deleteTimeoutMs`, default 5000: shutdown must not hang on a REST pause) is logged, not thrown.
   */
  async stop(opts: { deleteTimeoutMs?: number } = {}): Promise<void> {
    if (this.stateValue === 'stopped') return;
    const key = this.key;
    this.stateValue = 'stopped';
    this.abort.abort(new AbortedError('listen key manager stopped'));
    if (this.task !== null) await this.task.destroy();
    this.task = null;
    this.clock.clearTimeout(this.ageTimer);
    this.ageTimer = undefined;
    await Promise.allSettled([this.keepaliveRunning, this.renewing]);
    this.key = null;
    if (key === null) return;
    try {
      await this.rest.request('DELETE', this.path, { signal: AbortSignal.timeout(opts.deleteTimeoutMs ?? 5000) });
      this.logger.info({ event: 'listen_key_deleted', listenKeyPrefix: keyPrefix(key) }, 'listen key deleted');
    } catch (err) {
      this.logger.warn({ event: 'listen_key_delete_failed', listenKeyPrefix: keyPrefix(key), err }, 'listen key DELETE failed; it lapses within 60 min anyway');
    }
  }

  private runKeepalive(): Promise<void> {
    return this.keepalive().catch((err: unknown) => this.logStopped(err, 'keepalive'));
  }

  private async keepaliveCycle(): Promise<void> {
    const signal = this.abort.signal;
    for (let attempt = 0; this.stateValue === 'active'; attempt++) {
      const key = this.key;
      try {
        const body = await this.rest.request<{ listenKey?: unknown }>('PUT', this.path, { signal });
        this.confirmed();
        this.metrics.listenKeyKeepalives.inc({ outcome: 'ok' });
        this.emit('keepalive', { outcome: 'ok' });
        this.logger.debug({ event: 'listen_key_extended', listenKeyPrefix: keyPrefix(key), attempt }, 'listen key extended');
        if (typeof body.listenKey === 'string' && key !== null && body.listenKey !== key) {
          // The answer names the account's active key; if it is not ours, ours is dead.
          this.adopt(body.listenKey, 'replaced', key);
        }
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (binanceCodeOf(err) === UNKNOWN_LISTEN_KEY) {
          this.metrics.listenKeyKeepalives.inc({ outcome: 'unknown_key' });
          this.emit('keepalive', { outcome: 'unknown_key' });
          this.logger.warn({ event: 'listen_key_unknown', listenKeyPrefix: keyPrefix(key) }, 'keepalive: the exchange does not know the listen key (-1125): renewing');
          await this.renew('unknown_key');
          return;
        }
        this.metrics.listenKeyKeepalives.inc({ outcome: 'error' });
        this.emit('keepalive', { outcome: 'error' });
        const waitMs = Math.max(this.backoff(attempt), retryAfterOf(err) ?? 0);
        const validUntil = this.confirmedAt + this.validityMs;
        if (this.clock.now() + waitMs >= validUntil) {
          this.logger.warn({ event: 'listen_key_keepalive_failed', listenKeyPrefix: keyPrefix(key), attempt, err }, 'keepalive: failed for as long as the key could live: renewing');
          await this.renew('keepalive_failed');
          return;
        }
        this.logger.warn({ event: 'listen_key_keepalive_retry', listenKeyPrefix: keyPrefix(key), attempt, retryInMs: waitMs, err }, 'keepalive failed: retrying');
        await delay(waitMs, signal, this.clock);
      }
    }
  }

  private async renewLoop(reason: RenewReason): Promise<string> {
    const signal = this.abort.signal;
    for (let attempt = 0; ; attempt++) {
      if (this.stateValue !== 'active') throw new AbortedError('listen key manager stopped');
      try {
        const key = await this.post(signal);
        if (this.stateValue !== 'active') throw new AbortedError('listen key manager stopped');
        this.adopt(key, reason, this.key);
        return key;
      } catch (err) {
        if (signal.aborted || err instanceof AbortedError) throw new AbortedError('listen key manager stopped');
        const waitMs = Math.max(this.backoff(attempt), retryAfterOf(err) ?? 0);
        this.logger.warn({ event: 'listen_key_renewal_failed', reason, attempt, retryInMs: waitMs, err }, 'listen key renewal failed: retrying');
        await delay(waitMs, signal, this.clock).catch(() => {
          throw new AbortedError('listen key manager stopped');
        });
      }
    }
  }

  private adopt(key: string, reason: RenewReason, previous: string | null): void {
    this.key = key;
    this.confirmed();
    this.metrics.listenKeyRenewals.inc();
    const previousKeyPrefix = keyPrefix(previous);
    this.logger.info({ event: 'listen_key_renewed', reason, listenKeyPrefix: keyPrefix(key), previousKeyPrefix, sameKey: key === previous }, 'listen key renewed');
    this.emit('renewed', { key, reason, previousKeyPrefix });
  }

  private async post(signal?: AbortSignal): Promise<string> {
    const body = await this.rest.request<{ listenKey?: unknown }>('POST', this.path, { signal });
    if (typeof body.listenKey !== 'string' || body.listenKey === '') {
      throw new FeedkeeperError(ErrorCodes.FK_ERR_LISTEN_KEY, `POST ${this.path} answered without a listenKey`);
    }
    return body.listenKey;
  }

  private confirmed(): void {
    this.confirmedAt = this.clock.now();
    this.metrics.listenKeyAge.set(0);
  }

  private backoff(attempt: number): number {
    return Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** attempt);
  }

  /** listenKeyAge follows the clock between keepalives (prom-client gauges hold a value, not a formula). */
  private scheduleAgeUpdate(): void {
    this.ageTimer = this.clock.setTimeout(() => {
      if (this.stateValue !== 'active') return;
      this.metrics.listenKeyAge.set(Math.max(0, (this.clock.now() - this.confirmedAt) / 1000));
      this.scheduleAgeUpdate();
    }, 1000);
    this.ageTimer.unref?.();
  }

  private logStopped(err: unknown, what: string): void {
    if (err instanceof AbortedError || this.stateValue === 'stopped') return;
    this.logger.error({ event: 'listen_key_task_failed', err }, `${what} failed`);
  }
}

/** node-cron's own messages (missed executions...) into our log rather than the console. */
function cronLogger(logger: Logger): { info(m: string): void; warn(m: string): void; error(m: string | Error, e?: Error): void; debug(m: string | Error, e?: Error): void } {
  return {
    info: (m) => logger.debug({ event: 'cron_message', source: 'node-cron' }, m),
    warn: (m) => logger.warn({ event: 'cron_warning', source: 'node-cron' }, m),
    error: (m, e) => logger.error({ event: 'cron_error', source: 'node-cron', err: e }, String(m)),
    debug: (m) => logger.debug({ event: 'cron_message', source: 'node-cron' }, String(m)),
  };
}
