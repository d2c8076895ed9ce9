import { delay, every, systemClock, type Clock } from './clock.js';
import type { Config } from './config/types.js';
import { Backoff } from './connection/backoff.js';
import { ErrorCodes } from './errors.js';
import { Feed } from './feed.js';
import { GapLedger } from './ledger/ledger.js';
import type { MaintenanceCalendar } from './ledger/maintenance.js';
import { gapsAnswer } from './ledger/report.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { GapsQueryError, startHttpServer, type HttpServer } from './metrics/server.js';
import type { StreamRouter } from './pipeline/stream-router.js';
import type { Plan } from './plan/planner.js';
import type { Recorder } from './recorder/recorder.js';
import type { Readiness, Supervisor } from './supervisor.js';
import { UserDataStream } from './userdata/user-stream.js';
import { LiveStreams } from './live-streams.js';
import { LocalDepthStreams } from './books/relay-streams.js';
import { RelayServer } from './relay/index.js';
import { NatsSink } from './sinks/nats/index.js';
import type { Sink } from './pipeline/sinks.js';
import { isBinanceVenue } from './venues/index.js';
import { loadConfig } from './config/load.js';
import { plan } from './plan/planner.js';
import { restartKeys } from './reload.js';
import { UniverseWatcher } from './universe/watcher.js';
import type { Venue } from './venues/types.js';

export interface DaemonOptions {
  logger: Logger;
  /** The config files it was started with, for the log line at start. */
  configFiles: string[];
  clock?: Clock;
  /** How often last-seen IDs are checkpointed (default 1 s). */
  checkpointIntervalMs?: number;
  /** Where FEEDKEEPER_API_KEY / FEEDKEEPER_API_SECRET are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The whole daemon, assembled from a validated Config: one gap ledger for every venue, then per
 * feed (venue) its maintenance calendar, recovery of the previous run's last-seen IDs, recorder,
 * router, supervisor with its workers and checkpoint (src/feed.ts); the HTTP endpoint and the
 * user-data stream. Start and stop it; the CLI's runDaemon() adds the signals.
 */
export class Daemon {
  readonly metrics: Metrics;
  readonly feeds: Feed[];
  ledger!: GapLedger;
  http: HttpServer | null = null;
  /** The Binance-compatible local relay (relay.enabled), and the live streams it asks for. */
  readonly relay: RelayServer | null = null;
  readonly live: LiveStreams | null = null;
  /** Partial-depth streams built from the local books for relay clients (books.enabled with the relay). */
  readonly localDepth: LocalDepthStreams | null = null;
  /** The NATS JetStream sink (sinks.nats.enabled, docs/scale-out.md): every feed's messages and every ledger entry. */
  readonly nats: NatsSink | null = null;
  userData: UserDataStream | null = null;
  /** Per feed whose symbols are a universe: its refresher (src/universe/watcher.ts), by venue. */
  readonly universes = new Map<string, UniverseWatcher>();
  private reloading: Promise<ReloadOutcome> | null = null;
  private userDataStart: Promise<void> | null = null;
  private readonly stopping = new AbortController();
  private stopCheckpoints: () => void = () => undefined;
  private checkpointing: Promise<void> | null = null;
  private readonly clock: Clock;
  private readonly log: Logger;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(
    readonly config: Config,
    private readonly opts: DaemonOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger;
    this.metrics = createMetrics();
    const binance = config.feeds.filter((f) => isBinanceVenue(f.venue)).map((f) => f.venue);
    if (config.relay.enabled && binance.length > 0) {
      const r = config.relay;
      // The relay's upstream is the live-stream table, built once the feeds exist.
      const upstream = {
        // Partial depth of a symbol with a local book is built locally (src/books/relay-streams.ts).
        valid: (venue: string, stream: string) => (this.localDepth?.handles(venue, stream) ?? false) || (this.live?.valid(venue, stream) ?? false),
        want: (venue: string, stream: string) => (this.localDepth?.handles(venue, stream) ? this.localDepth.want(venue, stream) : this.live!.want(venue, stream)),
        release: (venue: string, stream: string) => (this.localDepth?.handles(venue, stream) ? this.localDepth.release(venue, stream) : this.live?.release(venue, stream)),
      };
      this.relay = new RelayServer({
        host: r.host,
        port: r.port,
        venues: binance,
        maxClients: r.maxClients,
        clientBufferBytes: r.clientBufferBytes,
        maxPayloadBytes: r.maxPayloadBytes,
        messagesPerSecond: r.messagesPerSecond,
        pingIntervalMs: r.pingIntervalMs,
        pongTimeoutMs: r.pongTimeoutMs,
        allow: [...r.allow],
        upstream,
        logger: opts.logger,
        registry: this.metrics.registry,
        clock: this.clock,
      });
    }
    const relay = this.relay;
    if (config.sinks.nats.enabled) {
      this.nats = new NatsSink({ config: config.sinks.nats, collector: config.collector.id, logger: opts.logger, registry: this.metrics.registry, env: opts.env, clock: this.clock });
    }
    const nats = this.nats;
    this.feeds = config.feeds.map(
      (feed, index) =>
        new Feed({
          config: feed,
          index,
          logger: opts.logger,
          metrics: this.metrics,
          clock: this.clock,
          userData: index === 0 && config.userData.enabled,
          sinks: [...(relay !== null && isBinanceVenue(feed.venue) ? [relay] : []), ...(nats !== null ? [nats] : [])] as Sink[],
        }),
    );
    if (relay !== null) {
      if (config.books.enabled) this.localDepth = new LocalDepthStreams({ feed: (venue) => this.feed(venue), relay: () => this.relay });
      this.live = new LiveStreams({ feeds: this.feeds.filter((f) => isBinanceVenue(f.name)), lingerMs: config.relay.lingerMs, maxExtra: config.relay.maxExtraStreams, logger: opts.logger, clock: this.clock });
    }
  }

