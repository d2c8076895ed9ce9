import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';

/** A connection whose socket reads can be held (a Session). */
export interface ReadHolder {
  /** Stop (true) or go on (false) reading the socket. */
  holdReads(on: boolean): void;
}

/** How a hold ended: the buffer drained below the release mark, or recorder.holdReadsMs ran out. */
export const HOLD_ENDS = ['drained', 'max_hold'] as const;
export type HoldEnd = (typeof HOLD_ENDS)[number];

/** At most one `recorder_reads_held` info line per this period (a flood holds many times a second). */
const LOG_EVERY_MS = 10_000;

/**
 * The state of one venue's read hold:
 *
 *   free ──hold()──► held ──release('drained')──► free
 *                     │
 *                     └──max_hold timer──► spent ──release('drained')──► free
 *
 * `spent`: the hold lasted recorder.holdReadsMs and the disk is still behind: reads go on and the
 * recorder drops when full, as without a hold, until the buffer drains; no new hold meanwhile. A
 * stall longer than the hold is a loss in the ledger, never a connection held until the exchange
 * gives up on it.
 */
type HoldState = { readonly kind: 'free' } | { readonly kind: 'held'; readonly since: number; readonly timer: Timer } | { readonly kind: 'spent' };

export interface ReadHoldOptions {
  venue: string;
  /** recorder.holdReadsMs: the longest one hold lasts; 0 never holds. */
  maxHoldMs: number;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Backpressure from the recorder to the sockets. When the recorder's buffer passes its hold mark
 * (half of recorder.maxBufferBytes) the venue's connections stop reading: what the exchange sends
 * meanwhile waits in the kernel's socket buffers and the exchange's, and is read, in order, once the
 * disk has caught up (below a quarter of the buffer). A short disk stall or a flood past the disk's
 * rate becomes latency instead of a loss. docs/recording.md, "Holding reads".
 */
export class ReadHold {
  private state: HoldState = { kind: 'free' };
  private readonly holders = new Set<ReadHolder>();
  private heldSinceLog = 0;
  private lastLog = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: ReadHoldOptions) {}

  /** The longest one hold lasts (recorder.holdReadsMs as the feed applies it). */
  get maxHoldMs(): number {
    return this.opts.maxHoldMs;
  }

  /** Are reads held now? */
  get held(): boolean {
    return this.state.kind === 'held';
  }

  /** May a hold start (not held, not spent, holds enabled)? */
  get ready(): boolean {
    return this.state.kind === 'free' && this.opts.maxHoldMs > 0;
  }

  /** A connection that reads: held at once while a hold is on. */
  join(h: ReadHolder): void {
    this.holders.add(h);
    if (this.state.kind === 'held') h.holdReads(true);
  }

  leave(h: ReadHolder): void {
    this.holders.delete(h);
  }

  /** The recorder's buffer passed its hold mark. */
  hold(bufferedBytes: number): void {
    if (!this.ready) return;
    const { clock, metrics, venue } = this.opts;
    const now = clock.now();
    const timer = clock.setTimeout(() => this.expire(), this.opts.maxHoldMs);
    this.state = { kind: 'held', since: now, timer };
    metrics.recorderReadHolds.inc();
    metrics.recorderReadsHeld.set(1);
    this.heldSinceLog++;
    if (now - this.lastLog >= LOG_EVERY_MS) {
      this.opts.logger.info(
        { event: 'recorder_reads_held', venue, bufferedBytes, holds: this.heldSinceLog, maxHoldMs: this.opts.maxHoldMs },
        'recording behind: connections stop reading until the disk catches up',
      );
      this.lastLog = now;
      this.heldSinceLog = 0;
    }
    for (const h of this.holders) h.holdReads(true);
  }

  /** The recorder's buffer drained below its release mark. */
  drained(): void {
    if (this.state.kind === 'held') this.end('drained');
    else if (this.state.kind === 'spent') this.state = { kind: 'free' };
  }

  /** Shutdown: reads go on (the sessions are closing) and no timer is left. */
  stop(): void {
    if (this.state.kind === 'held') this.end('drained');
    this.state = { kind: 'free' };
  }

  private expire(): void {
    if (this.state.kind !== 'held') return;
    this.end('max_hold');
    this.opts.logger.warn(
      { event: 'recorder_read_hold_expired', venue: this.opts.venue, maxHoldMs: this.opts.maxHoldMs },
      'recording still behind after recorder.holdReadsMs: reading again; messages past the buffer are dropped (recorder_dropped gaps)',
    );
  }

  private end(how: HoldEnd): void {
    const st = this.state;
    if (st.kind !== 'held') return;
    const { clock, metrics } = this.opts;
    clock.clearTimeout(st.timer);
    this.state = how === 'drained' ? { kind: 'free' } : { kind: 'spent' };
    metrics.recorderReadsHeld.set(0);
    metrics.recorderReadHoldSeconds.inc({ end: how }, Math.max(0, clock.now() - st.since) / 1000);
    for (const h of this.holders) {
      h.holdReads(false);
      // A released socket reads what it held at once, and that may fill the buffer again: a new
      // hold has then already held every socket, the rest stay held.
      if (this.held) break;
    }
  }
}
