import { every, systemClock, type Clock } from './clock.js';
import type { Config } from './config/types.js';
import { AttemptBudget } from './connection/attempt-budget.js';
import { RecoveryGate } from './connection/recovery-gate.js';
import { ConnectionWorker } from './connection/worker.js';
import { SilenceWatch } from './connection/silence-watch.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/registry.js';
import type { StreamRouter } from './pipeline/stream-router.js';
import type { PlannedConnection } from './plan/planner.js';
import type { Venue } from './venues/types.js';
import type { ReadHold } from './pipeline/read-hold.js';

export interface SupervisorOptions {
  config: Config;
  venue: Venue;
  connections: Array<Pick<PlannedConnection, 'id' | 'path' | 'streams'>>;
  router: StreamRouter;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  onServerShutdown?: (at: number) => void;
  /** Connection attempts of a previous run still inside the window (see AttemptBudget). */
  previousAttempts?: readonly number[];
  onAttempt?: (stamps: readonly number[]) => void;
  /** The feed's read hold (recorder backpressure): every connection's socket joins it. */
  reads?: ReadHold;
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
  connections: { planned: number; open: number };
}

/**
 * Runs one worker per planned connection, all drawing their connection attempts from one budget
 * (Binance: 300 per 5 min per IP), and answers whether the feed is whole right now.
 */
export class Supervisor {
  readonly budget: AttemptBudget;
  /** One prober while the exchange refuses upgrades with 503; the others wait (recovery-gate.ts). */
  private readonly gate = new RecoveryGate();
  readonly workers: ConnectionWorker[];
  private readonly clock: Clock;
  private startedAt = 0;
  private stopAge: () => void = () => undefined;
  /** Each worker's route (combined-stream path): a live stream joins a connection of its route. */
  private readonly routes = new Map<ConnectionWorker, string>();
  private nextId: number;
  /** Streams with a fixed cadence silent on a live connection (silence-watch.ts). */
  private readonly silence: SilenceWatch;

  constructor(private readonly opts: SupervisorOptions) {
    this.clock = opts.clock ?? systemClock;
    const { limits } = opts.config;
    this.budget = new AttemptBudget(
      limits.connectionAttempts,
      limits.connectionAttemptWindowMs,
      this.clock,
      (left) => opts.metrics.attemptBudgetRemaining.set(left),
      { previous: opts.previousAttempts, onAttempt: opts.onAttempt },
    );
    opts.metrics.attemptBudgetRemaining.set(this.budget.remaining());
    opts.metrics.connectionsPlanned.set(opts.connections.length);
    this.nextId = opts.connections.length;
    this.silence = new SilenceWatch({ workers: () => this.workers, router: opts.router, afterMs: opts.config.silence.afterMs, cadences: opts.config.silence.cadences, logger: opts.logger, metrics: opts.metrics, clock: this.clock });
    this.workers = opts.connections.map((c) => {
      const w = this.newWorker(c.id, c.path, c.streams);
      this.routes.set(w, c.path);
      return w;
    });
  }

  private newWorker(id: string, path: string, streams: readonly string[]): ConnectionWorker {
    const { config, venue } = this.opts;
    const { limits } = config;
    const base = config.endpoints.stream.replace(/\/+$/, '');
    return new ConnectionWorker({
      id,
      streams,
      url: () => `${base}${path}`,
      market: (list) =>
        venue.protocol({
          base,
          rest: config.endpoints.rest.replace(/\/+$/, ''),
          path,
          streams: list,
          streamsPerSubscribe: limits.streamsPerSubscribe,
          replyTimeoutMs: config.connection.handshakeTimeoutMs + Math.ceil(list.length / limits.streamsPerSubscribe) * 1200,
          clock: this.clock,
        }),
      venue,
      config,
      budget: this.budget,
      router: this.opts.router,
      logger: this.opts.logger,
      metrics: this.opts.metrics,
      clock: this.clock,
      onServerShutdown: this.opts.onServerShutdown,
      gate: this.gate,
      reads: this.opts.reads,
      reserve: () => this.workers.length,
    });
  }

  /**
   * Subscribe a stream on a live connection (relay clients, the universe): on the connection of its
   * route with the most room left under limits.streamsPerConnection, or on a new connection (one
   * attempt from the budget) when none has room. Resolves once the exchange confirmed it (at once
   * when the connection is down: its next socket subscribes it).
   */
  async addStream(name: string, route: string): Promise<void> {
    await this.addStreamGroups([[name]], route);
  }

  /** Unsubscribe a stream that was added live; a connection left with none is closed. */
  async removeStream(name: string): Promise<void> {
    await this.removeStreams([name]);
  }

