import { delay, systemClock, type Clock } from '../clock.js';
import type { GapLedger } from '../ledger/ledger.js';
import { readLedger } from '../ledger/report.js';
import type { GapEntry, Recovered } from '../ledger/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { StreamRef } from '../pipeline/stream-ref.js';
import { RestClient } from '../rest/client.js';
import { RestBannedError, RestError } from '../rest/errors.js';
import { sharedRestHosts, type RestHostRegistry } from '../rest/hosts.js';
import type { Venue } from '../venues/types.js';
import { backfillEndpoint, PAGE_LIMIT, restWeightLimit, type BackfillEndpoint } from './endpoints.js';
import { recoveryMetrics, type BackfillStatus, type RecoveryMetrics } from './metrics.js';
import { sharedPacer, type WeightPacer } from './pacer.js';
import { scanRestIds } from './scan.js';

/**
 * REST backfill of one feed (docs/recovery.md): every closed gap of a backfilled stream type with an
 * exact `missed` range is fetched page by page (`aggTrades` / `historicalTrades` from `fromId`),
 * paced inside `backfill.maxWeightPerMinute`, and written to the recording as lines of their own
 * (`"src":"rest"`, the REST object unchanged under `data`). Then the ledger gets the entry again
 * with `recovered`. One range at a time, oldest first.
 */

export interface BackfillSettings {
  enabled: boolean;
  /** Stream types to backfill (`trade`, `aggTrade`). */
  streams: readonly string[];
  maxWeightPerMinute: number;
  /** Gaps that ended longer ago than this are left alone at start. */
  maxAgeMs: number;
}

/** What the backfill writes to: the feed's Recorder (or a test's). */
export interface BackfillRecorder {
  write(frame: Buffer, recvMs: number, stream?: StreamRef): boolean;
  flush(): Promise<void>;
}

export interface BackfillerOptions {
  venue: Pick<Venue, 'name' | 'typeOf'>;
  settings: BackfillSettings;
  restBaseUrl: string;
  ledger: GapLedger;
  /** The ledger file, read at start for ranges earlier runs left unrecovered. */
  ledgerPath: string;
  recorder: BackfillRecorder;
  /** Where the recording is, scanned at start for REST lines an interrupted run already wrote. */
  recorderDir: string;
  logger: Logger;
  /** The feed's metrics (venue-labelled); the backfill's own live on its registry. */
  metrics: Metrics;
  clock?: Clock;
  hosts?: RestHostRegistry;
  /** Progress of each range as it goes (the CLI's progress line). */
  onProgress?: (p: BackfillProgress) => void;
  /** Failed requests (5xx, no answer) in a row before a range is abandoned for this run. Default: never. */
  maxFailures?: number;
}

export interface BackfillProgress {
  stream: string;
  gapId: string;
  from: number;
  to: number;
  /** Next ID to fetch. */
  cursor: number;
  written: number;
  queued: number;
  done: boolean;
  recovered?: Recovered;
}

interface Job {
  entry: GapEntry;
  endpoint: BackfillEndpoint;
  /** IDs of the range already in the recording from REST (an interrupted earlier run). */
  already: Set<number> | null;
}

/** Retry delays of a range after a failed request that was not a 429/418 (5xx, no answer). */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;

export class Backfiller {
  private readonly opts: BackfillerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly m: RecoveryMetrics;
  private readonly rest: RestClient;
  private readonly pacer: WeightPacer;
  private readonly queue: Job[] = [];
  private readonly queuedIds = new Set<string>();
  /** Per stream, the ranges handled in this run: never fetched or written twice. */
  private readonly handled = new Map<string, Array<[number, number]>>();
  private readonly refs = new Map<string, StreamRef>();
  private readonly abort = new AbortController();
  private unlisten: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private waiters: Array<() => void> = [];
  private busy = false;
  private stopped = false;
  /** Ranges abandoned in this run (requests kept failing, the recorder refused). */
  failed = 0;

  constructor(opts: BackfillerOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger.child({ component: 'backfill', venue: opts.venue.name });
    this.m = recoveryMetrics(opts.metrics.registry);
    this.m.open.set({ venue: opts.venue.name }, 0);
    this.rest = new RestClient({ baseUrl: opts.restBaseUrl, logger: opts.logger, metrics: opts.metrics, clock: this.clock, maxRetries: 0, hosts: opts.hosts });
    const host = (opts.hosts ?? sharedRestHosts).get(new URL(opts.restBaseUrl).origin);
    this.pacer = sharedPacer(host, opts.settings.maxWeightPerMinute, Math.floor(restWeightLimit(opts.venue.name) * 0.9), this.clock);
  }

  /** The endpoint for a stream, when its type is backfilled and the venue serves it. */
  endpointFor(stream: string): BackfillEndpoint | null {
    if (!this.opts.settings.streams.includes(this.opts.venue.typeOf(stream))) return null;
    return backfillEndpoint(this.opts.venue, stream);
  }

