import * as fs from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { ErrorCodes, FeedkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { GapIdGenerator } from './ids.js';
import { scanLines } from './lines.js';
import { entryLine, parseEntryLine, type GapCause, type GapEntry, type Missed, type Recovered } from './types.js';
import { syncDirQuietly } from '../state-file.js';

/**
 * The gap ledger: an append-only NDJSON file with one line when a gap opens (end: null) and one
 * when it closes, same id (docs/gap-ledger.md).
 *
 * Durability: each line is written with a synchronous write(2) before the call returns, so a crash
 * of the process loses nothing; fdatasync runs in the background at most every `fsyncDelayMs`, so
 * an OS crash or power cut loses at most that much. One fdatasync per entry would cost ~0.2 ms on
 * an SSD and ~5-10 ms on a disk, and a dropped connection with 1024 streams opens 1024 gaps in one
 * tick (figures in docs/gap-ledger.md).
 *
 * A failed write or fdatasync is counted (feedkeeper_ledger_write_errors_total) and logged; the lines
 * are kept in memory and written again later, in order. Rewriting a line is harmless: readers merge
 * lines by id and the last line wins.
 */

/** The file operations the ledger uses: a seam for tests (write errors, fdatasync counting). */
export interface LedgerIo {
  /** Opens for appending, creating the file if needed. */
  open(path: string): number;
  /** Writes some or all of `data` at the end of the file; returns the number of bytes written. */
  write(fd: number, data: Buffer): number;
  fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void;
  close(fd: number): void;
}

export const nodeLedgerIo: LedgerIo = {
  open: (path) => fs.openSync(path, 'a', 0o644),
  write: (fd, data) => fs.writeSync(fd, data),
  fdatasync: (fd, cb) => fs.fdatasync(fd, cb),
  close: (fd) => fs.closeSync(fd),
};

export type LedgerMetrics = Pick<Metrics, 'gaps' | 'gapSeconds' | 'missedMessages' | 'gapsOpen' | 'ledgerWriteErrors'>;

/** The maintenance window a gap of `venue` overlaps (MaintenanceCalendar.reasonFor per venue). */
export interface LedgerCalendar {
  reasonFor(start: number, end: number | null, venue: string | null): string | null;
}

export interface GapLedgerOptions {
  path: string;
  /** Every entry as it is written (a gap opened or closed), with its line: relay gap notices. */
  onEntry?: (entry: GapEntry, line: string) => void;
  /** The venue of entries written without one, and of older entries read without one. */
  venue?: string | null;
  logger: Logger;
  metrics: LedgerMetrics;
  /** Tags entries with the maintenance window of their venue (VenueCalendars, or one calendar). */
  calendar: LedgerCalendar;
  clock?: Clock;
  /** Longest time between a write and its fdatasync. Default 5 ms. */
  fsyncDelayMs?: number;
  /** Retry failed writes this often. Default 1 s. */
  retryMs?: number;
  /** Unwritten lines kept in memory while the disk fails; past this the oldest are dropped. Default 100 000. */
  maxPendingLines?: number;
  io?: LedgerIo;
}

export interface OpenGapInput {
  /** Default: the ledger's venue. */
  venue?: string | null;
  stream: string;
  connection: string | null;
  /** Epoch ms: the last moment the stream was known to be delivering. */
  start: number;
  cause: GapCause;
  code?: number | null;
  detail?: string | null;
}

export interface CloseGapInput {
  end: number;
  missed: Missed | null;
  /** Appended to the entry's detail (after "; "). */
  detail?: string | null;
  /** The cause of the closed entry, where the ending explains it better (`delisted`). Default: the open entry's. */
  cause?: GapCause;
}

export interface InstantGapInput {
  /** Default: the ledger's venue. */
  venue?: string | null;
  stream: string;
  connection: string | null;
  at: number;
  cause: GapCause;
  code?: number | null;
  detail?: string | null;
  missed: Missed | null;
}

interface Line {
  data: Buffer;
  /** Already counted in ledgerWriteErrors. */
  counted: boolean;
}

const NEWLINE = Buffer.from('\n');
/** Missed ranges kept per stream for missedAfter(): more than a crash can leave past the recording. */
const RECENT_MISSED = 32;

export class GapLedger {
  readonly path: string;
  private readonly logger: Logger;
  private readonly metrics: LedgerMetrics;
  private readonly calendar: LedgerCalendar;
  private readonly clock: Clock;
  private readonly io: LedgerIo;
  private readonly fsyncDelayMs: number;
  private readonly retryMs: number;
  private readonly maxPending: number;
  private readonly ids = new GapIdGenerator();

  private state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  private fd: number | null = null;
  private readonly openEntries = new Map<string, GapEntry>();
  private readonly previousIds = new Set<string>();
  /** Per stream, the last ranges entries report missed, in ID order (see missedAfter). */
  private readonly recentMissed = new Map<string, Missed[]>();

  /** Lines not written yet: before open(), or queued behind a failed write (order is kept). */
  private pending: Line[] = [];
  /** Lines written since the last fdatasync started. */
  private unsynced: Line[] = [];
  /** The previous write stopped inside a line (or the file ended torn): start the next with "\n". */
  private needNewline = false;
  private failing = false;
  private writeSeq = 0;
  private syncedSeq = 0;
  private syncing = false;
  private syncTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private waiters: Array<{ target: number; resolve: () => void }> = [];

  /** The venue of entries written without one (the daemon's first feed). */
  readonly venue: string | null;
  private readonly onEntry: GapLedgerOptions['onEntry'];
  private readonly listeners = new Set<(entry: GapEntry) => void>();

  constructor(opts: GapLedgerOptions) {
    this.path = opts.path;
    this.venue = opts.venue ?? null;
    this.onEntry = opts.onEntry;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.calendar = opts.calendar;
    this.clock = opts.clock ?? systemClock;
    this.io = opts.io ?? nodeLedgerIo;
    this.fsyncDelayMs = opts.fsyncDelayMs ?? 5;
    this.retryMs = opts.retryMs ?? 1000;
    this.maxPending = opts.maxPendingLines ?? 100_000;
  }

  /**
   * Reads the existing ledger (gaps a previous run left open stay open: see previousRunOpen()) and
   * opens it for appending. Rejects with FK_ERR_LEDGER_WRITE when the file cannot be read or opened.
   */
  async open(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'opening';
    let existed = true;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const left = new Map<string, GapEntry>();
      let bad = 0;
      const scan = await scanLines(this.path, 0, (text) => {
        if (text === '') return;
        const e = parseEntryLine(text);
        if (e === null) {
          bad++;
          return;
        }
        // Entries written before venues were recorded belong to the daemon's first feed.
        if (e.venue === null) e.venue = this.venue;
        this.ids.observe(e.id);
        this.noteMissed(e);
        if (e.end === null) left.set(e.id, e);
        else left.delete(e.id);
      }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        existed = false;
        return { endOffset: 0, tornBytes: 0 };
      });
      if (scan.tornBytes > 0) {
        this.needNewline = true;
        this.logger.warn({ event: 'ledger_torn_line', path: this.path, bytes: scan.tornBytes }, 'ledger ends with a torn line (crash while writing): ignored');
      }
      if (bad > 0) this.logger.warn({ event: 'ledger_bad_lines', path: this.path, lines: bad }, 'ledger lines that are not entries: ignored');
      this.fd = this.io.open(this.path);
      if (!existed) await syncDirQuietly(dirname(this.path));
      for (const [id, e] of left) {
        this.openEntries.set(id, e);
        this.previousIds.add(id);
      }
    } catch (err) {
      this.state = 'new';
      throw new FeedkeeperError(ErrorCodes.FK_ERR_LEDGER_WRITE, `cannot open the gap ledger ${this.path}`, { cause: err });
    }
    this.state = 'open';
    this.metrics.gapsOpen.set(this.openEntries.size);
    this.logger.info({ event: 'ledger_opened', path: this.path, previousRunOpen: this.previousIds.size }, 'gap ledger open');
    this.drainPending();
  }

  /** Records that a gap began; returns its id, to pass to closeGap(). */
  openGap(e: OpenGapInput): string {
    const entry: GapEntry = {
      id: this.ids.next(this.clock.now()),
      venue: e.venue ?? this.venue,
      stream: e.stream,
      connection: e.connection,
      start: e.start,
      end: null,
      durationMs: null,
      cause: e.cause,
      code: e.code ?? null,
      detail: e.detail ?? null,
      maintenance: this.calendar.reasonFor(e.start, null, e.venue ?? this.venue),
      missed: null,
    };
    this.openEntries.set(entry.id, entry);
    this.metrics.gapsOpen.set(this.openEntries.size);
    this.append(entry);
    this.logger.debug({ event: 'gap_opened', gap: entry }, 'gap opened');
    return entry.id;
  }

  /** Records that a gap ended. An unknown or already closed id is logged and ignored. */
  closeGap(id: string, c: CloseGapInput): void {
    const open = this.openEntries.get(id);
    if (open === undefined) {
      this.logger.warn({ event: 'gap_close_unknown', id }, 'closeGap: no open gap with this id');
      return;
    }
    this.openEntries.delete(id);
    this.previousIds.delete(id);
    this.metrics.gapsOpen.set(this.openEntries.size);
    // A clock stepped backwards must not give a negative duration.
    const end = Math.max(c.end, open.start);
    const detail = c.detail == null ? open.detail : open.detail === null ? c.detail : `${open.detail}; ${c.detail}`;
    const entry: GapEntry = {
      ...open,
      cause: c.cause ?? open.cause,
      end,
      durationMs: end - open.start,
      detail,
      // The window may have been forgotten since (dynamic windows, a restart): keep the first tag.
      maintenance: this.calendar.reasonFor(open.start, end, open.venue) ?? open.maintenance,
      missed: c.missed,
    };
    this.noteMissed(entry);
    this.append(entry);
    this.count(entry);
    this.logger.debug({ event: 'gap_closed', gap: entry }, 'gap closed');
  }

  /** Records a gap that opens and closes at once (sequence IDs skipped on a live connection). */
  instant(e: InstantGapInput): string {
    const entry: GapEntry = {
      id: this.ids.next(this.clock.now()),
      venue: e.venue ?? this.venue,
      stream: e.stream,
      connection: e.connection,
      start: e.at,
      end: e.at,
      durationMs: 0,
      cause: e.cause,
      code: e.code ?? null,
      detail: e.detail ?? null,
      maintenance: this.calendar.reasonFor(e.at, e.at, e.venue ?? this.venue),
      missed: e.missed,
    };
    this.noteMissed(entry);
    this.append(entry);
    this.count(entry);
    this.logger.debug({ event: 'gap_recorded', gap: entry }, 'gap recorded');
    return entry.id;
  }

  /** Calls `fn` with every entry written from now on (a copy); returns the unsubscribe. */
  listen(fn: (entry: GapEntry) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Appends a closed entry again with what the backfill recovered of its missed range (same id: the
   * last line wins). Counted nowhere: the gap itself was counted when it closed.
   */
  recovered(entry: GapEntry, r: Recovered): void {
    if (entry.end === null) return;
    this.append({ ...entry, missed: entry.missed === null ? null : { ...entry.missed }, recovered: r });
    this.logger.debug({ event: 'gap_recovered', id: entry.id, recovered: r }, 'gap recovered');
  }

  /** Every gap open now, those a previous run left open included, oldest first. */
  openGaps(): GapEntry[] {
    return [...this.openEntries.values()].map(copy);
  }

  /**
   * The missed ranges of `stream` that start after `key`, previous runs included, in ID order (the
   * last RECENT_MISSED per stream are kept). At start: the ledger reaches the disk at once, the
   * recording up to a flush later, so a gap closed just before a crash can report IDs past the last
   * one recorded (reconcileWithLedger in resume.ts).
   */
  missedAfter(stream: string, key: number, venue: string | null = this.venue): Missed[] {
    return (this.recentMissed.get(streamKey(venue, stream)) ?? []).filter((m) => m.from > key).map((m) => ({ ...m }));
  }

  /** Gaps a previous run left open (end: null in the file at open()) that this run has not closed yet. */
  previousRunOpen(): GapEntry[] {
    return [...this.previousIds].map((id) => copy(this.openEntries.get(id)!));
  }

  /**
   * Resolves once every line appended before the call is on disk (fdatasync'd). When the disk
   * refuses writes it resolves anyway, after logging how many lines are still waiting.
   */
  async flush(): Promise<void> {
    if (this.fd === null) return;
    this.drainPending();
    if (this.pending.length > 0) {
      this.logger.error({ event: 'ledger_flush_incomplete', lines: this.pending.length }, 'gap ledger flush: entries not written yet (disk errors)');
    }
    const target = this.writeSeq;
    if (this.syncedSeq >= target) return;
    await new Promise<void>((resolve) => {
      this.waiters.push({ target, resolve });
      this.clock.clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
      this.runSync();
    });
  }

  /** Flushes and closes the file. Later appends are kept in memory only (and logged). */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.flush();
    this.state = 'closed';
    this.clock.clearTimeout(this.syncTimer);
    this.clock.clearTimeout(this.retryTimer);
    this.syncTimer = this.retryTimer = undefined;
    if (this.fd !== null) {
      try {
        this.io.close(this.fd);
      } catch (err) {
        this.logger.warn({ event: 'ledger_close_failed', err, path: this.path }, 'closing the gap ledger failed');
      }
      this.fd = null;
    }
    this.resolveWaiters(true);
  }

  private noteMissed(e: GapEntry): void {
    const m = e.missed;
    // A secondary sink's drops (sink_dropped) are in the recording: never a range it lacks.
    if (m === null || m.to < m.from || e.cause === 'sink_dropped') return;
    const key = streamKey(e.venue, e.stream);
    let list = this.recentMissed.get(key);
    if (list === undefined) this.recentMissed.set(key, (list = []));
    // A line written twice (after a failed fdatasync) or read twice counts once.
    if (list.some((x) => x.from === m.from && x.to === m.to)) return;
    let i = list.length;
    while (i > 0 && list[i - 1]!.from > m.from) i--;
    list.splice(i, 0, { ...m });
    if (list.length > RECENT_MISSED) list.shift();
  }

  private count(e: GapEntry): void {
    // A secondary sink's drops are counted by feedkeeper_sink_dropped_total: no gap of the recording.
    if (e.cause === 'sink_dropped') return;
    const maintenance = e.maintenance !== null ? 'true' : 'false';
    const venue = e.venue ?? this.venue ?? '';
    this.metrics.gaps.inc({ cause: e.cause, maintenance, venue });
    this.metrics.gapSeconds.inc({ cause: e.cause, maintenance, venue }, (e.durationMs ?? 0) / 1000);
    const n = e.missed?.count ?? 0;
    if (n > 0) this.metrics.missedMessages.inc({ maintenance, venue }, n);
  }

  private append(e: GapEntry): void {
    const text = entryLine(e);
    const line: Line = { data: Buffer.from(text), counted: false };
    if (this.onEntry !== undefined) {
      try {
        this.onEntry(copy(e), text.slice(0, -1));
      } catch (err) {
        this.logger.warn({ event: 'ledger_listener_failed', err }, 'gap ledger: an entry listener failed');
      }
    }
    for (const fn of this.listeners) {
      try {
        fn(copy(e));
      } catch (err) {
        this.logger.warn({ event: 'ledger_listener_failed', err }, 'gap ledger: an entry listener failed');
      }
    }
    if (this.state === 'closed') {
      this.logger.warn({ event: 'ledger_entry_after_close', gap: e }, 'gap ledger closed: entry not written');
      return;
    }
    if (this.fd === null || this.pending.length > 0) {
      this.enqueue(line);
      return;
    }
    if (!this.writeLine(line)) {
      this.enqueue(line);
      this.scheduleRetry();
    }
  }

  private enqueue(line: Line): void {
    this.pending.push(line);
    if (this.pending.length > this.maxPending) {
      const dropped = this.pending.shift()!;
      if (!dropped.counted) this.metrics.ledgerWriteErrors.inc();
      this.logger.error({ event: 'ledger_entry_dropped', line: dropped.data.toString('utf8').trimEnd() }, 'gap ledger: entry dropped (too many unwritten)');
    }
  }

  /** Writes one line; false (counted, logged) when the file refused it. */
  private writeLine(line: Line): boolean {
    const fd = this.fd!;
    try {
      if (this.needNewline) {
        this.writeAll(fd, NEWLINE);
        this.needNewline = false;
      }
      this.writeAll(fd, line.data);
    } catch (err) {
      if (!line.counted) {
        line.counted = true;
        this.metrics.ledgerWriteErrors.inc();
      }
      if (!this.failing) {
        this.failing = true;
        this.logger.error({ event: 'ledger_write_failed', err, path: this.path }, 'gap ledger write failed: entries kept in memory and retried');
      }
      return false;
    }
    if (this.failing) {
      this.failing = false;
      this.logger.info({ event: 'ledger_write_recovered', path: this.path }, 'gap ledger writes succeed again');
    }
    this.unsynced.push(line);
    this.writeSeq++;
    this.scheduleSync();
    return true;
  }

  private writeAll(fd: number, data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      let n: number;
      try {
        n = this.io.write(fd, off === 0 ? data : data.subarray(off));
      } catch (err) {
        // Part of the line reached the file: the next line must not be glued to it.
        if (off > 0) this.needNewline = true;
        throw err;
      }
      off += n;
    }
  }

  /** Writes queued lines in order; false when one fails (the rest wait for the retry). */
  private drainPending(): boolean {
    if (this.fd === null) return this.pending.length === 0;
    while (this.pending.length > 0) {
      if (!this.writeLine(this.pending[0]!)) {
        this.scheduleRetry();
        return false;
      }
      this.pending.shift();
    }
    return true;
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined || this.state === 'closed') return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.drainPending();
    }, this.retryMs);
    (this.retryTimer as { unref?: () => void }).unref?.();
  }

  private scheduleSync(): void {
    if (this.syncTimer !== undefined || this.syncing) return;
    this.syncTimer = this.clock.setTimeout(() => {
      this.syncTimer = undefined;
      this.runSync();
    }, this.fsyncDelayMs);
  }

  private runSync(): void {
    if (this.syncing) return; // its callback starts the next one
    const fd = this.fd;
    if (fd === null || this.unsynced.length === 0) {
      this.resolveWaiters(false);
      return;
    }
    this.syncing = true;
    const batch = this.unsynced.length;
    const end = this.writeSeq;
    this.io.fdatasync(fd, (err) => {
      this.syncing = false;
      if (err) {
        // After a failed fdatasync the kernel may have dropped the dirty pages: write every line not
        // known durable again, in order, ahead of anything still queued.
        const again = this.unsynced.splice(0);
        for (const l of again) {
          if (!l.counted) {
            l.counted = true;
            this.metrics.ledgerWriteErrors.inc();
          }
        }
        this.logger.error({ event: 'ledger_sync_failed', err, path: this.path, lines: again.length }, 'gap ledger fdatasync failed: writing the lines again');
        this.pending = [...again, ...this.pending];
        if (this.fd !== null) this.drainPending();
        for (const w of this.waiters) w.target = this.writeSeq;
        // Lines that could not even be written: waiting would hang shutdown; they are counted and logged.
        if (this.pending.length > 0) this.resolveWaiters(true);
      } else {
        this.unsynced.splice(0, batch);
        this.syncedSeq = Math.max(this.syncedSeq, end);
      }
      this.resolveWaiters(false);
      if (this.unsynced.length > 0 || this.waiters.length > 0) this.runSync();
    });
  }

  private resolveWaiters(all: boolean): void {
    if (this.waiters.length === 0) return;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (all || w.target <= this.syncedSeq) w.resolve();
      else keep.push(w);
    }
    this.waiters = keep;
  }
}

/** Streams of two venues may share a name (Bybit spot and linear `publicTrade:BTCUSDT`). */
function streamKey(venue: string | null, stream: string): string {
  return venue === null ? stream : `${venue}\u0000${stream}`;
}

function copy(e: GapEntry): GapEntry {
  return { ...e, missed: e.missed === null ? null : { ...e.missed }, ...(e.recovered == null ? {} : { recovered: { ...e.recovered, remaining: e.recovered.remaining.map((x) => ({ ...x })) } }) };
}

