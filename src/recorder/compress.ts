import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { syncDir } from '../state-file.js';
import { GZ_SUFFIX, listRecordings, TMP_SUFFIX, type RecordingFile } from './files.js';
import { gzEndsWith } from './read.js';

/**
 * Background gzip of closed period files (docs/recording.md, "Compression"). One file at a time
 * through node:zlib's gzip stream, whose deflate runs on the libuv threadpool: at most one core, never
 * the event loop. Crash-safe by its order of operations:
 *
 *   <file>.ndjson → gzip → <file>.ndjson.gz.tmp, fsync → rename to <file>.ndjson.gz, fsync the
 *   directory → unlink <file>.ndjson, fsync the directory
 *
 * Readers never read a `.gz.tmp`; a `.gz` exists only once whole and synced. At start, and on every
 * sweep, what a crash left is finished: a `.gz.tmp` is deleted (and the compression redone); a `.gz`
 * beside its `.ndjson` whose content ends with the plain file's means the rename happened: the plain
 * file goes. A plain file whose bytes the `.gz` lacks (the clock stepped back into a compressed
 * period) is compressed onto the end of the `.gz` as a second gzip member, which zcat and our readers
 * read as one stream.
 */

export type CompressionKind = 'gzip' | 'none';

export interface CompressorOptions {
  dir: string;
  venue: string;
  /** recorder.rotateEveryMs. */
  periodMs: number;
  /** zlib level, 1 (fastest) to 9 (smallest). */
  level: number;
  /** True while the recorder may still write `path` (its current file, an open one, queued bytes). */
  busy: (path: string) => boolean;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
}

/** Sweep at least this often (retries after a failure; files the recorder did not report). */
const MAX_SWEEP_MS = 60_000;

/**
 * One compression at a time in the whole process, whatever the number of feeds (each has its own
 * Compressor): deflate takes at most one of the threadpool's threads, and the recorders' file
 * operations keep the others.
 */
let processSlot: Promise<void> = Promise.resolve();
function takeSlot(): Promise<() => void> {
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const ready = processSlot.then(() => release);
  processSlot = processSlot.then(() => mine);
  return ready;
}

export class Compressor {
  private readonly opts: CompressorOptions;
  private readonly clock: Clock;
  private readonly sweepMs: number;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private timer: Timer | undefined;
  private abort: AbortController | null = null;
  /** Resolves (to null) when stop() is called. */
  private whenStopped: Promise<null> = Promise.resolve(null);
  private onStop: () => void = () => undefined;
  /** Files that failed, and when to try them again. */
  private readonly retryAt = new Map<string, number>();

  constructor(opts: CompressorOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.sweepMs = Math.min(MAX_SWEEP_MS, opts.periodMs);
  }

  /** Finish what a crash left, compress every closed file, then sweep periodically. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.whenStopped = new Promise<null>((r) => (this.onStop = () => r(null)));
    this.kick();
  }

  /** Something may be ready (the recorder closed a file): sweep now. */
  kick(): void {
    if (this.stopped) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.loop().finally(() => {
      this.running = null;
      if (!this.stopped) this.timer = this.clock.setTimeout(() => this.kick(), this.sweepMs);
    });
  }