  /** The first feed's parts (a single-venue daemon's only ones). */
  get venue(): Venue {
    return this.feeds[0]!.venue;
  }
  get plan(): Plan {
    return this.feeds[0]!.plan;
  }
  get router(): StreamRouter {
    return this.feeds[0]!.router;
  }
  get supervisor(): Supervisor {
    return this.feeds[0]!.supervisor;
  }
  get recorder(): Recorder {
    return this.feeds[0]!.recorder;
  }
  get calendar(): MaintenanceCalendar {
    return this.feeds[0]!.calendar;
  }

  /** The feed of a venue, e.g. `okx`. */
  feed(venue: string): Feed | undefined {
    return this.feeds.find((f) => f.name === venue);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`daemon already ${this.state}`);
    this.state = 'starting';
    const { config, metrics, log, clock } = this;
    log.info(
      {
        event: 'daemon_start',
        venue: this.venue.name,
        venues: this.feeds.map((f) => f.name),
        configFiles: this.opts.configFiles,
        connections: this.feeds.reduce((n, f) => n + f.plan.connections.length, 0),
        streams: this.feeds.reduce((n, f) => n + f.plan.totalStreams, 0),
        endpoint: config.endpoints.stream,
      },
      'feedkeeper starting',
    );
    const calendars = new Map(this.feeds.map((f) => [f.name, f.calendar]));
    const first = this.feeds[0]!.calendar;
    this.ledger = new GapLedger({
      path: config.ledger.path,
      venue: this.venue.name,
      logger: log,
      metrics,
      calendar: { reasonFor: (start, end, venue) => (calendars.get(venue ?? '') ?? first).reasonFor(start, end) },
      clock,
      // Relay clients that opted in hear of every gap on their streams as it opens and closes (not
      // of a secondary sink's drops: their data was delivered); the NATS sink publishes every entry.
      onEntry:
        this.relay === null && this.nats === null
          ? undefined
          : (entry, line) => {
              if (this.relay !== null && entry.cause !== 'sink_dropped') this.relay.gap({ venue: entry.venue, stream: entry.stream }, line);
              this.nats?.gap(entry, line);
            },
    });
    await this.ledger.open();
    this.nats?.attachLedger(this.ledger);
    this.nats?.start();
    for (const f of this.feeds) await f.prepare(this.ledger);

    // Before connecting: a crash from here on must not be mistaken for the previous clean stop.
    await this.checkpoint(false);

