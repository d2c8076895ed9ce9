import type { Clock } from '../clock.js';
import { ErrorCodes } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';

/**
 * The recorder's accounting: messages it refused (Drops) and file operations that failed
 * (WriteErrors), counted, put in metrics and logged at a bounded rate. Neither touches a file.
 */

/** Values of the `reason` label of feedkeeper_recorder_dropped_total set by the recorder. */
export type DropReason = 'buffer_full' | 'malformed' | 'closed';

/** At most one `recorder_dropped` warning, and one `recorder_write_failed` error, per this period. */
export const WARN_EVERY_MS = 10_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

interface Deps {
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Accepted bytes not yet handed to the OS, for the log lines. */
  bufferedBytes: () => number;
}

/**
 * Drops are counted in plain fields and reported (metric, warning) from the flush timer: a drop
 * storm during a disk outage must not cost more per message than recording does.
 */
export class Drops {
  /** Messages refused since the recorder was made. */
  total = 0;
  private readonly unreported: Record<DropReason, number> = { buffer_full: 0, malformed: 0, closed: 0 };
  private readonly sinceWarn: Record<DropReason, number> = { buffer_full: 0, malformed: 0, closed: 0 };
  /** Drops not yet in a warning. */
  private pending = 0;
  private lastWarn = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: Deps,
    private readonly maxBufferBytes: number,
  ) {}

  /** Counts one refused message; returns false for write() to return. */
  drop(reason: DropReason): false {
    this.total++;
    this.unreported[reason]++;
    this.sinceWarn[reason]++;
    if (reason === 'closed') this.report(); // no flush timer runs before open() or after close()
    // The first drop after a warning is reported at once when the last warning is old enough; the
    // rest wait for the flush timer.
    if (++this.pending === 1) {
      const now = this.deps.clock.now();
      if (now - this.lastWarn >= WARN_EVERY_MS) this.warn(now);
    }
    return false;
  }

  /** From the flush timer and close(): the metric brought up to date, a warning when one is due. */
  tick(final = false): void {
    if (this.pending === 0) return;
    this.report();
    const now = this.deps.clock.now();
    if (final || now - this.lastWarn >= WARN_EVERY_MS) this.warn(now);
  }

  /** Adds the drops counted since the last call to feedkeeper_recorder_dropped_total. */
  private report(): void {
    const u = this.unreported;
    const m = this.deps.metrics.recorderDropped;
    if (u.buffer_full > 0) m.inc({ reason: 'buffer_full' }, u.buffer_full);
    if (u.malformed > 0) m.inc({ reason: 'malformed' }, u.malformed);
    if (u.closed > 0) m.inc({ reason: 'closed' }, u.closed);
    u.buffer_full = 0;
    u.malformed = 0;
    u.closed = 0;
  }

  /** One warning per WARN_EVERY_MS at most, with the count since the previous one. */
  private warn(now: number): void {
    this.report();
    this.deps.logger.warn(
      {
        event: 'recorder_dropped',
        // A full buffer is the disk falling behind, not a failed write (that is FK_ERR_RECORDER_WRITE, logged apart).
        code: this.sinceWarn.buffer_full > 0 ? ErrorCodes.FK_ERR_RECORDER_BUFFER_FULL : ErrorCodes.FK_ERR_RECORDER_WRITE,
        dropped: { ...this.sinceWarn },
        bufferedBytes: this.deps.bufferedBytes(),
        maxBufferBytes: this.maxBufferBytes,
      },
      'recorder dropped messages',
    );
    this.sinceWarn.buffer_full = 0;
    this.sinceWarn.malformed = 0;
    this.sinceWarn.closed = 0;
    this.pending = 0;
    this.lastWarn = now;
  }
}

/**
 * Failed writes, opens and fsyncs: counted (feedkeeper_recorder_write_errors_total), logged at most
 * every WARN_EVERY_MS while an outage lasts, and the writer's capped backoff between retries.
 */
export class WriteErrors {
  /** Failures since the recorder was made. */
  total = 0;
  private sinceLog = 0;
  private lastLog = Number.NEGATIVE_INFINITY;
  /** When the current outage began; -1 when writes succeed. */
  private failingSince = -1;
  private retryMs = RETRY_MIN_MS;

  constructor(private readonly deps: Deps) {}

  get failing(): boolean {
    return this.failingSince >= 0;
  }

  /** A write or an open failed: the data stays in memory. Returns how long to wait before the retry. */
  writeFailed(file: string, err: unknown): number {
    this.count();
    this.sinceLog++;
    const now = this.deps.clock.now();
    if (this.failingSince < 0) this.failingSince = now;
    if (now - this.lastLog >= WARN_EVERY_MS) {
      this.deps.logger.error(
        { event: 'recorder_write_failed', code: ErrorCodes.FK_ERR_RECORDER_WRITE, errno: errCode(err), err, file, errors: this.sinceLog, bufferedBytes: this.deps.bufferedBytes(), retryInMs: this.retryMs },
        'recording write failed; keeping the data in memory and retrying',
      );
      this.lastLog = now;
      this.sinceLog = 0;
    }
    const ms = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    return ms;
  }

  /** The first write that succeeded after failures. */
  recovered(file: string): void {
    this.deps.logger.info(
      { event: 'recorder_write_recovered', file, outageMs: this.deps.clock.now() - this.failingSince, writeErrors: this.total, bufferedBytes: this.deps.bufferedBytes() },
      'recording writes recovered',
    );
    this.failingSince = -1;
    this.retryMs = RETRY_MIN_MS;
    this.sinceLog = 0;
    this.lastLog = Number.NEGATIVE_INFINITY;
  }

  /** Not retried: after a failed fsync Linux may already have dropped the dirty pages. */
  syncFailed(file: string, err: unknown): void {
    this.count();
    this.deps.logger.error({ event: 'recording_sync_failed', code: ErrorCodes.FK_ERR_RECORDER_WRITE, errno: errCode(err), err, file }, 'recording fsync failed');
  }

  /** logrotate's reopen could not open the path: writes go on to the old file. */
  reopenFailed(file: string, err: unknown): void {
    this.count();
    this.deps.logger.error({ event: 'recording_reopen_failed', code: ErrorCodes.FK_ERR_RECORDER_WRITE, errno: errCode(err), err, file }, 'recording reopen failed; still writing to the old file');
  }

  private count(): void {
    this.total++;
    this.deps.metrics.recorderWriteErrors.inc();
  }
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}
