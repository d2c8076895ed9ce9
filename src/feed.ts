import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Clock } from './clock.js';
import type { Config } from './config/types.js';
import { AttemptLog } from './connection/attempt-log.js';
import type { GapLedger } from './ledger/ledger.js';
import { MaintenanceCalendar, SystemStatusPoller } from './ledger/maintenance.js';
import { Checkpointer, recoverLastSeen, venueKeyOf } from './ledger/recovery.js';
import { reconcileWithLedger, resumeGaps } from './ledger/resume.js';
import type { Logger } from './log.js';
import { venueMetrics, type Metrics } from './metrics/registry.js';
import { SinkFanout, type Sink } from './pipeline/sinks.js';
import { StreamRouter, type GapSink } from './pipeline/stream-router.js';
import { plan, type Plan } from './plan/planner.js';
import { shardSymbols } from './plan/shard.js';
import { Recorder } from './recorder/recorder.js';
import { Backfiller } from './recovery/backfill.js';
import { BookManager } from './books/manager.js';
import { Supervisor, type Readiness } from './supervisor.js';
import { USER_DATA_STREAM, userDataStreamType } from './userdata/user-stream.js';
import { ErrorCodes, FeedkeeperError } from './errors.js';
import { getVenue } from './venues/index.js';
import type { StreamType, Venue } from './venues/types.js';
import { ReadHold } from './pipeline/read-hold.js';

/**
 * Where a feed keeps its state, and whose it is. The first feed's checkpoint is ledger.statePath;
 * every other feed's has its venue inserted (`ledger.state.okx.json`); each attempt log is its
 * checkpoint's name with `.attempts` (`ledger.state.attempts.json`), each saved universe with
 * `.universe`. No two feeds, and no two
 * daemons with their own ledgers, share a file; the owner (the ledger's absolute path and the
 * venue) is saved in each, so a file of another daemon is ignored, never applied.
 */
export function feedStatePaths(config: Config, index: number): { state: string; attempts: string; universe: string; owner: string } {
  const statePath = config.ledger.statePath;
  const ext = extname(statePath);
  const stem = join(dirname(statePath), basename(statePath, ext));
  const state = index === 0 ? statePath : `${stem}.${config.venue}${ext}`;
  const attempts = index === 0 ? `${stem}.attempts${ext}` : `${stem}.${config.venue}.attempts${ext}`;
  const universe = index === 0 ? `${stem}.universe${ext}` : `${stem}.${config.venue}.universe${ext}`;
  return { state, attempts, universe, owner: `${resolve(config.ledger.path)}#${config.venue}` };
}

export interface FeedOptions {
  /** The feed's whole config (its venue's keys, the shared ones of the top level). */
  config: Config;
  index: number;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** The user-data stream rides on this feed's router (the first feed, when enabled). */
  userData: boolean;
  /** Secondary outputs after the recorder (src/pipeline/sinks.ts): the relay for Binance feeds. */
  sinks?: readonly Sink[];
}

/**
 * One venue of the daemon: its plan, maintenance calendar and status poll, recorder (under
 * `<recorder.dir>/<venue>/`), router, supervisor with its own attempt budget, and checkpoint. A
 * 429/418 or a ban on one venue pauses only that venue's budget: the IP limits are per venue.
 */
export class Feed {
  readonly venue: Venue;
  readonly plan: Plan;
  readonly calendar: MaintenanceCalendar;
  readonly recorder: Recorder;
  router!: StreamRouter;
  supervisor!: Supervisor;
  private poller: SystemStatusPoller | null = null;
  /** REST backfill of missed trade/aggTrade ranges (backfill.enabled, docs/recovery.md). */
  backfill: Backfiller | null = null;
  /** Local order books (books.enabled, docs/recovery.md). */
  books: BookManager | null = null;
  private checkpointer!: Checkpointer;
  /** Backpressure from the recorder to this feed's sockets (recorder.holdReadsMs); null when off. */
  private readonly reads: ReadHold | null;

  /** The daemon's metrics with this feed's `venue` label (venueMetrics). */
  readonly metrics: Metrics;

