import { statSync } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { ConfigError, ErrorCodes, FeedkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { StreamRef } from '../pipeline/stream-ref.js';
import { blankNewlines, decimalLength, encodeLine, encodeStreamLine, isSpliceable, LINE_OVERHEAD, MAX_RECV_MS, streamLineLength } from './encode.js';
import { Compressor, type CompressionKind } from './compress.js';
import { HOUR_MS, latestRecording, periodProblem, periodStart, recordingPath, repairTornLine, syncDir } from './files.js';

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

/** Values of the `reason` label of feedkeeper_recorder_dropped_total set by the recorder. */
export type DropReason = 'buffer_full' | 'malformed' | 'closed';

type RecorderState = 'idle' | 'opening' | 'open' | 'closing' | 'closed';

/** Largest chunk: a full one is handed to the OS at once, without waiting for the flush timer. */
const MAX_CHUNK_BYTES = 256 * 1024;
const MIN_CHUNK_BYTES = 4096;
/** One writev hands the OS every chunk that is due, up to IOV_MAX (1024 on Linux) buffers. */
const MAX_WRITEV_CHUNKS = 1024;
/** Free chunks kept for reuse; more are left to the GC after a burst. */
const POOL_CHUNKS = 4;
const WARN_EVERY_MS = 10_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** Sizes of files left behind, so that returning to one (clock stepped back) needs no stat. */
const KNOWN_SIZES = 8;

/** One file of the recording. A logrotate move gives the same path a second Target. */
class Target {
  fh: FileHandle | null = null;
  dev = -1;
  ino = -1;
  /** Bytes handed to the OS for this target. */
  written = 0;
  /** Written since the last fsync. */
  dirty = false;
  /**
   * Directories to fsync with the file's first fsync: the file's own when the recorder created the
   * file, and the parents of directories it created, so that the new entries survive power loss.
   */
  dirsToSync: string[] = [];
  constructor(
    readonly path: string,
    /** Size of the file when the recorder first addressed it: offsets start here. */
    readonly base: number,
  ) {}
}

/** A preallocated buffer of whole lines, all for one target. Bytes [start, end) await the disk. */
class Chunk {
  start = 0;
  end = 0;
  lines = 0;
  linesWritten = 0;
  /** No more lines go in: it is written as soon as the writer gets to it. */
  sealed = false;
  constructor(
    readonly buf: Buffer,
    readonly target: Target,
  ) {}
}

interface Request {
  kind: 'flush' | 'reopen' | 'close';
  /** Runs once every byte accepted before the request was made is written. */
  upTo: number;
  resolve: () => void;
}

/**
 * The embedded default output: appends every message as one NDJSON line to an hourly file. write()
 * copies bytes into a preallocated chunk and returns; a single writer loop hands chunks to the OS,
 * one write in flight at a time, retrying failed writes while the data stays in memory. See
 * docs/recording.md.
 */
export class Recorder {
  private readonly dir: string;
  private readonly venue: string;
  private readonly maxBufferBytes: number;
  private readonly flushIntervalMs: number;
  private readonly fsyncIntervalMs: number;
  private readonly chunkSize: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly periodMs: number;
  /** Background compression of closed files; null with recorder.compress "none". */
  readonly compressor: Compressor | null;

  private state: RecorderState = 'idle';
  private opening: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  // Accepting side (write()).
  /** The file write() appends to, and the UTC hour it covers. */
  private target: Target | null = null;
  private hourFrom = 0;
  private hourTo = 0;
  /** Logical offset in `target` after the last accepted line. */
  private offset = 0;
  private cur: Chunk | null = null;
  /** Last recvMs seen, its integer value and its digit count: messages come in bursts of equal recvMs. */
  private lastRecv = Number.NaN;
  private recvMs = 0;
  private recvDigits = 1;
  /** Bytes ever accepted / ever handed to the OS: their difference is what is buffered. */
  private accepted = 0;
  private written = 0;
  private linesWritten = 0;
  private dropped = 0;
  private writeErrors = 0;

  // Writing side (the drain loop).
  private readonly queue: Chunk[] = [];
  private readonly pool: Buffer[] = [];
  private readonly requests: Request[] = [];
  /** Unsealed data up to this many accepted bytes is due (flush timer, flush(), reopen(), close()). */
  private flushUpTo = 0;
  private syncDue = false;
  private draining = false;
  /** The buffer filled up: refusing until it is half drained. */
  private overflowing = false;
  /** The periodic fsync, running beside the writes. */
  private backgroundSync: Promise<void> | null = null;
  /**
   * The target whose file is open (the writer's last, or the one open() or reopen() opened); it is
   * fsynced and closed when the writer moves on to another.
   */
  private active: Target | null = null;
  private retryMs = RETRY_MIN_MS;
  private failingSince = -1;

  /** Paths at or before this may already exist; later ones are new (names sort by hour). */
  private newestKnown = '';
  private readonly knownSizes = new Map<string, number>();

  private flushTimer: Timer | undefined;
  private fsyncTimer: Timer | undefined;

  // Drops are counted in plain fields and reported (metric, warning) from the flush timer: a drop
  // storm during a disk outage must not cost more per message than recording does.
  private readonly dropsUnreported: Record<DropReason, number> = { buffer_full: 0, malformed: 0, closed: 0 };
  private readonly dropsSinceWarn: Record<DropReason, number> = { buffer_full: 0, malformed: 0, closed: 0 };
  private dropsPending = 0;
  private lastDropWarn = Number.NEGATIVE_INFINITY;
  private errorsSinceLog = 0;
  private lastErrorLog = Number.NEGATIVE_INFINITY;

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
    // A chunk is at most a quarter of the buffer, so that a full chunk goes to disk well before the
    // buffer is full.
    this.chunkSize = Math.max(MIN_CHUNK_BYTES, Math.min(MAX_CHUNK_BYTES, Math.floor(opts.maxBufferBytes / 4)));
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.compressor =
      opts.compress === 'gzip'
        ? new Compressor({ dir: opts.dir, venue: opts.venue, periodMs: this.periodMs, level, busy: (p) => this.holds(p), logger: opts.logger, metrics: opts.metrics, clock: this.clock })
        : null;
  }

  /**
   * True while `path` may still get bytes from this recorder: the file written now, the one the writer
   * has open, or one with bytes queued. The compressor leaves such a file alone.
   */
  holds(path: string): boolean {
    if (this.target?.path === path || this.active?.path === path) return true;
    for (const c of this.queue) if (c.target.path === path) return true;
    return false;
  }

  get stats(): RecorderStats {
    return {
      written: this.linesWritten,
      dropped: this.dropped,
      bufferedBytes: this.accepted - this.written,
      writeErrors: this.writeErrors,
    };
  }

  /**
   * Creates the directory, repairs a torn last line left by a crash (in the newest existing file and
   * in the file of the current hour), and opens the file of the current hour for appending.
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
    const made = await mkdir(dirname(path), { recursive: true });
    const latest = await latestRecording(this.dir, this.venue);
    for (const file of latest !== null && latest !== path ? [latest, path] : [path]) {
      const removed = await repairTornLine(file);
      if (removed > 0) this.logger.warn({ event: 'recording_torn_line_removed', file, bytes: removed }, 'recording: removed a torn last line left by an interrupted write');
    }
    const fh = await open(path, 'a');
    let size: number;
    try {
      const st = await fh.stat();
      size = st.size;
      const t = new Target(path, size);
      t.fh = fh;
      t.dev = st.dev;
      t.ino = st.ino;
      if (size === 0) t.dirsToSync = dirsCreated(path, made);
      this.target = t;
      this.active = t; // the writer owns every open handle: retired when the hour turns

    } catch (err) {
      await fh.close();
      throw err;
    }
    this.offset = size;
    this.hourFrom = periodStart(now, this.periodMs);
    this.hourTo = this.hourFrom + this.periodMs;
    this.newestKnown = latest !== null && latest > path ? latest : path;
    this.state = 'open';
    this.flushTimer = this.clock.setTimeout(this.onFlushTimer, this.flushIntervalMs);
    this.fsyncTimer = this.clock.setTimeout(this.onFsyncTimer, this.fsyncIntervalMs);
    this.logger.info({ event: 'recording_opened', file: path, offset: size }, 'recording opened');
    this.compressor?.start(); // after the torn-line repair above: it finishes what a crash left
  }

  /**
   * Hot path: appends the line of `frame` to the current chunk: with a StreamRef, `{"recv":<ms>` +
   * its head + the frame (src/pipeline/stream-ref.ts); without, `{"recv":<recvMs>,` + the frame
   * after its `{` + `\n`. Never throws; returns false when the message was dropped (the caller records a gap).
   */
  write(frame: Buffer, recvMs: number, stream?: StreamRef): boolean {
    if (this.state !== 'open') return this.drop('closed');
    if (recvMs !== this.lastRecv && !this.setRecv(recvMs)) return this.drop('malformed');
    if (!isSpliceable(frame)) return this.drop('malformed');
    const len = stream === undefined ? frame.length + this.recvDigits + LINE_OVERHEAD : streamLineLength(stream.head, frame, stream.start, stream.close, this.recvDigits);
    const buffered = this.accepted - this.written;
    if (this.overflowing) {
      // Hysteresis: once full, refuse until half drained, so a burst is one run of drops (one gap
      // per stream in the ledger) rather than drops and accepts alternating message by message.
      if (buffered > this.maxBufferBytes / 2) return this.drop('buffer_full');
      this.overflowing = false;
    }
    if (buffered + len > this.maxBufferBytes) {
      this.overflowing = true;
      return this.drop('buffer_full');
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
    return true;
  }

  /** Where the next line will start. After flush() resolves, the file holds every byte before it. */
  position(): RecordingPosition {
    return { file: this.target?.path ?? '', offset: this.offset };
  }

  /** Hands everything accepted so far to the OS and fsyncs it. Waits through a disk outage. */
  flush(): Promise<void> {
    if (this.state !== 'open' && this.state !== 'closing') return Promise.resolve();
    return this.request('flush');
  }

  /**
   * For logrotate (SIGHUP): writes what is buffered, then reopens the current path. When the file was
   * moved away, the old one is fsynced and closed and lines from now on go to a new file.
   */
  reopen(): Promise<void> {
    if (this.state !== 'open') return Promise.resolve();
    return this.request('reopen');
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
    await this.request('close');
    this.state = 'closed';
    this.metrics.recorderBufferBytes.set(this.accepted - this.written);
    this.reportDrops();
    if (this.dropsPending > 0) this.warnDrops(this.clock.now());
    this.logger.info({ event: 'recording_closed', file: this.target?.path, written: this.linesWritten, dropped: this.dropped }, 'recording closed');
  }

  // ---- accepting side ------------------------------------------------------------------------

  /** A recvMs different from the previous message's: validate it, cache its digits, rotate if needed. */
  private setRecv(recvMs: number): boolean {
    if (!(recvMs >= 0 && recvMs <= MAX_RECV_MS)) return false;
    const ms = Math.floor(recvMs);
    this.lastRecv = recvMs;
    this.recvMs = ms;
    this.recvDigits = decimalLength(ms);
    if (ms < this.hourFrom || ms >= this.hourTo) this.rotate(ms);
    return true;
  }

  /** The message belongs to another hour than the current file: later lines go to that hour's file. */
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
    this.hourFrom = periodStart(ms, this.periodMs);
    this.hourTo = this.hourFrom + this.periodMs;
    if (path > this.newestKnown) this.newestKnown = path;
    this.logger.info({ event: 'recording_rotated', file: path, previous: prev?.path, offset: base }, 'recording rotated');
  }

  /**
   * Size of a file the recorder may be returning to. A path newer than any that existed or was written
   * is new (the usual hourly case: no system call). Only an hour revisited after the clock stepped
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
    if (c.end > c.start) this.kick();
  }

  private nextChunk(len: number): Chunk {
    this.seal();
    const buf = len > this.chunkSize ? Buffer.allocUnsafe(len) : (this.pool.pop() ?? Buffer.allocUnsafe(this.chunkSize));
    const c = new Chunk(buf, this.target as Target);
    this.queue.push(c);
    this.cur = c;
    return c;
  }

  private drop(reason: DropReason): false {
    this.dropped++;
    this.dropsUnreported[reason]++;
    this.dropsSinceWarn[reason]++;
    if (reason === 'closed') this.reportDrops(); // no flush timer runs before open() or after close()
    // The first drop after a warning is reported at once when the last warning is old enough; the
    // rest wait for the flush timer.
    if (++this.dropsPending === 1) {
      const now = this.clock.now();
      if (now - this.lastDropWarn >= WARN_EVERY_MS) this.warnDrops(now);
    }
    return false;
  }

  /** Adds the drops counted since the last call to feedkeeper_recorder_dropped_total. */
  private reportDrops(): void {
    const u = this.dropsUnreported;
    if (u.buffer_full > 0) this.metrics.recorderDropped.inc({ reason: 'buffer_full' }, u.buffer_full);
    if (u.malformed > 0) this.metrics.recorderDropped.inc({ reason: 'malformed' }, u.malformed);
    if (u.closed > 0) this.metrics.recorderDropped.inc({ reason: 'closed' }, u.closed);
    u.buffer_full = 0;
    u.malformed = 0;
    u.closed = 0;
  }

  /** One warning per WARN_EVERY_MS at most, with the count since the previous one. */
  private warnDrops(now: number): void {
    this.reportDrops();
    this.logger.warn(
      {
        event: 'recorder_dropped',
        // A full buffer is the disk falling behind, not a failed write (that is FK_ERR_RECORDER_WRITE, logged apart).
        code: this.dropsSinceWarn.buffer_full > 0 ? ErrorCodes.FK_ERR_RECORDER_BUFFER_FULL : ErrorCodes.FK_ERR_RECORDER_WRITE,
        dropped: { ...this.dropsSinceWarn },
        bufferedBytes: this.accepted - this.written,
        maxBufferBytes: this.maxBufferBytes,
      },
      'recorder dropped messages',
    );
    this.dropsSinceWarn.buffer_full = 0;
    this.dropsSinceWarn.malformed = 0;
    this.dropsSinceWarn.closed = 0;
    this.dropsPending = 0;
    this.lastDropWarn = now;
  }

  private readonly onFlushTimer = (): void => {
    this.flushTimer = this.clock.setTimeout(this.onFlushTimer, this.flushIntervalMs);
    this.flushUpTo = this.accepted;
    this.kick();
    this.metrics.recorderBufferBytes.set(this.accepted - this.written);
    if (this.dropsPending > 0) {
      this.reportDrops();
      const now = this.clock.now();
      if (now - this.lastDropWarn >= WARN_EVERY_MS) this.warnDrops(now);
    }
  };

  private readonly onFsyncTimer = (): void => {
    this.fsyncTimer = this.clock.setTimeout(this.onFsyncTimer, this.fsyncIntervalMs);
    this.syncDue = true;
    this.kick();
  };

  private request(kind: Request['kind']): Promise<void> {
    return new Promise((resolve) => {
      const upTo = this.accepted;
      this.requests.push({ kind, upTo, resolve });
      if (upTo > this.flushUpTo) this.flushUpTo = upTo;
      this.kick();
    });
  }

  // ---- writing side --------------------------------------------------------------------------

  private kick(): void {
    if (this.draining) return;
    this.draining = true;
    void this.drain();
  }

  /**
   * The only place that touches file handles, so one operation is in flight at a time and chunks
   * reach the file in the order they were filled. Runs until there is nothing to do; `draining` is
   * cleared in the same synchronous step as that decision, so a kick() is never lost.
   */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        const req = this.requests[0];
        if (req !== undefined && this.written >= req.upTo) {
          this.requests.shift();
          await this.runRequest(req);
          req.resolve();
          continue;
        }
        if (this.syncDue) {
          this.syncDue = false;
          // The periodic fsync runs beside the writes (an fdatasync took ~200 ms under a burst and
          // held every write up); flush(), rotation and close() wait for it.
          if (this.active?.dirty === true && this.backgroundSync === null) {
            this.backgroundSync = this.sync(this.active).finally(() => (this.backgroundSync = null));
          }
          continue;
        }
        const run = this.writableRun();
        if (run !== null) {
          await this.writeRun(run);
          continue;
        }
        if (this.active !== null && this.active !== this.target) {
          // Rotation or reopen moved on: the previous file is complete.
          await this.retire(this.active);
          continue;
        }
        this.draining = false;
        return;
      }
    } catch (err) {
      // Only a bug gets here: every file operation handles its own errors.
      this.draining = false;
      this.logger.error({ event: 'recorder_writer_failed', err }, 'recorder writer failed unexpectedly');
    }
  }

  /** The head chunk if it has bytes that are due, releasing chunks that are done. */
  private writable(): Chunk | null {
    for (;;) {
      const c = this.queue[0];
      if (c === undefined) return null;
      if (c.end > c.start) return c.sealed || this.written < this.flushUpTo ? c : null;
      if (!c.sealed) return null;
      this.queue.shift();
      if (c.buf.length === this.chunkSize && this.pool.length < POOL_CHUNKS) this.pool.push(c.buf);
    }
  }

  /**
   * Every chunk that is due, from the head on, for one file: handed to the OS in one writev. Under a
   * burst an event-loop turn is long (ws emits a whole socket read's messages in one go), and the
   * writer gets one completion per turn; writing one chunk per turn capped the recording at ~6 MB/s
   * (docs/performance.md, "The recorder under a burst"). Writing all that is pending makes the rate
   * follow the disk instead.
   */
  private writableRun(): Chunk[] | null {
    const head = this.writable();
    if (head === null) return null;
    const run = [head];
    for (let i = 1; i < this.queue.length && run.length < MAX_WRITEV_CHUNKS; i++) {
      const c = this.queue[i]!;
      if (c.target !== head.target || c.end <= c.start) break;
      if (!c.sealed && !(this.written < this.flushUpTo)) break;
      run.push(c);
      if (!c.sealed) break;
    }
    return run;
  }

  private async writeRun(run: Chunk[]): Promise<void> {
    const t = run[0]!.target;
    if (this.active !== t) {
      if (this.active !== null) await this.retire(this.active);
      this.active = t;
    }
    // Lines appended to a chunk meanwhile wait for the next round.
    const ends = run.map((c) => c.end);
    const lines = run.map((c) => c.lines);
    let first = 0;
    while (first < run.length) {
      try {
        const fh = t.fh ?? (await this.openTarget(t));
        const bufs: Buffer[] = [];
        for (let i = first; i < run.length; i++) bufs.push(run[i]!.buf.subarray(run[i]!.start, ends[i]));
        const { bytesWritten } = bufs.length === 1 ? await fh.write(bufs[0]!, 0, bufs[0]!.length) : await fh.writev(bufs);
        if (bytesWritten <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
        let left = bytesWritten;
        for (let i = first; i < run.length && left > 0; i++) {
          const c = run[i]!;
          const take = Math.min(left, ends[i]! - c.start);
          c.start += take;
          left -= take;
        }
        while (first < run.length && run[first]!.start >= ends[first]!) first++;
        t.written += bytesWritten;
        t.dirty = true;
        this.written += bytesWritten;
        if (this.failingSince >= 0) this.recovered(t);
      } catch (err) {
        await this.writeFailed(t, err);
      }
    }
    let n = 0;
    run.forEach((c, i) => {
      n += lines[i]! - c.linesWritten;
      c.linesWritten = lines[i]!;
    });
    this.linesWritten += n;
    this.metrics.recorderWritten.inc(n);
    this.metrics.recorderBufferBytes.set(this.accepted - this.written);
  }

  private async openTarget(t: Target): Promise<FileHandle> {
    const made = await mkdir(dirname(t.path), { recursive: true });
    const fh = await open(t.path, 'a');
    try {
      const st = await fh.stat();
      if (st.size !== t.base + t.written && st.isFile()) {
        this.logger.warn({ event: 'recording_size_mismatch', file: t.path, size: st.size, expected: t.base + t.written }, 'recording: file size is not what this recorder wrote; is another process writing it?');
      }
      if (t.written === 0 && st.size === 0) t.dirsToSync = dirsCreated(t.path, made);
      t.dev = st.dev;
      t.ino = st.ino;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    t.fh = fh;
    return fh;
  }

  /** Counted, logged at most every WARN_EVERY_MS, then retried after a capped backoff. */
  private async writeFailed(t: Target, err: unknown): Promise<void> {
    this.writeErrors++;
    this.errorsSinceLog++;
    this.metrics.recorderWriteErrors.inc();
    const now = this.clock.now();
    if (this.failingSince < 0) this.failingSince = now;
    if (now - this.lastErrorLog >= WARN_EVERY_MS) {
      this.logger.error(
        { event: 'recorder_write_failed', code: ErrorCodes.FK_ERR_RECORDER_WRITE, errno: errCode(err), err, file: t.path, errors: this.errorsSinceLog, bufferedBytes: this.accepted - this.written, retryInMs: this.retryMs },
        'recording write failed; keeping the data in memory and retrying',
      );
      this.lastErrorLog = now;
      this.errorsSinceLog = 0;
    }
    // Retry on a fresh handle: the path may have been fixed meanwhile (disk replaced, symlink moved).
    const fh = t.fh;
    t.fh = null;
    if (fh !== null) await fh.close().catch(() => undefined);
    const ms = this.retryMs;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    await new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms));
  }

  private recovered(t: Target): void {
    this.logger.info(
      { event: 'recorder_write_recovered', file: t.path, outageMs: this.clock.now() - this.failingSince, writeErrors: this.writeErrors, bufferedBytes: this.accepted - this.written },
      'recording writes recovered',
    );
    this.failingSince = -1;
    this.retryMs = RETRY_MIN_MS;
    this.errorsSinceLog = 0;
    this.lastErrorLog = Number.NEGATIVE_INFINITY;
  }

  private async sync(t: Target): Promise<void> {
    const fh = t.fh;
    if (fh === null) return;
    t.dirty = false;
    try {
      await fh.datasync();
      const dirs = t.dirsToSync;
      t.dirsToSync = [];
      for (const dir of dirs) await syncDir(dir);
    } catch (err) {
      // Not retried: after a failed fsync Linux may already have dropped the dirty pages.
      this.writeErrors++;
      this.metrics.recorderWriteErrors.inc();
      this.logger.error({ event: 'recording_sync_failed', code: ErrorCodes.FK_ERR_RECORDER_WRITE, errno: errCode(err), err, file: t.path }, 'recording fsync failed');
    }
  }

  /** fsync and close a file the writer is done with. */
  private async retire(t: Target): Promise<void> {
    await this.backgroundSync;
    if (this.active === t) this.active = null;
    const fh = t.fh;
    if (fh === null) return;
    if (t.dirty) await this.sync(t);
    t.fh = null;
    await fh.close().catch((err: unknown) => this.logger.warn({ event: 'recording_close_failed', err, file: t.path }, 'recording: close failed'));
    if (t !== this.target) this.compressor?.kick(); // a closed file: compressed once its period is over
  }

  private async runRequest(req: Request): Promise<void> {
    switch (req.kind) {
      case 'flush':
        await this.backgroundSync;
        if (this.active?.dirty === true) await this.sync(this.active);
        return;
      case 'reopen':
        await this.runReopen();
        return;
      case 'close':
        if (this.active !== null) await this.retire(this.active);
        if (this.target !== null) await this.retire(this.target);
        return;
    }
  }

  private async runReopen(): Promise<void> {
    this.knownSizes.clear();
    const t = this.target;
    if (t === null || t.fh === null) return; // not open: the next write opens the path afresh
    let fh: FileHandle;
    let st;
    let made: string | undefined;
    try {
      made = await mkdir(dirname(t.path), { recursive: true });
      fh = await open(t.path, 'a');
      st = await fh.stat();
    } catch (err) {
      this.writeErrors++;
      this.metrics.recorderWriteErrors.inc();
      this.logger.error({ event: 'recording_reopen_failed', code: ErrorCodes.FK_ERR_RECORDER_WRITE, errno: errCode(err), err, file: t.path }, 'recording reopen failed; still writing to the old file');
      return;
    }
    if ((st.dev === t.dev && st.ino === t.ino) || this.target !== t) {
      // Not moved (or the hour turned meanwhile, and the new hour has a file of its own).
      await fh.close().catch(() => undefined);
      this.logger.info({ event: 'recording_reopened', file: t.path }, 'recording reopened: file not moved');
      return;
    }
    // Moved away. From here on (synchronously) lines go to the new file; lines accepted since the
    // request still belong to the old one and are written there before it is closed.
    this.seal();
    const next = new Target(t.path, st.size);
    next.fh = fh;
    next.dev = st.dev;
    next.ino = st.ino;
    if (st.size === 0) next.dirsToSync = dirsCreated(t.path, made);
    this.target = next;
    this.offset = st.size;
    for (let run = this.writableRun(); run !== null && run[0]!.target === t; run = this.writableRun()) await this.writeRun(run);
    await this.retire(t);
    this.active = next;
    this.logger.info({ event: 'recording_reopened_new', file: t.path, previousBytes: t.base + t.written }, 'recording reopened: previous file was moved away, writing a new one');
  }
}

/** `file`'s directory, plus the parent of each directory mkdir -p reports having created (`made`). */
function dirsCreated(file: string, made: string | undefined): string[] {
  const dirs = [dirname(file)];
  if (made === undefined) return dirs;
  const top = dirname(made);
  for (let d = dirname(file); d !== top && d !== dirname(d); d = dirname(d)) dirs.push(dirname(d));
  return dirs;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
