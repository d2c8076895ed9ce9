import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { listRecordings, parseRecordingName, type RecordingFile } from '../recorder/files.js';
import { parseRecordedLine } from '../recorder/line.js';
import { readPeriodLines } from '../recorder/read.js';
import { writeStateFile } from '../state-file.js';
import { ErrorCodes, FeedkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { StreamType, Venue } from '../venues/types.js';
import { recordedKeys } from './missed.js';

/**
 * Exact last-seen IDs for daemon_down gaps (docs/gap-ledger.md, "daemon_down is exact").
 *
 * The contract with the router: it saves {streams as of T0, recording position P0 taken at T0}
 * only after recorder.flush() resolved, so the recording holds every line before P0. At the next
 * start, the checkpoint gives the last IDs up to P0 and a scan of the recording from P0 (through
 * every later hourly file) gives everything recorded after; the last line of each stream is the
 * last message the previous run recorded.
 */

export interface StreamSeen {
  /** The stream's last sequence key (for diff depth, the event's `u`). */
  key: number;
  /** Epoch ms the message was received. */
  recv: number;
}

export interface CheckpointState {
  /** Epoch ms. */
  savedAt: number;
  /** recorder.position() at the time the streams were taken, after flush(); null without recorder. */
  recording: { file: string; offset: number } | null;
  streams: Record<string, StreamSeen>;
  /** True only for the checkpoint written at a clean shutdown. */
  clean: boolean;
}

const FORMAT_VERSION = 1;

export interface CheckpointerOptions {
  statePath: string;
  /**
   * Whose checkpoint it is (the ledger's absolute path and the venue): a checkpoint of another
   * daemon (another ledger, run from the same directory) is ignored with a warning, never applied.
   */
  owner?: string;
  logger?: Logger;
}

export class Checkpointer {
  readonly statePath: string;
  private readonly owner: string | undefined;
  private readonly logger: Logger;
  private chain: Promise<void> = Promise.resolve();

  constructor(opts: CheckpointerOptions) {
    this.statePath = opts.statePath;
    this.owner = opts.owner;
    this.logger = opts.logger ?? silentLogger();
  }

  /**
   * Atomically replaces the checkpoint: write a temporary file, fsync it, rename it over the old
   * one, fsync the directory. Saves run one at a time, in call order. Rejects with
   * FK_ERR_LEDGER_WRITE on failure (the previous checkpoint is then still intact).
   */
  save(state: CheckpointState): Promise<void> {
    const text = JSON.stringify({ v: FORMAT_VERSION, ...(this.owner === undefined ? {} : { owner: this.owner }), ...state }) + '\n';
    const run = this.chain.then(() => this.write(text));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The last checkpoint, or null when there is none (or it is unreadable: logged). */
  async load(): Promise<CheckpointState | null> {
    let text: string;
    try {
      text = await readFile(this.statePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      this.logger.warn({ event: 'checkpoint_unreadable', err, path: this.statePath }, 'checkpoint unreadable: ignored');
      return null;
    }
    const state = parseCheckpoint(text);
    if (state === null) this.logger.warn({ event: 'checkpoint_invalid', path: this.statePath }, 'checkpoint is not valid: ignored');
    const owner = checkpointOwner(text);
    if (state !== null && this.owner !== undefined && owner !== null && owner !== this.owner) {
      this.logger.warn(
        { event: 'state_not_ours', path: this.statePath, owner, expected: this.owner },
        'the checkpoint belongs to another daemon (another ledger): ignored; set ledger.statePath per daemon',
      );
      return null;
    }
    return state;
  }

  private async write(text: string): Promise<void> {
    try {
      await writeStateFile(this.statePath, text);
    } catch (err) {
      throw new FeedkeeperError(ErrorCodes.FK_ERR_LEDGER_WRITE, `cannot save the checkpoint ${this.statePath}`, { cause: err });
    }
  }

}

function isSeen(v: unknown): v is StreamSeen {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s.key === 'number' && Number.isFinite(s.key) && typeof s.recv === 'number' && Number.isFinite(s.recv);
}

/** The `owner` a checkpoint was saved with, or null (older checkpoints have none). */
function checkpointOwner(text: string): string | null {
  try {
    const o = JSON.parse(text) as { owner?: unknown };
    return typeof o.owner === 'string' ? o.owner : null;
  } catch {
    return null;
  }
}

export function parseCheckpoint(text: string): CheckpointState | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const r = o as Record<string, unknown>;
  if (r.v !== FORMAT_VERSION || typeof r.savedAt !== 'number' || typeof r.clean !== 'boolean') return null;
  let recording: CheckpointState['recording'] = null;
  if (r.recording !== null) {
    const rec = r.recording as Record<string, unknown> | undefined;
    if (typeof rec !== 'object' || typeof rec.file !== 'string' || typeof rec.offset !== 'number' || rec.offset < 0) return null;
    recording = { file: rec.file, offset: rec.offset };
  }
  if (typeof r.streams !== 'object' || r.streams === null) return null;
  const streams: Record<string, StreamSeen> = {};
  for (const [name, v] of Object.entries(r.streams)) {
    if (!isSeen(v)) return null;
    streams[name] = { key: v.key, recv: v.recv };
  }
  return { savedAt: r.savedAt, recording, streams, clean: r.clean };
}

/** A stream's last sequence key from a recorded line's `data` JSON text; null to skip the line. */
export type KeyOf = (stream: string, dataJsonText: string) => number | null;

export interface RecoverOptions {
  statePath: string;
  /** The recorder's root (config recorder.dir). */
  recorderDir: string;
  venue: string;
  keyOf: KeyOf;
  logger?: Logger;
  /** Whose checkpoint to accept (CheckpointerOptions.owner). */
  owner?: string;
}

export interface Recovered {
  /** Last key and receive time per stream, as recorded by the previous run. */
  streams: Map<string, StreamSeen>;
  /** The previous run ended with a clean shutdown (its final checkpoint says so and nothing was recorded after it). */
  clean: boolean;
  /** The previous run's last sign of life: the latest of the checkpoint time and the last line recorded. */
  stoppedAt: number | null;
  /**
   * False when the recording could not be scanned as the contract requires (no checkpoint, no
   * recording, the checkpoint's file missing or shorter than its offset): then a missed range may
   * start too early. Logged as a warning.
   */
  exact: boolean;
  /** Lines read from the recording. */
  linesScanned: number;
}

/**
 * The previous run's last-seen keys per stream: the checkpoint, then the recording from the
 * checkpoint's position through every later hourly file. A torn last line is ignored.
 */
export async function recoverLastSeen(opts: RecoverOptions): Promise<Recovered> {
  const logger = opts.logger ?? silentLogger();
  const cp = await new Checkpointer({ statePath: opts.statePath, logger, owner: opts.owner }).load();
  const streams = new Map<string, StreamSeen>(Object.entries(cp?.streams ?? {}).map(([k, v]) => [k, { ...v }]));
  let stoppedAt = cp?.savedAt ?? null;
  let exact = true;
  const files = await listRecordings(opts.recorderDir, opts.venue);

  const plan: Array<{ file: RecordingFile; start: number }> = [];
  if (cp === null) {
    // No checkpoint: the newest file alone is the best guess.
    const last = files[files.length - 1];
    if (last !== undefined) {
      plan.push({ file: last, start: 0 });
      exact = false;
      logger.warn({ event: 'checkpoint_missing', statePath: opts.statePath }, 'no checkpoint: last-seen IDs taken from the newest recording only');
    }
  } else if (cp.recording === null || cp.recording.file === '') {
    exact = false;
    logger.warn({ event: 'checkpoint_without_position', statePath: opts.statePath }, 'checkpoint without a recording position: last-seen IDs as of the checkpoint');
  } else {
    // The checkpoint names the period's .ndjson; it may be compressed since (same bytes, same offsets).
    const from = parseRecordingName(basename(cp.recording.file));
    const i = from === null ? -1 : files.findIndex((f) => f.key === from.key);
    if (i !== -1) {
      plan.push({ file: files[i]!, start: cp.recording.offset });
      for (const f of files.slice(i + 1)) plan.push({ file: f, start: 0 });
    } else {
      exact = false;
      logger.warn({ event: 'checkpoint_file_missing', file: cp.recording.file }, "the checkpoint's recording file is missing: scanning later files only");
      for (const f of files) if (from !== null && f.startMs > from.startMs) plan.push({ file: f, start: 0 });
    }
  }

  let linesScanned = 0;
  let lastRecv = -Infinity;
  for (const part of plan) {
    const onLine = (text: string): void => {
      const l = parseRecordedLine(text);
      if (l === null) return;
      linesScanned++;
      if (l.recv > lastRecv) lastRecv = l.recv;
      // Backfilled REST objects hold old IDs: never a stream's last key (docs/recovery.md).
      if (l.src !== undefined) return;
      let key: number | null;
      try {
        key = opts.keyOf(l.stream, l.data);
      } catch {
        key = null;
      }
      const seen = streams.get(l.stream);
      if (key !== null) streams.set(l.stream, { key, recv: l.recv });
      else if (seen !== undefined) seen.recv = l.recv;
    };
    let read;
    try {
      read = await readPeriodLines(part.file, part.start, onLine);
    } catch (err) {
      exact = false;
      logger.warn({ event: 'recovery_file_unreadable', err, file: part.file.path }, 'recording vanished or unreadable during recovery');
      continue;
    }
    if (part.start > read.totalBytes) {
      exact = false;
      logger.warn({ event: 'recovery_file_shorter', file: part.file.path, offset: part.start, size: read.totalBytes }, 'recording shorter than the checkpoint offset');
    }
    if (read.tornBytes > 0) logger.info({ event: 'recovery_torn_line', file: part.file.path, bytes: read.tornBytes }, 'recording ends with a torn line: ignored');
  }
  if (lastRecv > (stoppedAt ?? -Infinity)) stoppedAt = lastRecv;
  // A clean checkpoint is the last thing a run writes: lines after it come from a later run that
  // did not stop cleanly.
  const clean = (cp?.clean ?? false) && linesScanned === 0;
  logger.info(
    { event: 'last_seen_recovered', streams: streams.size, clean, exact, stoppedAt: stoppedAt === null ? null : new Date(stoppedAt).toISOString(), linesScanned },
    'last-seen IDs recovered',
  );
  return { streams, clean, stoppedAt, exact, linesScanned };
}

/**
 * A KeyOf for a venue: the stream's type gives its key reader (the one the router uses live), run
 * on the recorded bytes; the key is the message's last sequence ID (diff depth: `u`; trade: `t`;
 * OKX books: `seqId`; others: their ordered field).
 */
export function venueKeyOf(venue: Pick<Venue, 'streamType' | 'typeOf' | 'readStream' | 'recordingShape'>): KeyOf {
  const types = new Map<string, StreamType | null>();
  return (stream, dataJsonText) => {
    let st = types.get(stream);
    if (st === undefined) {
      st = venue.streamType(venue.typeOf(stream));
      types.set(stream, st);
    }
    return st === null ? null : (recordedKeys(venue, st, dataJsonText)?.last ?? null);
  };
}