  constructor(private readonly opts: FeedOptions) {
    const { config, logger, clock } = opts;
    this.venue = getVenue(config.venue)!;
    const metrics = (this.metrics = venueMetrics(opts.metrics, this.venue.name));
    metrics.recorderBufferLimit.set(config.recorder.maxBufferBytes);
    this.plan = plan(config, this.venue);
    this.calendar = new MaintenanceCalendar({ windows: config.maintenance.windows, logger, metrics, clock });
    // At most half the stale watchdog's deadline: a connection we held never counts as dead.
    const holdMs = Math.min(config.recorder.holdReadsMs, Math.floor(config.connection.staleAfterMs / 2));
    this.reads = config.recorder.enabled && holdMs > 0 ? new ReadHold({ venue: this.venue.name, maxHoldMs: holdMs, clock, logger, metrics }) : null;
    this.recorder = new Recorder({
      dir: config.recorder.dir,
      venue: this.venue.name,
      maxBufferBytes: config.recorder.maxBufferBytes,
      flushIntervalMs: config.recorder.flushIntervalMs,
      fsyncIntervalMs: config.recorder.fsyncIntervalMs,
      rotateEveryMs: config.recorder.rotateEveryMs,
      compress: config.recorder.compress,
      compressLevel: config.recorder.compressLevel,
      hold: this.reads ?? undefined,
      logger,
      metrics,
      clock,
    });
  }

  get name(): string {
    return this.venue.name;
  }

  /** The longest read hold of this feed (recorder.holdReadsMs, at most half of connection.staleAfterMs; 0: none). */
  get holdReadsMs(): number {
    return this.reads?.maxHoldMs ?? 0;
  }

  /** Are this feed's sockets holding their reads (the recording is behind; recorder.holdReadsMs)? */
  get readsHeld(): boolean {
    return this.reads?.held ?? false;
  }

  /**
   * Recover the previous run's last-seen IDs and open gaps from the (open) ledger shared by every
   * feed, open the recorder, build the router and the supervisor. Nothing connects yet.
   */
  async prepare(ledger: GapLedger): Promise<void> {
    const { config, logger: log, clock } = this.opts;
    const { venue, metrics } = this;
    const paths = feedStatePaths(config, this.opts.index);
    const recovered = await recoverLastSeen({ statePath: paths.state, owner: paths.owner, recorderDir: config.recorder.dir, venue: venue.name, keyOf: venueKeyOf(venue), logger: log });
    // The ledger is on disk before the recording: a gap closed just before a crash may report IDs
    // past the last one recorded. Account for them once (docs/gap-ledger.md, "daemon_down is exact").
    reconcileWithLedger({ ledger, venue: venue.name, recovered, at: recovered.stoppedAt ?? clock.now() });
    this.checkpointer = new Checkpointer({ statePath: paths.state, owner: paths.owner, logger: log });
    if (config.recorder.enabled) await this.recorder.open();

    const streams = new Map<string, StreamType>();
    for (const c of this.plan.connections) {
      for (const name of c.streams) streams.set(name, venue.streamType(venue.typeOf(name))!);
    }
    if (this.opts.userData) streams.set(USER_DATA_STREAM, userDataStreamType);
    const calendar = this.calendar;
    const gaps: GapSink = {
      openGap: (e) => ledger.openGap({ ...e, venue: venue.name }),
      closeGap: (id, e) => ledger.closeGap(id, e),
      instant: (e) => ledger.instant({ ...e, venue: venue.name }),
      inMaintenance: (t) => calendar.reasonAt(t) !== null,
    };
    const primary = config.recorder.enabled ? this.recorder : { write: () => true };
    if (config.books.enabled) {
      this.books = new BookManager({ venue, settings: config.books, streams: streams.keys(), restBaseUrl: config.endpoints.rest, maxWeightPerMinute: config.backfill.maxWeightPerMinute, recorder: config.recorder.enabled ? this.recorder : null, logger: log, metrics, clock });
    }
    const sinks = [...(this.opts.sinks ?? []), ...(this.books === null ? [] : [this.books])];
    const recorder = sinks.length === 0 ? primary : new SinkFanout(primary, sinks, metrics);
    this.router = new StreamRouter({ venue, streams, gaps, recorder, metrics, logger: log, clock });
    const resumed = resumeGaps({ ledger, venue: venue.name, recovered, streams: streams.keys(), now: clock.now() });
    this.router.restore(recovered.streams, resumed);
    if (resumed.size > 0) {
      log.info(
        { event: 'gaps_resumed', venue: venue.name, streams: resumed.size, clean: recovered.clean, exact: recovered.exact },
        'streams resume from the previous run: their gaps close on the first message',
      );
    }

    if (config.backfill.enabled && config.recorder.enabled) {
      this.backfill = new Backfiller({ venue, settings: config.backfill, restBaseUrl: config.endpoints.rest, ledger, ledgerPath: config.ledger.path, recorder: this.recorder, recorderDir: config.recorder.dir, logger: log, metrics, clock });
    }

    const attempts = new AttemptLog(paths.attempts, log, paths.owner);
    this.supervisor = new Supervisor({
      config,
      venue,
      connections: this.plan.connections,
      router: this.router,
      logger: log,
      metrics,
      clock,
      onServerShutdown: (at) => calendar.noteServerShutdown(at),
      previousAttempts: attempts.load(),
      onAttempt: (stamps) => attempts.save(stamps),
      reads: this.reads ?? undefined,
    });
    if (this.supervisor.budget.remaining() < config.limits.connectionAttempts) {
      log.info(
        { event: 'attempt_budget_resumed', venue: venue.name, remaining: this.supervisor.budget.remaining(), limit: config.limits.connectionAttempts },
        'connection attempts of the previous run still count against the budget',
      );
    }
  }