    if (config.metrics.enabled) {
      this.http = await startHttpServer({
        host: config.metrics.host,
        port: config.metrics.port,
        metrics,
        venues: this.feeds.map((f) => f.name),
        health: this,
        logger: log,
        gaps: (q) => this.answerGaps(q),
        books: (venue, symbol, limit) => this.feed(venue)?.books?.answer(symbol, limit) ?? { status: 404, body: { error: 'no_book', venue, symbol } },
        reload: config.metrics.reload ? { run: () => this.reload('http').then((o) => ({ status: o.result === 'invalid' || o.result === 'refused' ? 409 : 200, body: o })), allow: config.metrics.reloadAllow } : undefined,
      });
      log.info({ event: 'http_listening', url: this.http.url }, 'metrics and health endpoints listening');
    }
    if (this.relay !== null) {
      await this.relay.listen();
    }
    for (const f of this.feeds) f.start();
    for (const [index, feedConfig] of config.feeds.entries()) {
      if (feedConfig.symbolsFrom === null) continue;
      const f = this.feeds[index]!;
      const w = new UniverseWatcher({ feed: f, config: feedConfig, index, logger: log, metrics: f.metrics, clock });
      this.universes.set(f.name, w);
      w.start();
    }
    if (config.userData.enabled) {
      const f = this.feeds[0]!;
      this.userData = new UserDataStream({ config, venue: f.venue, router: f.router, budget: f.supervisor.budget, logger: log, metrics: f.metrics, clock, env: this.opts.env });
      this.userDataStart = this.startUserData(this.userData);
    }
    const everyMs = this.opts.checkpointIntervalMs ?? 1000;
    this.stopCheckpoints = every(clock, everyMs, () => void this.checkpoint(false));
    this.state = 'running';
  }

  /** /readyz: every feed's connections, and the user-data connection when enabled. */
  readiness(): Readiness {
    const parts = this.feeds.map((f) => f.readiness());
    const reasons = parts.flatMap((r, i) => (this.feeds.length === 1 ? r.reasons : r.reasons.map((why) => `${this.feeds[i]!.name}: ${why}`)));
    const r: Readiness = {
      ready: parts.every((p) => p.ready),
      reasons,
      connections: { planned: parts.reduce((n, p) => n + p.connections.planned, 0), open: parts.reduce((n, p) => n + p.connections.open, 0) },
    };
    const natsWhy = this.config.sinks.nats.requiredForReady ? (this.nats?.notReadyReason() ?? null) : null;
    if (natsWhy !== null) {
      r.ready = false;
      r.reasons.push(natsWhy);
    }
    if (this.userData === null) return r;
    const w = this.userData.worker;
    const open = w.session !== null && w.session.alive;
    return {
      ready: r.ready && open,
      reasons: open ? r.reasons : [...r.reasons, `user-data connection is ${w.state}`],
      connections: { planned: r.connections.planned + 1, open: r.connections.open + (open ? 1 : 0) },
    };
  }

  /**
   * The listen key's first POST may fail (no network, a REST ban): keep trying with backoff, as the
   * market connections do, rather than failing the daemon.
   */
  private async startUserData(ud: UserDataStream): Promise<void> {
    const backoff = new Backoff(this.config.connection.backoff);
    while (!this.stopping.signal.aborted) {
      try {
        await ud.start();
        return;
      } catch (err) {
        const wait = backoff.next();
        this.log.warn({ event: 'user_data_start_failed', err, delayMs: wait }, 'user-data stream could not start: retrying');
        try {
          await delay(wait, this.stopping.signal, this.clock);
        } catch {
          return;
        }
      }
    }
  }

  /** SIGHUP: reopen the output files (logrotate moved them). */
  async reopen(): Promise<void> {
    if (this.state !== 'running') return;
    for (const f of this.feeds) await f.recorder.reopen();
    this.log.info({ event: 'files_reopened' }, 'output files reopened');
  }

  /**
   * Re-read the config files (SIGHUP, POST /admin/reload) and apply what can change live: each
   * feed's symbols (a list, or a universe's filters) and stream types, on the live connections
   * (Feed.applyFollowed). A config that fails validation changes nothing (`invalid`, the key named);
   * one that changes a key only a restart applies changes nothing either (`refused`, the keys named);
   * a change whose plan breaks a limit is `invalid`. One reload at a time.
   */
  reload(source: 'sighup' | 'http'): Promise<ReloadOutcome> {
    const run = (this.reloading ?? Promise.resolve()).then(() => this.reloadOnce(source));
    this.reloading = run.catch(() => ({ result: 'invalid' }) as ReloadOutcome);
    return run;
  }

