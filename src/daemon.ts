import { dirname, join } from 'node:path';
import { delay, systemClock, type Clock } from './clock.js';
import type { Config } from './config/types.js';
import { AttemptLog } from './connection/attempt-log.js';
import { Backoff } from './connection/backoff.js';
import { ErrorCodes } from './errors.js';
import { GapLedger } from './ledger/ledger.js';
import { MaintenanceCalendar, SystemStatusPoller } from './ledger/maintenance.js';
import { Checkpointer, recoverLastSeen, venueKeyOf } from './ledger/recovery.js';
import { gapsAnswer } from './ledger/report.js';
import { reconcileWithLedger, resumeGaps } from './ledger/resume.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { GapsQueryError, startHttpServer, type HttpServer } from './metrics/server.js';
import { StreamRouter, type GapSink } from './pipeline/stream-router.js';
import { plan, type Plan } from './plan/planner.js';
import { Recorder } from './recorder/recorder.js';
import { Supervisor, type Readiness } from './supervisor.js';
import { USER_DATA_STREAM, UserDataStream, userDataStreamType } from './userdata/user-stream.js';
import { getVenue } from './venues/index.js';
import type { StreamType, Venue } from './venues/types.js';

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
 * The whole daemon, assembled from a validated Config: gap ledger and maintenance calendar,
 * recovery of the previous run's last-seen IDs, recorder, router, supervisor with its workers,
 * checkpoints, the system-status poll, and the HTTP endpoint. Start and stop it; the CLI's
 * runDaemon() adds the signals.
 */