  /** Connect: the status poll and every planned connection. */
  start(): void {
    const { config, logger } = this.opts;
    const parse = this.venue.parseSystemStatus;
    if (this.venue.systemStatusPath !== null && parse !== undefined && config.maintenance.statusPollMs > 0) {
      this.poller = new SystemStatusPoller({
        restBaseUrl: config.endpoints.rest,
        path: this.venue.systemStatusPath,
        parse: (body) => parse(body),
        intervalMs: config.maintenance.statusPollMs,
        calendar: this.calendar,
        logger,
      });
      this.poller.start();
    }
    // Before connecting: the first message of each stream closes its daemon_down gap.
    void this.backfill?.start();
    this.books?.start();
    this.supervisor.start();
  }

  /** Close every connection (each stream gets an open `shutdown` gap, closed at the next start). */
  async stopConnections(): Promise<void> {
    this.poller?.stop();
    this.reads?.stop();
    await this.supervisor?.stop();
  }

  /**
   * Save last-seen IDs with the recording position they belong to, once everything before that
   * position is on disk (the contract recoverLastSeen relies on for exact daemon_down ranges).
   */
  async checkpoint(clean: boolean): Promise<void> {
    if (this.router === undefined || this.checkpointer === undefined) return;
    const streams = this.router.snapshot();
    const enabled = this.opts.config.recorder.enabled;
    const recording = enabled ? this.recorder.position() : null;
    const savedAt = this.opts.clock.now();
    if (enabled) await this.recorder.flush();
    await this.checkpointer.save({ savedAt, recording, streams, clean });
  }

  async close(): Promise<void> {
    await this.backfill?.stop();
    await this.books?.stop();
    await this.recorder.close();
    this.calendar.close();
  }

  /** Is `name` (a canonical stream id) routed by this feed now, from the config or added live? */
  carries(name: string): boolean {
    return this.router.typeOf(name) !== undefined;
  }

