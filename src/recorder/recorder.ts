import { statSync } from 'node:fs';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { ConfigError, ErrorCodes, FeedkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { ReadHold } from '../pipeline/read-hold.js';
import type { StreamRef } from '../pipeline/stream-ref.js';
import { Drops, WriteErrors } from './accounting.js';
import { Compressor, type CompressionKind } from './compress.js';
import { blankNewlines, decimalLength, encodeLine, encodeStreamLine, isSpliceable, LINE_OVERHEAD, MAX_RECV_MS, streamLineLength } from './encode.js';
import { HOUR_MS, latestRecording, periodProblem, periodStart, recordingPath, repairTornLine } from './files.js';
import { openAppend, Target, type Chunk } from './target.js';
import { Writer } from './writer.js';

export type { DropReason } from './accounting.js';
export { recordingPath } from './files.js';

export interface RecorderOptions {
  /** Root of the recording: files go to <dir>/<venue>/<YYYY-MM-DD>/. */
  dir: string;
  venue: string;
  /** Accepted-but-unwritten bytes never exceed this; past it messages are dropped and counted. */
  maxBufferBytes: number;
  /** Hand buffered lines to the OS at least this often. */
  flushIntervalMs: number;
  /** fsync the current file at least this often (when something was written). */
  fsyncIntervalMs: number;
  /** Length of a file's period (recorder.rotateEveryMs): divides a day; default one UTC hour. */
  rotateEveryMs?: number;
  /** Compress closed files in the background (recorder.compress, src/recorder/compress.ts); default none. */
  compress?: CompressionKind;
  /** zlib level of the compression (recorder.compressLevel), 1-9; default 6. */
  compressLevel?: number;
  /**
   * Backpressure (recorder.holdReadsMs): past half of maxBufferBytes the feed's sockets stop reading
   * until the buffer is below a quarter (src/pipeline/read-hold.ts). Without, the recorder only drops.
   */
  hold?: ReadHold;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
}

export interface RecorderStats {
  /** Messages handed to the OS. */
  written: number;
  /** Messages refused by write() (buffer full, malformed frame, recorder not open). */
  dropped: number;
  /** Accepted bytes not yet handed to the OS. */
  bufferedBytes: number;
  /** Failed writes, opens and fsyncs (writes and opens are retried). */
  writeErrors: number;
}

export interface RecordingPosition {
  file: string;
  offset: number;
}

type RecorderState = 'idle' | 'opening' | 'open' | 'closing' | 'closed';

/** Largest chunk: a full one is handed to the OS at once, without waiting for the flush timer. */
const MAX_CHUNK_BYTES = 256 * 1024;
const MIN_CHUNK_BYTES = 4096;
/** Sizes of files left behind, so that returning to one (clock stepped back) needs no stat. */
const KNOWN_SIZES = 8;

/**
 * The embedded default output: appends every message as one NDJSON line to a file per period (an
 * hour by default). write() copies bytes into a preallocated chunk and returns; the writer loop
 * (writer.ts) hands chunks to the OS, one write in flight at a time, retrying failed writes while
 * the data stays in memory; drops and failures are counted in accounting.ts. See docs/recording.md.
 *
 * This class is the accepting side: the lifecycle (open, flush, reopen, close) and write(), the hot
 * path, which decides the file and the offset of every line.
 */
export class Recorder {
  private readonly dir: string;
  private readonly venue: string;
  private readonly maxBufferBytes: number;
  private readonly flushIntervalMs: number;
  private readonly fsyncIntervalMs: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly periodMs: number;
  /** Background compression of closed files; null with recorder.compress "none". */
  readonly compressor: Compressor | null;
  private readonly writer: Writer;
  private readonly drops: Drops;
  private readonly errors: WriteErrors;
  private readonly hold: ReadHold | null;
  /** Buffered bytes at which reads are held (half the buffer; Infinity without a hold), and released. */
  private readonly holdAt: number;
  private readonly releaseAt: number;

  private state: RecorderState = 'idle';
  private opening: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  /** The file write() appends to, and the period [periodFrom, periodTo) it covers. */
  private target: Target | null = null;
  private periodFrom = 0;
  private periodTo = 0;
  /** Logical offset in `target` after the last accepted line. */
  private offset = 0;
  private cur: Chunk | null = null;
  /** Last recvMs seen, its integer value and its digit count: messages come in bursts of equal recvMs. */
  private lastRecv = Number.NaN;
  private recvMs = 0;
  private recvDigits = 1;
  /** Bytes ever accepted; minus writer.written, what is buffered. */
  private accepted = 0;
  /** The buffer filled up: refusing until it is half drained. */
  private overflowing = false;

  /** Paths at or before this may already exist; later ones are new (names sort by period). */
  private newestKnown = '';
  private readonly knownSizes = new Map<string, number>();

  private flushTimer: Timer | undefined;
  private fsyncTimer: Timer | undefined;

  constructor(opts: RecorderOptions) {
    if (!(opts.maxBufferBytes > 0)) throw new ConfigError('recorder.maxBufferBytes', 'must be a positive number of bytes');
    if (!(opts.flushIntervalMs > 0)) throw new ConfigError('recorder.flushIntervalMs', 'must be positive');
    if (!(opts.fsyncIntervalMs > 0)) throw new ConfigError('recorder.fsyncIntervalMs', 'must be positive');
    this.periodMs = opts.rotateEveryMs ?? HOUR_MS;
    const bad = periodProblem(this.periodMs);
    if (bad !== null) throw new ConfigError('recorder.rotateEveryMs', bad);
    const level = opts.compressLevel ?? 6;
    if (!(Number.isInteger(level) && level >= 1 && level <= 9)) throw new ConfigError('recorder.compressLevel', `must be an integer from 1 to 9, got ${String(level)}`);
    this.dir = opts.dir;
    this.venue = opts.venue;
    this.maxBufferBytes = opts.maxBufferBytes;
    this.flushIntervalMs = opts.flushIntervalMs;
    this.fsyncIntervalMs = opts.fsyncIntervalMs;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.hold = opts.hold ?? null;
    this.holdAt = this.hold === null ? Number.POSITIVE_INFINITY : opts.maxBufferBytes / 2;
    this.releaseAt = opts.maxBufferBytes / 4;
    this.compressor =
      opts.compress === 'gzip'
        ? new Compressor({ dir: opts.dir, venue: opts.venue, periodMs: this.periodMs, level, busy: (p) => this.holds(p), logger: opts.logger, metrics: opts.metrics, clock: this.clock })
        : null;
    const deps = { logger: opts.logger, metrics: opts.metrics, clock: this.clock, bufferedBytes: () => this.bufferedBytes() };
    this.drops = new Drops(deps, opts.maxBufferBytes);
    this.errors = new WriteErrors(deps);
    const chunkSize = Math.max(MIN_CHUNK_BYTES, Math.min(MAX_CHUNK_BYTES, Math.floor(opts.maxBufferBytes / 4)));
    this.writer = new Writer({
      intake: { accepted: () => this.accepted, target: () => this.target, retarget: (t) => this.retarget(t), wrote: () => this.wrote() },
      // A chunk is at most a quarter of the buffer, so that a full chunk goes to disk well before the
      // buffer is full.
      chunkSize,
      // Spare chunks up to a quarter of the buffer bound (64 of 256 KiB at the default 64 MiB), at least 4.
      poolChunks: Math.max(4, Math.floor(opts.maxBufferBytes / 4 / chunkSize)),
      errors: this.errors,
      compressor: this.compressor,
      logger: opts.logger,
      metrics: opts.metrics,
      clock: this.clock,
    });
  }

  /**
   * True while `path` may still get bytes from this recorder: the file written now, the one the writer
   * has open, or one with bytes queued. The compressor leaves such a file alone.
   */
  holds(path: string): boolean {
    return this.target?.path === path || this.writer.holds(path);
  }

  get stats(): RecorderStats {
    return {
      written: this.writer.lines,
      dropped: this.drops.total,
      bufferedBytes: this.bufferedBytes(),
      writeErrors: this.errors.total,
    };
  }

  /**
   * Creates the directory, repairs a torn last line left by a crash (in the newest existing file and
   * in the file of the current period), and opens the file of the current period for appending.
   */
  open(): Promise<void> {
    if (this.state !== 'idle') return this.opening ?? Promise.resolve();
    this.state = 'opening';
    this.opening = this.doOpen().catch((err: unknown) => {
      this.state = 'closed';
      throw new FeedkeeperError(ErrorCodes.FK_ERR_RECORDER_WRITE, `cannot open the recording in ${this.dir}: ${errMessage(err)}`, { cause: err });
    });
    return this.opening;
  }

  private async doOpen(): Promise<void> {
    const now = Math.max(0, Math.floor(this.clock.now()));
    const path = recordingPath(this.dir, this.venue, now, this.periodMs);
    const latest = await latestRecording(this.dir, this.venue);
    for (const file of latest !== null && latest !== path ? [latest, path] : [path]) {
      const removed = await repairTornLine(file);
      if (removed > 0) this.logger.warn({ event: 'recording_torn_line_removed', file, bytes: removed }, 'recording: removed a torn last line left by an interrupted write');
    }
    const t = Target.of(path, await openAppend(path));
    this.target = t;
    this.writer.adopt(t);
    this.offset = t.base;
    this.periodFrom = periodStart(now, this.periodMs);
    this.periodTo = this.periodFrom + this.periodMs;
    this.newestKnown = latest !== null && latest > path ? latest : path;
    this.state = 'open';
    this.flushTimer = this.clock.setTimeout(this.onFlushTimer, this.flushIntervalMs);
    this.fsyncTimer = this.clock.setTimeout(this.onFsyncTimer, this.fsyncIntervalMs);
    this.logger.info({ event: 'recording_opened', file: path, offset: t.base }, 'recording opened');
    this.compressor?.start(); // after the torn-line repair above: it finishes what a crash left
  }

  /**
   * Hot path: appends the line of `frame` to the current chunk: with a StreamRef, `{"recv":<ms>` +
   * its head + the frame (src/pipeline/stream-ref.ts); without, `{"recv":<recvMs>,` + the frame
   * after its `{` + `\n`. Never throws; returns false when the message was dropped (the caller records a gap).
   */
  write(frame: Buffer, recvMs: number, stream?: StreamRef): boolean {
    if (this.state !== 'open') return this.drops.drop('closed');
    if (recvMs !== this.lastRecv && !this.setRecv(recvMs)) return this.drops.drop('malformed');
    if (!isSpliceable(frame)) return this.drops.drop('malformed');
    const len = stream === undefined ? frame.length + this.recvDigits + LINE_OVERHEAD : streamLineLength(stream.head, frame, stream.start, stream.close, this.recvDigits);
    const buffered = this.accepted - this.writer.written;
    if (this.overflowing) {
      // Hysteresis: once full, refuse until half drained, so a burst is one run of drops (one gap
      // per stream in the ledger) rather than drops and accepts alternating message by message.
      if (buffered > this.maxBufferBytes / 2) return this.drops.drop('buffer_full');
      this.overflowing = false;
    }
    if (buffered + len > this.maxBufferBytes) {
      this.overflowing = true;
      return this.drops.drop('buffer_full');
    }
    let c = this.cur;
    if (c === null || c.buf.length - c.end < len) c = this.nextChunk(len);
    const start = c.end;
    c.end =
      stream === undefined
        ? encodeLine(c.buf, start, frame, this.recvMs, this.recvDigits)
        : encodeStreamLine(c.buf, start, stream.head, frame, stream.start, stream.close, this.recvMs, this.recvDigits);
    if (frame.indexOf(0x0a) !== -1) blankNewlines(c.buf, start, c.end - 1);
    c.lines++;
    this.accepted += len;
    this.offset += len;
    if (buffered >= this.holdAt) this.hold!.hold(buffered + len);
    return true;
  }

  /** Where the next line will start. After flush() resolves, the file holds every byte before it. */
  position(): RecordingPosition {
    return { file: this.target?.path ?? '', offset: this.offset };
  }

  /** Hands everything accepted so far to the OS and fsyncs it. Waits through a disk outage. */
  flush(): Promise<void> {
    if (this.state !== 'open' && this.state !== 'closing') return Promise.resolve();
    return this.writer.request('flush');
  }

  /**
   * For logrotate (SIGHUP): writes what is buffered, then reopens the current path. When the file was
   * moved away, the old one is fsynced and closed and lines from now on go to a new file.
   */
  reopen(): Promise<void> {
    if (this.state !== 'open') return Promise.resolve();
    this.knownSizes.clear(); // files left behind may have been moved too
    return this.writer.request('reopen');
  }

  /** Writes everything accepted, fsyncs and closes. write() afterwards returns false. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    if (this.state === 'opening') await this.opening?.catch(() => undefined);
    if (this.state !== 'open') {
      this.state = 'closed';
      return;
    }
    this.state = 'closing';
    await this.compressor?.stop();
    this.clock.clearTimeout(this.flushTimer);
    this.clock.clearTimeout(this.fsyncTimer);
    await this.writer.request('close');
    this.state = 'closed';
    this.metrics.recorderBufferBytes.set(this.bufferedBytes());
    this.drops.tick(true);
    this.logger.info({ event: 'recording_closed', file: this.target?.path, written: this.writer.lines, dropped: this.drops.total }, 'recording closed');
  }

  private readonly onFlushTimer = (): void => {
    this.flushTimer = this.clock.setTimeout(this.onFlushTimer, this.flushIntervalMs);
    this.writer.flushDue();
    this.metrics.recorderBufferBytes.set(this.bufferedBytes());
    this.drops.tick();
  };

  private readonly onFsyncTimer = (): void => {
    this.fsyncTimer = this.clock.setTimeout(this.onFsyncTimer, this.fsyncIntervalMs);
    this.writer.syncSoon();
  };

  /** The writer handed bytes to the OS: a read hold ends once the buffer is below a quarter. */
  private wrote(): void {
    if (this.hold !== null && this.accepted - this.writer.written <= this.releaseAt) this.hold.drained();
  }

  /** Accepted bytes not yet handed to the OS. */
  private bufferedBytes(): number {
    return this.accepted - this.writer.written;
  }

  /** A recvMs different from the previous message's: validate it, cache its digits, rotate if needed. */
  private setRecv(recvMs: number): boolean {
    if (!(recvMs >= 0 && recvMs <= MAX_RECV_MS)) return false;
    const ms = Math.floor(recvMs);
    this.lastRecv = recvMs;
    this.recvMs = ms;
    this.recvDigits = decimalLength(ms);
    if (ms < this.periodFrom || ms >= this.periodTo) this.rotate(ms);
    return true;
  }

  /** The message belongs to another period than the current file: later lines go to that period's file. */
  private rotate(ms: number): void {
    const prev = this.target;
    const path = recordingPath(this.dir, this.venue, ms, this.periodMs);
    if (prev !== null) {
      this.knownSizes.delete(prev.path);
      this.knownSizes.set(prev.path, this.offset);
      if (this.knownSizes.size > KNOWN_SIZES) this.knownSizes.delete(this.knownSizes.keys().next().value as string);
    }
    this.seal();
    const base = this.knownSizes.get(path) ?? this.existingSize(path);
    this.target = new Target(path, base);
    this.offset = base;
    this.periodFrom = periodStart(ms, this.periodMs);
    this.periodTo = this.periodFrom + this.periodMs;
    if (path > this.newestKnown) this.newestKnown = path;
    this.logger.info({ event: 'recording_rotated', file: path, previous: prev?.path, offset: base }, 'recording rotated');
  }

  /** logrotate moved the file away (the writer's reopen): from now on lines go to `next`. */
  private retarget(next: Target): void {
    this.seal();
    this.target = next;
    this.offset = next.base;
  }

  /**
   * Size of a file the recorder may be returning to. A path newer than any that existed or was written
   * is new (the usual hourly case: no system call). Only a period revisited after the clock stepped
   * back, or after logrotate, costs a stat, once.
   */
  private existingSize(path: string): number {
    if (path > this.newestKnown) return 0;
    try {
      return statSync(path, { throwIfNoEntry: false })?.size ?? 0;
    } catch (err) {
      this.logger.warn({ event: 'recording_stat_failed', file: path, err }, 'recording: cannot stat a file being returned to; offsets assume it is empty');
      return 0;
    }
  }

  /** The current chunk takes no more lines; it is written as soon as the writer gets to it. */
  private seal(): void {
    const c = this.cur;
    if (c === null) return;
    c.sealed = true;
    this.cur = null;
    if (c.end > c.start) this.writer.kick();
  }

  private nextChunk(len: number): Chunk {
    this.seal();
    const c = this.writer.chunk(len, this.target as Target);
    this.cur = c;
    return c;
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
