import { systemClock, type Clock } from './clock.js';
import type { Config } from './config/types.js';
import { AttemptBudget } from './connection/attempt-budget.js';
import { ConnectionWorker } from './connection/worker.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/registry.js';
import type { StreamRouter } from './pipeline/stream-router.js';
import type { PlannedConnection } from './plan/planner.js';
import type { Venue } from './venues/types.js';

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
  readonly workers: ConnectionWorker[];
  private readonly clock: Clock;
  private startedAt = 0;
  private ageTimer: ReturnType<typeof setInterval> | undefined;
  /** Planned streams that push on a timer (expectedIntervalMs > 0), for readiness. */
  private readonly timedStreams: string[];

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
    this.timedStreams = opts.connections.flatMap((c) => c.streams.filter((name) => (opts.router.typeOf(name)?.expectedIntervalMs ?? 0) > 0));
    const base = opts.config.endpoints.stream.replace(/\/+$/, '');
    const { venue } = opts;
    this.workers = opts.connections.map(
      (c) =>
        new ConnectionWorker({
          id: c.id,
          streams: c.streams,
          url: () => `${base}${c.path}`,
          market: () =>
            venue.protocol({
              base,
              path: c.path,
              streams: c.streams,
              streamsPerSubscribe: limits.streamsPerSubscribe,
              replyTimeoutMs: opts.config.connection.handshakeTimeoutMs + Math.ceil(c.streams.length / limits.streamsPerSubscribe) * 1200,
              clock: this.clock,
            }),
          venue,
          config: opts.config,
          budget: this.budget,
          router: opts.router,
          logger: opts.logger,
          metrics: opts.metrics,
          clock: this.clock,
          onServerShutdown: opts.onServerShutdown,
        }),
    );
  }

  start(): void {
    this.startedAt = this.clock.now();
    this.opts.logger.info(
      { event: 'supervisor_start', connections: this.workers.length, streams: this.workers.reduce((n, w) => n + w.streams.length, 0) },
      'starting connections',
    );
    for (const w of this.workers) w.start();
    // The last-message age is a gauge of the worst open connection, refreshed once a second.
    this.ageTimer = setInterval(() => this.opts.metrics.lastMessageAge.set(this.worstSilenceMs() / 1000), 1000);
    this.ageTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.ageTimer) clearInterval(this.ageTimer);
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
   * than health.silentAfterMs. Event-driven streams (trade, aggTrade, bookTicker) may be quiet on
   * an illiquid symbol, so they are not held against readiness.
   */
  private silentTimedStreams(now: number): string[] {
    const out: string[] = [];
    const silentAfter = this.opts.config.health.silentAfterMs;
    for (const name of this.timedStreams) {
      const st = this.opts.router.stream(name)!;
      if (now - Math.max(st.lastRecv, this.startedAt) > silentAfter) out.push(name);
    }
    return out;
  }
}