  /**
   * Subscribe a stream live, on a connection with room (or a new one): routed, recorded and
   * ledgered like any other from then on. Rejects with FK_ERR_SUBSCRIBE when the venue
   * has no such stream or refuses it.
   */
  async subscribe(name: string): Promise<void> {
    const type = this.venue.streamType(this.venue.typeOf(name));
    if (type === null) throw new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `${this.venue.name} has no stream ${name}`);
    this.router.addStream(name, type);
    try {
      await this.supervisor.addStream(name, type.route);
    } catch (err) {
      this.router.removeStream(name, this.opts.clock.now());
      throw err;
    }
    this.opts.logger.info({ event: 'stream_added', venue: this.venue.name, stream: name }, 'stream subscribed on a live connection');
  }

  /** The symbols and stream types the feed follows now: the config's, then universe changes and reloads. */
  private followed: { symbols: string[]; types: string[] } | null = null;
  /** Applies one change at a time (a universe refresh and a reload may overlap). */
  private changing: Promise<unknown> = Promise.resolve();

  /** The symbols followed now (all shards' when sharded: the shard's are planned). */
  get symbols(): readonly string[] {
    return this.current().symbols;
  }

  get streamTypes(): readonly string[] {
    return this.current().types;
  }

  private current(): { symbols: string[]; types: string[] } {
    return (this.followed ??= { symbols: [...this.opts.config.symbols], types: [...this.opts.config.streams] });
  }

  /** Is `name` one of the streams the config (or a universe change, a reload) asks for? */
  configured(name: string): boolean {
    return this.configuredMap().has(name);
  }

  /**
   * Follow these symbols and stream types from now on, on the live connections (docs/operations.md,
   * "Live changes"): streams no longer wanted are unsubscribed (a gap a delisted symbol's stream
   * was in closes with cause `delisted`); new ones are subscribed in batches on connections with
   * room, on a new connection only when none has room. The other streams keep their connections and
   * never see a gap. Returns the streams added and removed. One change at a time.
   */
  applyFollowed(symbols: readonly string[], types: readonly string[], delisted: ReadonlySet<string> = new Set()): Promise<{ added: string[]; removed: string[] }> {
    const run = this.changing.then(async () => {
      const before = this.configuredMap();
      this.followed = { symbols: [...symbols], types: [...types] };
      const after = this.configuredMap();
      const removed = [...before.keys()].filter((n) => !after.has(n));
      const added = [...after.keys()].filter((n) => !before.has(n));
      if (removed.length > 0) {
        await this.supervisor.removeStreams(removed);
        const now = this.opts.clock.now();
        for (const name of removed) {
          const symbol = before.get(name)!;
          this.router.removeStream(name, now, delisted.has(symbol) ? { cause: 'delisted', detail: `${symbol} was delisted` } : undefined);
        }
      }
      if (added.length > 0) {
        // A symbol's streams of one route stay together on one connection, as the planner keeps them.
        const groups = new Map<string, Map<string, string[]>>();
        for (const name of added) {
          const type = this.venue.streamType(this.venue.typeOf(name))!;
          this.router.addStream(name, type);
          const route = groups.get(type.route) ?? groups.set(type.route, new Map()).get(type.route)!;
          const symbol = after.get(name)!;
          route.set(symbol, [...(route.get(symbol) ?? []), name]);
        }
        await Promise.all([...groups].map(([route, bySymbol]) => this.supervisor.addStreamGroups([...bySymbol.values()], route)));
      }
      return { added, removed };
    });
    this.changing = run.catch(() => undefined);
    return run;
  }

  /** Stream id → symbol, for every stream the followed symbols × stream types give (this shard's). */
  private configuredMap(): Map<string, string> {
    const followed = this.current();
    if (this.configuredCache?.of === followed) return this.configuredCache.map;
    const map = new Map<string, string>();
    for (const symbol of this.shardOf(followed.symbols)) for (const type of followed.types) map.set(this.venue.streamName(symbol, type), symbol);
    this.configuredCache = { of: followed, map };
    return map;
  }
  private configuredCache: { of: object; map: Map<string, string> } | null = null;

  private shardOf(symbols: readonly string[]): readonly string[] {
    const shard = this.opts.config.shard;
    return shard.count > 1 ? shardSymbols([...symbols], shard) : symbols;
  }

  /**
   * Subscribe a stream of the venue's own that is no symbol's (USD-M `!contractInfo`), routed,
   * recorded and ledgered like the others; no-op when carried already.
   */
  async follow(name: string, type: StreamType): Promise<void> {
    if (this.carries(name)) return;
    this.router.addStream(name, type);
    await this.supervisor.addStreamGroups([[name]], type.route);
  }

  /** Unsubscribe a stream added live (never one from the config: the caller checks). */
  async unsubscribe(name: string): Promise<void> {
    await this.supervisor.removeStream(name);
    this.router.removeStream(name, this.opts.clock.now());
    this.opts.logger.info({ event: 'stream_removed', venue: this.venue.name, stream: name }, 'stream unsubscribed');
  }

  readiness(): Readiness {
    return this.supervisor.readiness();
  }
}