  /**
   * Subscribe symbols' streams live (the universe, a reload), each symbol's group of streams on one
   * connection of `route` as the planner keeps them: on the connections with room (most room first),
   * then on as few new connections as the limit allows. Each connection's share goes in one
   * venue-paced batch (streamsPerSubscribe per message, within the message rate). Resolves once
   * every connection confirmed (or, for one that is down, took them for its next socket).
   */
  async addStreamGroups(groups: ReadonlyArray<readonly string[]>, route: string): Promise<void> {
    const limit = this.opts.config.limits.streamsPerConnection;
    const carried = new Set(this.workers.flatMap((w) => w.streams));
    const share = new Map<ConnectionWorker, string[]>();
    const room = (w: ConnectionWorker): number => limit - w.streams.length - (share.get(w)?.length ?? 0);
    const fresh: string[][] = [];
    for (const g of groups) {
      const names = g.filter((n) => !carried.has(n));
      if (names.length === 0) continue;
      let best: ConnectionWorker | null = null;
      for (const w of this.workers) {
        if (this.routes.get(w) !== route || w.state === 'closed' || room(w) < names.length) continue;
        if (best === null || room(w) > room(best)) best = w;
      }
      if (best === null) fresh.push(names);
      else share.set(best, [...(share.get(best) ?? []), ...names]);
    }
    const added: ConnectionWorker[] = [];
    let batch: string[] = [];
    const open = (): void => {
      if (batch.length === 0) return;
      const w = this.newWorker(`c${this.nextId++}`, route, batch);
      this.routes.set(w, route);
      this.workers.push(w);
      added.push(w);
      this.opts.logger.info({ event: 'connection_added', connection: w.id, route, streams: batch.length }, 'no connection had room: opening one more');
      batch = [];
    };
    for (const names of fresh) {
      if (batch.length + names.length > limit) open();
      batch.push(...names);
    }
    open();
    this.opts.metrics.connectionsPlanned.set(this.workers.length);
    await Promise.all([
      ...[...share].map(([w, names]) => w.addStreams(names)),
      ...added.map((w) => {
        if (this.startedAt > 0) w.start();
        return w.opened;
      }),
    ]);
  }

  /**
   * Unsubscribe streams (one batch per connection); a connection left with none is closed. An
   * unsubscribe the exchange refuses is logged: the streams are no longer asked for either way.
   */
  async removeStreams(names: readonly string[]): Promise<void> {
    const wanted = new Set(names);
    await Promise.all(
      [...this.workers].map(async (w) => {
        const mine = w.streams.filter((n) => wanted.has(n));
        if (mine.length === 0) return;
        await w.removeStreams(mine).catch((err: unknown) => this.opts.logger.warn({ event: 'unsubscribe_failed', connection: w.id, streams: mine.length, err }, 'unsubscribe failed: the streams are no longer asked for'));
        if (w.streams.length === 0) {
          this.workers.splice(this.workers.indexOf(w), 1);
          this.opts.metrics.connectionsPlanned.set(this.workers.length);
          await w.stop();
        }
      }),
    );
  }

  /** Every stream the feed's connections carry now (the plan's and live additions). */
  streams(): string[] {
    return this.workers.flatMap((w) => w.streams);
  }

  start(): void {
    this.startedAt = this.clock.now();
    this.opts.logger.info(
      { event: 'supervisor_start', connections: this.workers.length, streams: this.workers.reduce((n, w) => n + w.streams.length, 0) },
      'starting connections',
    );
    for (const w of this.workers) w.start();
    this.silence.start();
    // The last-message age is a gauge of the worst open connection, refreshed once a second.
    this.stopAge = every(this.clock, 1000, () => this.opts.metrics.lastMessageAge.set(this.worstSilenceMs() / 1000));
  }

  async stop(): Promise<void> {
    this.stopAge();
    this.silence.stop();
    this.budget.close();
    await Promise.all(this.workers.map((w) => w.stop()));
  }

  /** Ready when every planned connection is open and none has been silent past `silentAfterMs`. */
  readiness(): Readiness {
    const now = this.clock.now();
    const reasons: string[] = [];
    let open = 0;
    const silentAfter = this.opts.config.health.silentAfterMs;
    for (const w of this.workers) {
      const s = w.session;
      if (s === null || !s.alive) {
        reasons.push(`connection ${w.id} is ${w.state}`);
        continue;
      }
      open++;
      const silent = now - s.lastFrameAt;
      if (silent > silentAfter) reasons.push(`connection ${w.id} silent for ${silent} ms`);
    }
    const quiet = this.silentTimedStreams(now);
    if (quiet.length > 0) reasons.push(`${quiet.length} streams silent past their interval (e.g. ${quiet.slice(0, 3).join(', ')})`);
    return { ready: reasons.length === 0, reasons, connections: { planned: this.workers.length, open } };
  }

  private worstSilenceMs(): number {
    const now = this.clock.now();
    let worst = 0;
    for (const w of this.workers) {
      const s = w.session;
      if (s !== null && s.alive) worst = Math.max(worst, now - s.lastFrameAt);
    }
    return worst;
  }

  /**
   * Streams that push on a timer (tickers, depth, klines, avgPrice) and have been silent for more
   * than health.silentAfterMs since their last message or their subscription. Event-driven streams (trade, aggTrade, bookTicker) may be quiet on
   * an illiquid symbol, so they are not held against readiness.
   */
  private silentTimedStreams(now: number): string[] {
    const out: string[] = [];
    const silentAfter = this.opts.config.health.silentAfterMs;
    for (const name of this.streams()) {
      if ((this.opts.router.typeOf(name)?.expectedIntervalMs ?? 0) <= 0) continue;
      const st = this.opts.router.stream(name);
      // Silence counts from the stream's last message, or from when it was subscribed (the daemon's
      // start, or a live addition): a stream added a moment ago is not yet silent.
      if (st !== undefined && now - Math.max(st.lastRecv, st.addedAt, this.startedAt) > silentAfter) out.push(name);
    }
    return out;
  }
}
