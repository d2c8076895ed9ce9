import type { FileHandle } from 'node:fs/promises';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { WriteErrors } from './accounting.js';
import type { Compressor } from './compress.js';
import { syncDir } from '../state-file.js';
import { Chunk, openAppend, Target, type OpenedFile } from './target.js';

/** One writev hands the OS every chunk that is due, up to IOV_MAX (1024 on Linux) buffers. */
const MAX_WRITEV_CHUNKS = 1024;

/** What the writer needs from the accepting side (the Recorder). */
export interface Intake {
  /** Bytes ever accepted. */
  accepted(): number;
  /** The file lines are appended to now. */
  target(): Target | null;
  /** From now on lines go to `next` (logrotate moved the file away): the current chunk is sealed. */
  retarget(next: Target): void;
  /** After each write: bytes were handed to the OS (the read hold may end). */
  wrote(): void;
}

export interface WriterOptions {
  intake: Intake;
  chunkSize: number;
  /**
   * Written chunks kept for reuse; more are left to the GC after a burst. Under a flood the buffer
   * holds tens of MB: allocating each chunk anew made V8 count that much external memory per second
   * and run a full mark-compact for it (32 against 16 in the same 16-connection bench phases with 4
   * chunks pooled instead of 64; docs/performance.md).
   */
  poolChunks: number;
  errors: WriteErrors;
  compressor: Compressor | null;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

interface Request {
  kind: 'flush' | 'reopen' | 'close';
  /** Runs once every byte accepted before the request was made is written. */
  upTo: number;
  resolve: () => void;
}

/**
 * The writer loop: the only code that touches file handles, so one operation is in flight at a
 * time and chunks reach the file in the order they were filled. Failed writes are retried (after a
 * backoff, on a fresh handle) while the data stays in memory; files are fsynced on a timer, on
 * flush() and when the writer moves on to another file (rotation, logrotate, close).
 */
export class Writer {
  /** Bytes handed to the OS. */
  written = 0;
  /** Lines handed to the OS. */
  lines = 0;

  private readonly intake: Intake;
  private readonly chunkSize: number;
  private readonly poolChunks: number;
  private readonly errors: WriteErrors;
  private readonly compressor: Compressor | null;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly clock: Clock;

  private readonly queue: Chunk[] = [];
  private readonly pool: Buffer[] = [];
  private readonly requests: Request[] = [];
  /** Unsealed data up to this many accepted bytes is due (flush timer, flush(), reopen(), close()). */
  private flushUpTo = 0;
  private syncDue = false;
  private draining = false;
  /** The periodic fsync, running beside the writes. */
  private backgroundSync: Promise<void> | null = null;
  /**
   * The target whose file is open (the writer's last, or the one open() or reopen() opened); it is
   * fsynced and closed when the writer moves on to another.
   */
  private active: Target | null = null;

  constructor(opts: WriterOptions) {
    this.intake = opts.intake;
    this.chunkSize = opts.chunkSize;
    this.poolChunks = opts.poolChunks;
    this.errors = opts.errors;
    this.compressor = opts.compressor;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.clock = opts.clock;
  }

  /** True while `path` is open or has bytes queued. */
  holds(path: string): boolean {
    if (this.active?.path === path) return true;
    for (const c of this.queue) if (c.target.path === path) return true;
    return false;
  }

  /** Open the target open() opened: the writer owns every open handle (retired when the period turns). */
  adopt(t: Target): void {
    this.active = t;
  }

  /** A new chunk for `target`, queued; from the pool when it has the usual size. */
  chunk(len: number, target: Target): Chunk {
    const buf = len > this.chunkSize ? Buffer.allocUnsafe(len) : (this.pool.pop() ?? Buffer.allocUnsafe(this.chunkSize));
    const c = new Chunk(buf, target);
    this.queue.push(c);
    return c;
  }

  /** The flush timer: everything accepted so far is due. */
  flushDue(): void {
    this.flushUpTo = this.intake.accepted();
    this.kick();
  }