  private async reloadOnce(source: 'sighup' | 'http'): Promise<ReloadOutcome> {
    const { log, metrics } = this;
    const done = (o: ReloadOutcome): ReloadOutcome => {
      metrics.reloads.inc({ result: o.result });
      if (o.result === 'invalid') log.error({ event: 'reload_invalid', source, key: o.key, error: o.error }, 'config reload refused: the new config is not valid; nothing changed');
      else if (o.result === 'refused') log.warn({ event: 'reload_refused', source, keys: o.restartKeys }, 'config reload refused: these keys need a restart; nothing changed');
      else log.info({ event: 'config_reloaded', source, result: o.result, changes: o.changes }, 'config reloaded');
      return o;
    };
    if (this.state !== 'running') return done({ result: 'invalid', error: `the daemon is ${this.state}` });
    let next: Config;
    try {
      next = loadConfig({ files: this.opts.configFiles, env: this.opts.env ?? process.env });
      // A list's plan must keep within the limits, as at start (PlanOverBudgetError otherwise).
      for (const f of next.feeds) if (f.symbolsFrom === null) plan(f, this.feed(f.venue)!.venue);
    } catch (err) {
      return done({ result: 'invalid', key: (err as { key?: string }).key, error: (err as Error).message });
    }
    const keys = restartKeys(this.config, next);
    if (keys.length > 0) return done({ result: 'refused', restartKeys: keys });
    const changes: NonNullable<ReloadOutcome['changes']> = [];
    try {
      await this.applyReload(next, changes);
    } catch (err) {
      // A subscribe refused or unanswered on a live socket: the change stands (the connection's next
      // socket subscribes what is missing); said, never thrown at SIGHUP.
      this.log.warn({ event: 'reload_apply_failed', source, err }, 'a reload could not be applied on every live connection: its next socket subscribes what is missing');
      return done({ result: 'applied', changes, error: (err as Error).message });
    }
    const changed = changes.some((c) => c.streamsAdded + c.streamsRemoved > 0 || (c.symbolsAdded ?? 0) + (c.symbolsRemoved ?? 0) > 0);
    return done({ result: changed ? 'applied' : 'unchanged', changes });
  }

  /** The live part of a reload, feed by feed (reloadOnce has validated `next` and its restart keys). */
  private async applyReload(next: Config, changes: NonNullable<ReloadOutcome['changes']>): Promise<void> {
    const log = this.log;
    for (const [i, f] of this.feeds.entries()) {
      const nf = next.feeds[i]!;
      const watcher = this.universes.get(f.name);
      let applied = { added: [] as string[], removed: [] as string[] };
      if (nf.symbolsFrom !== null && watcher !== undefined) {
        const types = await f.applyFollowed(f.symbols, nf.streams);
        const before = f.symbols;
        await watcher.setSpec(nf.symbolsFrom);
        applied = { added: [...types.added], removed: [...types.removed] };
        changes.push({ venue: f.name, symbolsAdded: f.symbols.filter((s) => !before.includes(s)).length, symbolsRemoved: before.filter((s) => !f.symbols.includes(s)).length, ...counts(applied) });
        continue;
      }
      if (nf.symbolsFrom !== null) {
        // A list became a universe: refreshed now and on its schedule from here on.
        const w = new UniverseWatcher({ feed: f, config: nf, index: i, logger: log, metrics: f.metrics, clock: this.clock });
        this.universes.set(f.name, w);
        await f.applyFollowed(f.symbols, nf.streams);
        await w.refresh('reload');
        w.start();
        changes.push({ venue: f.name, symbolsAdded: null, symbolsRemoved: null, ...counts(applied) });
        continue;
      }
      if (watcher !== undefined) {
        await watcher.stop();
        this.universes.delete(f.name);
      }
      const before = f.symbols;
      applied = await f.applyFollowed(nf.symbols, nf.streams);
      changes.push({ venue: f.name, symbolsAdded: nf.symbols.filter((s) => !before.includes(s)).length, symbolsRemoved: before.filter((s) => !nf.symbols.includes(s)).length, ...counts(applied) });
    }
  }