export class Daemon {
  readonly metrics: Metrics;
  readonly venue: Venue;
  readonly plan: Plan;
  router!: StreamRouter;
  supervisor!: Supervisor;
  recorder!: Recorder;
  ledger!: GapLedger;
  calendar!: MaintenanceCalendar;
  http: HttpServer | null = null;
  userData: UserDataStream | null = null;
  private userDataStart: Promise<void> | null = null;
  private readonly stopping = new AbortController();
  private poller: SystemStatusPoller | null = null;
  private checkpointer!: Checkpointer;
  private checkpointTimer: ReturnType<typeof setInterval> | undefined;
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
    this.venue = getVenue(config.venue)!;
    this.plan = plan(config, this.venue);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`daemon already ${this.state}`);
    this.state = 'starting';
    const { config, metrics, log, clock, venue } = this;
    log.info(
      { event: 'daemon_start', venue: venue.name, configFiles: this.opts.configFiles, connections: this.plan.connections.length, streams: this.plan.totalStreams, endpoint: config.endpoints.stream },
      'feedkeeper starting',
    );
    this.calendar = new MaintenanceCalendar({ windows: config.maintenance.windows, logger: log, metrics, clock });
    this.ledger = new GapLedger({ path: config.ledger.path, logger: log, metrics, calendar: this.calendar, clock });
    await this.ledger.open();
    const recovered = await recoverLastSeen({
      statePath: config.ledger.statePath,
      recorderDir: config.recorder.dir,
      venue: venue.name,
      keyOf: venueKeyOf(venue),
      logger: log,
    });
    // The ledger is on disk before the recording: a gap closed just before a crash may report IDs
    // past the last one recorded. Account for them once (docs/gap-ledger.md, "daemon_down is exact").
    reconcileWithLedger({ ledger: this.ledger, recovered, at: recovered.stoppedAt ?? clock.now() });
    this.checkpointer = new Checkpointer({ statePath: config.ledger.statePath, logger: log });
    this.recorder = new Recorder({
      dir: config.recorder.dir,
      venue: venue.name,
      maxBufferBytes: config.recorder.maxBufferBytes,
      flushIntervalMs: config.recorder.flushIntervalMs,
      fsyncIntervalMs: config.recorder.fsyncIntervalMs,
      logger: log,
      metrics,
      clock,
    });
    if (config.recorder.enabled) await this.recorder.open();
    metrics.recorderBufferLimit.set(config.recorder.maxBufferBytes);

    const streams = new Map<string, StreamType>();
    for (const c of this.plan.connections) {
      for (const name of c.streams) streams.set(name, venue.streamType(name.slice(name.indexOf('@') + 1))!);
    }
    if (config.userData.enabled) streams.set(USER_DATA_STREAM, userDataStreamType);
    const ledger = this.ledger;
    const calendar = this.calendar;
    const gaps: GapSink = {
      openGap: (e) => ledger.openGap(e),
      closeGap: (id, e) => ledger.closeGap(id, e),
      instant: (e) => ledger.instant(e),
      inMaintenance: (t) => calendar.reasonAt(t) !== null,
    };
    const recorder = config.recorder.enabled ? this.recorder : { write: () => true };
    this.router = new StreamRouter({ streams, gaps, recorder, metrics, logger: log });
    const resumed = resumeGaps({ ledger, recovered, streams: streams.keys(), now: clock.now() });
    this.router.restore(recovered.streams, resumed);
    if (resumed.size > 0) {
      log.info({ event: 'gaps_resumed', streams: resumed.size, clean: recovered.clean, exact: recovered.exact }, 'streams resume from the previous run: their gaps close on the first message');
    }

    // Before connecting: a crash from here on must not be mistaken for the previous clean stop.
    await this.checkpoint(false);

    const attempts = new AttemptLog(join(dirname(config.ledger.statePath), 'attempts.json'), log);
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
    });
    if (this.supervisor.budget.remaining() < config.limits.connectionAttempts) {
      log.info(
        { event: 'attempt_budget_resumed', remaining: this.supervisor.budget.remaining(), limit: config.limits.connectionAttempts },
        'connection attempts of the previous run still count against the budget',
      );
    }

    if (venue.systemStatusPath !== null && config.maintenance.statusPollMs > 0) {
      this.poller = new SystemStatusPoller({
        restBaseUrl: config.endpoints.rest,
        path: venue.systemStatusPath,
        intervalMs: config.maintenance.statusPollMs,
        calendar,
        logger: log,
      });
      this.poller.start();
    }
    if (config.metrics.enabled) {
      this.http = await startHttpServer({
        host: config.metrics.host,
        port: config.metrics.port,
        metrics,
        health: this,
        logger: log,
        gaps: (q) => this.answerGaps(q),
      });
      log.info({ event: 'http_listening', url: this.http.url }, 'metrics and health endpoints listening');
    }
    this.supervisor.start();
    if (config.userData.enabled) {
      this.userData = new UserDataStream({ config, venue, router: this.router, budget: this.supervisor.budget, logger: log, metrics, clock, env: this.opts.env });
      this.userDataStart = this.startUserData(this.userData);
    }
    const every = this.opts.checkpointIntervalMs ?? 1000;
    this.checkpointTimer = setInterval(() => void this.checkpoint(false), every);
    this.checkpointTimer.unref();
    this.state = 'running';
  }

  /** /readyz: every market connection, and the user-data connection when enabled. */
  readiness(): Readiness {
    const r = this.supervisor.readiness();
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
    await this.recorder.reopen();
    this.log.info({ event: 'files_reopened' }, 'output files reopened');
  }

  /**
   * Close every connection (each stream gets an open `shutdown` gap, closed at the next start),
   * flush the recording, write a clean checkpoint, close the ledger.
   */
  async stop(reason: string): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'new') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.log.info({ event: 'daemon_stop', reason }, 'feedkeeper stopping');
    clearInterval(this.checkpointTimer);
    this.stopping.abort();
    this.poller?.stop();
    // A start that failed half-way has only some of the parts: stop what exists.
    const started = wasRunning;
    // Stopping the user-data stream first aborts a listen-key POST still in flight, so a slow
    // exchange cannot hold the shutdown past its 5 s.
    await Promise.all([this.supervisor?.stop(), this.userData?.stop()]);
    await this.userDataStart;
    await this.checkpointing;
    if (this.router !== undefined && this.checkpointer !== undefined) await this.checkpoint(started);
    await this.recorder?.close();
    await this.ledger?.close();
    this.calendar?.close();
    await this.http?.close();
    this.state = 'stopped';
    this.log.info({ event: 'daemon_stopped', reason }, 'feedkeeper stopped');
  }

  /**
   * Save last-seen IDs with the recording position they belong to, once everything before that
   * position is on disk (the contract recoverLastSeen relies on for exact daemon_down ranges).
   */
  private checkpoint(clean: boolean): Promise<void> {
    if (this.checkpointing !== null && !clean) return this.checkpointing;
    const run = (async () => {
      const streams = this.router.snapshot();
      const recording = this.config.recorder.enabled ? this.recorder.position() : null;
      const savedAt = this.clock.now();
      try {
        if (this.config.recorder.enabled) await this.recorder.flush();
        await this.checkpointer.save({ savedAt, recording, streams, clean });
      } catch (err) {
        this.log.error({ event: 'checkpoint_failed', err }, 'checkpoint not saved');
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
  const onHup = (): void => void daemon.reopen();
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
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 4500).unref());
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