  /** The fsync timer: the open file is fsynced at the next step. */
  syncSoon(): void {
    this.syncDue = true;
    this.kick();
  }

  /** Resolves once everything accepted so far is written and the request has run. */
  request(kind: Request['kind']): Promise<void> {
    return new Promise((resolve) => {
      const upTo = this.intake.accepted();
      this.requests.push({ kind, upTo, resolve });
      if (upTo > this.flushUpTo) this.flushUpTo = upTo;
      this.kick();
    });
  }

  kick(): void {
    if (this.draining) return;
    this.draining = true;
    void this.drain();
  }

  /**
   * Runs until there is nothing to do; `draining` is cleared in the same synchronous step as that
   * decision, so a kick() is never lost.
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
        if (this.active !== null && this.active !== this.intake.target()) {
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
      if (c.buf.length === this.chunkSize && this.pool.length < this.poolChunks) this.pool.push(c.buf);
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
        const fh = t.fh ?? (await this.reopenTarget(t));
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
        if (this.errors.failing) this.errors.recovered(t.path);
      } catch (err) {
        await this.writeFailed(t, err);
      }
    }
    let n = 0;
    run.forEach((c, i) => {
      n += lines[i]! - c.linesWritten;
      c.linesWritten = lines[i]!;
    });
    this.lines += n;
    this.metrics.recorderWritten.inc(n);
    this.metrics.recorderBufferBytes.set(this.intake.accepted() - this.written);
    this.intake.wrote();
  }

  /** Opens the file of a target whose handle was dropped (a new period's file, or a failed write). */
  private async reopenTarget(t: Target): Promise<FileHandle> {
    const f = await openAppend(t.path);
    if (f.size !== t.base + t.written && f.isFile) {
      this.logger.warn({ event: 'recording_size_mismatch', file: t.path, size: f.size, expected: t.base + t.written }, 'recording: file size is not what this recorder wrote; is another process writing it?');
    }
    t.attach(f);
    return f.fh;
  }

  /** Counted and logged (accounting.ts), then retried on a fresh handle after a capped backoff. */
  private async writeFailed(t: Target, err: unknown): Promise<void> {
    const ms = this.errors.writeFailed(t.path, err);
    // Retry on a fresh handle: the path may have been fixed meanwhile (disk replaced, symlink moved).
    const fh = t.fh;
    t.fh = null;
    if (fh !== null) await fh.close().catch(() => undefined);
    await new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms));
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
      this.errors.syncFailed(t.path, err);
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
    if (t !== this.intake.target()) this.compressor?.kick(); // a closed file: compressed once its period is over
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
      case 'close': {
        if (this.active !== null) await this.retire(this.active);
        const t = this.intake.target();
        if (t !== null) await this.retire(t);
        return;
      }
    }
  }

  /** logrotate: a file moved away from the path is finished, and a new one started at the path. */
  private async runReopen(): Promise<void> {
    const t = this.intake.target();
    if (t === null || t.fh === null) return; // not open: the next write opens the path afresh
    let f: OpenedFile;
    try {
      f = await openAppend(t.path);
    } catch (err) {
      this.errors.reopenFailed(t.path, err);
      return;
    }
    if ((f.dev === t.dev && f.ino === t.ino) || this.intake.target() !== t) {
      // Not moved (or the period turned meanwhile, and the new period has a file of its own).
      await f.fh.close().catch(() => undefined);
      this.logger.info({ event: 'recording_reopened', file: t.path }, 'recording reopened: file not moved');
      return;
    }
    // Moved away. From here on (synchronously) lines go to the new file; lines accepted since the
    // request still belong to the old one and are written there before it is closed.
    const next = Target.of(t.path, f);
    this.intake.retarget(next);
    for (let run = this.writableRun(); run !== null && run[0]!.target === t; run = this.writableRun()) await this.writeRun(run);
    await this.retire(t);
    this.active = next;
    this.logger.info({ event: 'recording_reopened_new', file: t.path, previousBytes: t.base + t.written }, 'recording reopened: previous file was moved away, writing a new one');
  }
}