  /** Abandons a compression under way (its `.gz.tmp` is removed, or at the next start) and stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.onStop();
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
    await this.running;
  }

  /** Resolves when no sweep is running (tests). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.sweep();
      } catch (err) {
        this.opts.logger.error({ event: 'recording_compress_failed', err, dir: this.opts.dir }, 'recording compression: cannot list the recording');
        this.opts.metrics.recorderCompressFailures.inc();
      }
    } while (this.again && !this.stopped);
  }

  private async sweep(): Promise<void> {
    const now = this.clock.now();
    for (const f of await listRecordings(this.opts.dir, this.opts.venue)) {
      if (this.stopped) return;
      if (f.tmp) await this.removeTmp(f);
      if (!f.plain || f.startMs + this.opts.periodMs > now || this.opts.busy(f.path)) continue;
      if ((this.retryAt.get(f.path) ?? 0) > now) continue;
      const slot = takeSlot();
      const release = await Promise.race([slot, this.whenStopped]);
      if (release === null) {
        void slot.then((r) => r()); // stopped while another feed's compression held the slot
        return;
      }
      try {
        if (this.stopped) return;
        await this.compress(f);
        this.retryAt.delete(f.path);
      } catch (err) {
        await unlinkIfAny(f.path + TMP_SUFFIX).catch(() => false);
        if (this.stopped) return; // abandoned by stop(): redone at the next start
        this.retryAt.set(f.path, this.clock.now() + this.sweepMs);
        this.opts.metrics.recorderCompressFailures.inc();
        this.opts.logger.error(
          { event: 'recording_compress_failed', err, errno: (err as NodeJS.ErrnoException).code, file: f.path, retryInMs: this.sweepMs },
          'recording compression failed; the file stays uncompressed and is retried',
        );
      } finally {
        release();
      }
    }
  }

  private async removeTmp(f: RecordingFile): Promise<void> {
    if (await unlinkIfAny(f.path + TMP_SUFFIX)) {
      this.opts.logger.warn({ event: 'recording_compress_tmp_removed', file: f.path + TMP_SUFFIX }, 'recording compression: removed an unfinished .gz.tmp (a crash or a failure interrupted it); redone from the original');
    }
  }

  private async compress(f: RecordingFile): Promise<void> {
    const { path } = f;
    const gzPath = path + GZ_SUFFIX;
    const tmpPath = path + TMP_SUFFIX;
    const dir = dirname(path);
    const t0 = this.clock.now();
    const size = (await statOrNull(path))?.size;
    if (size === undefined) return; // gone meanwhile
    let prefix = 0;
    if (f.gz) {
      if (await gzEndsWith(gzPath, path)) {
        // The rename happened, the unlink did not: the plain file is a copy.
        await unlink(path);
        await syncDir(dir);
        this.opts.logger.warn({ event: 'recording_compress_finished', file: gzPath }, 'recording compression: finished one a crash interrupted (the .gz was whole, its original removed)');
        return;
      }
      prefix = (await stat(gzPath)).size;
    }
    const abort = (this.abort = new AbortController());
    let out = 0;
    try {
      const ws = createWriteStream(tmpPath, { flags: 'wx' });
      if (prefix > 0) {
        // A second member after the first: gzip readers read the concatenation as one stream.
        await pipeline(createReadStream(gzPath), ws, { signal: abort.signal, end: false });
      }
      const input = size === 0 ? Readable.from([]) : createReadStream(path, { start: 0, end: size - 1, highWaterMark: 256 * 1024 });
      await pipeline(input, createGzip({ level: this.opts.level, chunkSize: 64 * 1024 }), ws, { signal: abort.signal });
      const fh = await open(tmpPath, 'r+');
      try {
        await fh.sync();
        out = (await fh.stat()).size - prefix;
      } finally {
        await fh.close();
      }
    } finally {
      if (this.abort === abort) this.abort = null;
    }
    // The recorder may have come back to the file (the clock stepped back): leave it for later.
    if (this.opts.busy(path) || (await statOrNull(path))?.size !== size) {
      await unlinkIfAny(tmpPath);
      this.opts.logger.info({ event: 'compress_file_changed', file: path }, 'recording compression: the file changed while compressed; retried later');
      return;
    }
    await rename(tmpPath, gzPath);
    await syncDir(dir);
    await unlink(path);
    await syncDir(dir);
    const ms = this.clock.now() - t0;
    const m = this.opts.metrics;
    m.recorderCompressedFiles.inc();
    m.recorderCompressInBytes.inc(size);
    m.recorderCompressOutBytes.inc(out);
    m.recorderCompressSeconds.inc(ms / 1000);
    this.opts.logger.info(
      { event: 'recording_compressed', file: gzPath, bytesIn: size, bytesOut: out, ratio: out > 0 ? Math.round((size / out) * 10) / 10 : null, ms, appended: prefix > 0 },
      'recording compressed',
    );
  }
}

async function statOrNull(path: string): Promise<{ size: number } | null> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function unlinkIfAny(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