  /**
   * Close every connection (each stream gets an open `shutdown` gap, closed at the next start),
   * flush the recordings, write clean checkpoints, close the ledger.
   */
  async stop(reason: string): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'new') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.log.info({ event: 'daemon_stop', reason }, 'feedkeeper stopping');
    this.stopCheckpoints();
    this.stopping.abort();
    // Stopping the user-data stream first aborts a listen-key POST still in flight, so a slow
    // exchange cannot hold the shutdown past its 5 s.
    // Relay clients first: they are told (1001) before the upstream goes.
    await Promise.all([...this.universes.values()].map((w) => w.stop()));
    this.live?.close();
    this.localDepth?.close();
    await this.relay?.close();
    await Promise.all([...this.feeds.map((f) => f.stopConnections()), this.userData?.stop()]);
    await this.userDataStart;
    await this.checkpointing;
    // A start that failed half-way has only some of the parts: stop what exists.
    await this.checkpoint(wasRunning);
    // The shutdown gaps are in the ledger now: the NATS sink publishes them with its buffer.
    await this.nats?.close();
    for (const f of this.feeds) await f.close();
    await this.ledger?.close();
    await this.http?.close();
    this.state = 'stopped';
    this.log.info({ event: 'daemon_stopped', reason }, 'feedkeeper stopped');
  }

  /** Every feed's checkpoint (src/feed.ts); one round at a time, except the final clean one. */
  private checkpoint(clean: boolean): Promise<void> {
    if (this.checkpointing !== null && !clean) return this.checkpointing;
    const run = (async () => {
      for (const f of this.feeds) {
        try {
          await f.checkpoint(clean);
        } catch (err) {
          this.log.error({ event: 'checkpoint_failed', venue: f.name, err }, 'checkpoint not saved');
        }
      }
    })();
    const tracked: Promise<void> = run.finally(() => {
      if (this.checkpointing === tracked) this.checkpointing = null;
    });
    this.checkpointing = tracked;
    return run;
  }

  private async answerGaps(q: URLSearchParams): Promise<unknown> {
    await this.ledger.flush();
    const answer = await gapsAnswer(this.config.ledger.path, { since: q.get('since'), until: q.get('until'), stream: q.get('stream') }, this.clock.now());
    if (answer.status === 400) throw new GapsQueryError(answer.body.error);
    if (answer.status !== 200) throw new Error(answer.body.error);
    return answer.body;
  }
}

/** What a reload did (the body of POST /admin/reload's answer). */
export interface ReloadOutcome {
  result: 'applied' | 'unchanged' | 'refused' | 'invalid';
  /** invalid: the key the config error names, and the message. */
  key?: string;
  error?: string;
  /** refused: the keys that need a restart. */
  restartKeys?: string[];
  /** applied / unchanged: per feed, what changed (symbol counts null where a universe took over). */
  changes?: Array<{ venue: string; symbolsAdded: number | null; symbolsRemoved: number | null; streamsAdded: number; streamsRemoved: number }>;
}

function counts(a: { added: readonly string[]; removed: readonly string[] }): { streamsAdded: number; streamsRemoved: number } {
  return { streamsAdded: a.added.length, streamsRemoved: a.removed.length };
}

/**
 * Runs the daemon until SIGTERM/SIGINT; returns the process exit code. SIGHUP reopens the output
 * files. A second signal during shutdown, or a shutdown that takes more than 5 s, gives up waiting.
 */
export async function runDaemon(config: Config, opts: DaemonOptions): Promise<number> {
  const daemon = new Daemon(config, opts);
  const log = opts.logger;
  let resolveStop!: (reason: string) => void;
  const stopRequested = new Promise<string>((r) => (resolveStop = r));
  const onTerm = (sig: NodeJS.Signals): void => resolveStop(sig);
  // SIGHUP: reopen the output files (logrotate), then re-read the config (docs/operations.md, "Reload").
  const onHup = (): void => void daemon.reopen().then(() => daemon.reload('sighup'));
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  process.on('SIGHUP', onHup);
  try {
    try {
      await daemon.start();
    } catch (err) {
      log.fatal({ event: 'daemon_start_failed', err }, 'feedkeeper could not start');
      await daemon.stop('start failed').catch(() => undefined);
      // A value of the config that cannot work here (metrics.port taken...) is a config error.
      return (err as { code?: unknown }).code === ErrorCodes.FK_ERR_CONFIG ? 2 : 1;
    }
    const reason = await stopRequested;
    const deadline = new Promise<'timeout'>((r) => {
      const t = systemClock.setTimeout(() => r('timeout'), 4500);
      t.unref();
    });
    const outcome = await Promise.race([daemon.stop(reason).then(() => 'ok' as const), deadline]);
    if (outcome === 'timeout') {
      log.error({ event: 'shutdown_timeout' }, 'shutdown took too long: exiting anyway');
      return 1;
    }
    return 0;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
    process.off('SIGHUP', onHup);
    await new Promise<void>((r) => log.flush(() => r()));
  }
}