  /** Whether an entry is one this backfill takes: closed, exact, not recovered yet, of its venue. */
  wants(e: GapEntry): boolean {
    const m = e.missed;
    return (
      e.end !== null &&
      e.recovered == null &&
      e.cause !== 'sink_dropped' &&
      (e.venue ?? this.opts.venue.name) === this.opts.venue.name &&
      m !== null &&
      m.count !== null &&
      m.count > 0 &&
      m.to >= m.from &&
      this.endpointFor(e.stream) !== null
    );
  }

  /**
   * Follow the ledger from now on, and queue the ranges earlier runs left unrecovered (ended within
   * maxAgeMs, or since `since`; of the stream pattern `stream`), after a scan of the recording for
   * REST lines they already wrote. Resolves once those are queued; the work goes on in background.
   */
  async start(filter: { since?: number; stream?: (s: string) => boolean; follow?: boolean } = {}): Promise<number> {
    if (filter.follow !== false) this.unlisten = this.opts.ledger.listen((e) => this.offer(e, null));
    let previous: GapEntry[] = [];
    try {
      previous = await readLedger(this.opts.ledgerPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ event: 'backfill_ledger_unreadable', err }, 'backfill: the ledger could not be read: earlier ranges are not resumed');
    }
    const since = filter.since ?? this.clock.now() - this.opts.settings.maxAgeMs;
    const pending = previous.filter((e) => this.wants(e) && e.end! >= since && (filter.stream === undefined || filter.stream(e.stream)));
    if (pending.length > 0) {
      const streams = new Set(pending.map((e) => e.stream));
      const idField = new Map([...streams].map((s) => [s, this.endpointFor(s)!.idField]));
      const earliest = Math.min(...pending.map((e) => e.end!));
      const found = await scanRestIds({ recorderDir: this.opts.recorderDir, venue: this.opts.venue.name, idField, fromMs: earliest, logger: this.log });
      for (const e of pending) {
        const ids = found.get(e.stream);
        const mine = ids === undefined ? null : new Set([...ids].filter((id) => id >= e.missed!.from && id <= e.missed!.to));
        this.offer(e, mine !== null && mine.size > 0 ? mine : null);
      }
      this.log.info({ event: 'backfill_resumed', ranges: pending.length, alreadyWritten: [...found.values()].reduce((n, s) => n + s.size, 0) }, 'backfill: ranges left by earlier runs queued');
    }
    return pending.length;
  }

  /** Resolves when nothing is queued or under way. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  get queued(): number {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  /** Stop following the ledger, abort the range under way (it stays unrecovered: resumed at the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unlisten?.();
    this.abort.abort();
    await this.running?.catch(() => undefined);
    await this.rest.close();
    for (const w of this.waiters.splice(0)) w();
  }

  private offer(e: GapEntry, already: Set<number> | null): void {
    if (this.stopped || !this.wants(e) || this.queuedIds.has(e.id)) return;
    const endpoint = this.endpointFor(e.stream)!;
    this.queuedIds.add(e.id);
    this.queue.push({ entry: e, endpoint, already });
    this.m.open.set({ venue: this.opts.venue.name }, this.queued);
    this.running ??= this.loop().finally(() => {
      this.running = null;
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.busy = true;
      try {
        await this.run(job);
      } catch (err) {
        this.failed++;
        if (!this.stopped) this.log.error({ event: 'backfill_abandoned', err, stream: job.entry.stream, gap: job.entry.id }, 'backfill: range abandoned for this run');
      } finally {
        this.busy = false;
        this.queuedIds.delete(job.entry.id);
        this.m.open.set({ venue: this.opts.venue.name }, this.queued);
      }
    }
    for (const w of this.waiters.splice(0)) w();
  }

  private isHandled(stream: string, id: number): boolean {
    for (const [a, b] of this.handled.get(stream) ?? []) if (id >= a && id <= b) return true;
    return false;
  }

  private ref(stream: string): StreamRef {
    let r = this.refs.get(stream);
    if (r === undefined) {
      const venue = this.opts.venue.name;
      r = { venue, name: stream, head: Buffer.from(`,"venue":${JSON.stringify(venue)},"stream":${JSON.stringify(stream)},"src":"rest","data":`), start: 0, close: true };
      this.refs.set(stream, r);
    }
    return r;
  }

  private async run(job: Job): Promise<void> {
    const { entry, endpoint } = job;
    const { from, to } = entry.missed!;
    const venue = this.opts.venue.name;
    const signal = this.abort.signal;
    const ref = this.ref(entry.stream);
    let cursor = from;
    let written = 0;
    let retryMs = RETRY_MIN_MS;
    let failures = 0;
    const remaining: Recovered['remaining'] = [];
    const gone = (a: number, b: number): void => {
      if (b >= a) remaining.push({ from: a, to: b, count: b - a + 1 });
    };
    const progress = (done: boolean, recovered?: Recovered): void =>
      this.opts.onProgress?.({ stream: entry.stream, gapId: entry.id, from, to, cursor, written, queued: this.queue.length, done, recovered });
    this.log.debug({ event: 'backfill_started', stream: entry.stream, gap: entry.id, from, to }, 'backfill: range started');
    progress(false);

    while (cursor <= to) {
      await this.pacer.take(endpoint.weight, signal);
      let rows: Array<Record<string, unknown>>;
      try {
        rows = await this.rest.request<Array<Record<string, unknown>>>('GET', endpoint.path, {
          query: { symbol: endpoint.symbol, fromId: cursor, limit: Math.min(PAGE_LIMIT, to - cursor + 1) },
          weight: endpoint.weight,
          signal,
        });
        this.m.requests.inc({ venue, status: '2xx' });
        this.m.weight.inc({ venue }, endpoint.weight);
      } catch (err) {
        if (signal.aborted) throw err;
        const status = statusOf(err);
        this.m.requests.inc({ venue, status });
        if (status === '429' || status === '418' || err instanceof RestBannedError) {
          // The host is paused for Retry-After (every REST caller of it waits, src/rest/hosts.ts): the
          // pacer waits the pause out before the next request, however long a ban is.
          const waitMs = err instanceof RestBannedError ? err.retryAfterMs : ((err as RestError).retryAfterMs ?? RETRY_MIN_MS);
          this.log.warn({ event: 'backfill_rate_limited', status: Number(status), retryAfterMs: waitMs, stream: entry.stream }, 'backfill: the exchange asked to back off; waiting for Retry-After');
          continue;
        }
        if (status === '4xx') {
          // The exchange refuses the request itself (unknown symbol, a key required): it will not change.
          this.log.warn({ event: 'backfill_refused', err, stream: entry.stream }, 'backfill: request refused: the range is left as the ledger says');
          return;
        }
        if (++failures > (this.opts.maxFailures ?? Number.POSITIVE_INFINITY)) throw err;
        this.log.warn({ event: 'backfill_request_failed', err, stream: entry.stream, retryMs }, 'backfill: request failed: retrying');
        await delay(retryMs, signal, this.clock);
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
        continue;
      }
      retryMs = RETRY_MIN_MS;
      failures = 0;
      if (!Array.isArray(rows) || rows.length === 0) {
        gone(cursor, to); // nothing at or after the cursor: no longer served
        break;
      }
      const before = cursor;
      for (const row of rows) {
        const id = row[endpoint.idField];
        if (typeof id !== 'number' || id < cursor) continue;
        if (id > to) {
          cursor = to + 1;
          break;
        }
        // IDs the exchange no longer serves come back as a jump past them.
        gone(cursor, id - 1);
        cursor = id + 1;
        if (job.already?.has(id) || this.isHandled(entry.stream, id)) {
          written++;
          continue;
        }
        await this.write(Buffer.from(JSON.stringify(row)), ref, signal);
        written++;
        this.m.recovered.inc({ venue });
      }
      if (cursor === before) {
        gone(cursor, to);
        break;
      }
      progress(false);
    }

    let list = this.handled.get(entry.stream);
    if (list === undefined) this.handled.set(entry.stream, (list = []));
    list.push([from, to]);
    // The REST lines are on disk before the ledger says they are: a crash between the two finds them
    // at the next start (scanRestIds) and never writes them twice.
    await this.opts.recorder.flush();
    const recovered: Recovered = { count: written, complete: remaining.length === 0, at: this.clock.now(), remaining };
    this.opts.ledger.recovered(entry, recovered);
    this.m.ranges.inc({ venue, outcome: recovered.complete ? 'complete' : 'partial' });
    this.log.info(
      { event: 'backfill_done', stream: entry.stream, gap: entry.id, from, to, recovered: written, complete: recovered.complete, remaining: remaining.reduce((n, r) => n + r.count, 0) },
      recovered.complete ? 'backfill: range recovered' : 'backfill: range partly recovered: the rest is no longer served',
    );
    progress(true, recovered);
  }

  /** Writes one line, waiting for the recorder to drain when its buffer is full. */
  private async write(frame: Buffer, ref: StreamRef, signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.opts.recorder.write(frame, this.clock.now(), ref)) return;
      if (signal.aborted || attempt >= 50) throw new Error('backfill: the recorder refuses lines (buffer full or closed)');
      await this.opts.recorder.flush();
      await delay(20, signal, this.clock);
    }
  }
}

function statusOf(err: unknown): BackfillStatus {
  if (err instanceof RestBannedError) return '418';
  if (!(err instanceof RestError) || err.status === null) return 'error';
  const s = err.status;
  if (s === 429) return '429';
  if (s === 418) return '418';
  if (s >= 500) return '5xx';
  if (s >= 400) return '4xx';
  return 'error';
}
