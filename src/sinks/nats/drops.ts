import type { FrameKeys, SequenceRule } from '../../venues/types.js';
import type { Missed } from '../../ledger/types.js';

/** What the drop accounting needs of the gap ledger. */
export interface DropLedger {
  openGap(e: { venue: string; stream: string; connection: null; start: number; cause: 'sink_dropped'; detail: string }): string;
  closeGap(id: string, e: { end: number; missed: Missed | null }): void;
}

/**
 * One stream's messages the NATS sink dropped in a row (its buffer full): the first and last
 * sequence IDs, how many, when. Written to the ledger as one `sink_dropped` entry when the stream's
 * next message fits again, and every second while the run goes on (so a crash loses at most a
 * second of the account), so the entries' ranges are exactly what the broker never got.
 */
export class DropRun {
  start = 0;
  end = 0;
  messages = 0;
  /** IDs covered (contiguous: a message may cover several), from..to. */
  ids = 0;
  from = NaN;
  to = NaN;
  active = false;

  constructor(
    readonly venue: string,
    readonly stream: string,
    private readonly rule: SequenceRule,
  ) {}

  /** A dropped message; `k` holds its keys when `keyed`. */
  add(recv: number, k: FrameKeys, keyed: boolean): void {
    if (!this.active) {
      this.active = true;
      this.start = recv;
      this.messages = this.ids = 0;
      this.from = this.to = NaN;
    }
    this.end = recv;
    this.messages++;
    if (keyed) {
      const first = k.first === k.first ? k.first : k.last;
      if (this.from !== this.from) this.from = first;
      this.to = k.last;
      this.ids += k.last - first + 1;
    }
  }

  /** Writes the run's entry and starts over; nothing when no message was dropped. */
  flush(ledger: DropLedger | null, sink: string): void {
    if (!this.active) return;
    this.active = false;
    if (ledger === null) return;
    const r = this.rule;
    let missed: Missed | null = null;
    if (this.from === this.from && (r.kind === 'contiguous' || r.kind === 'range' || r.kind === 'linked')) {
      missed = { field: r.field, from: this.from, to: this.to, count: r.kind === 'contiguous' ? this.ids : null };
    }
    const id = ledger.openGap({
      venue: this.venue,
      stream: this.stream,
      connection: null,
      start: this.start,
      cause: 'sink_dropped',
      detail: `${sink}: ${this.messages} message${this.messages === 1 ? '' : 's'} not published (buffer full); in the recording`,
    });
    ledger.closeGap(id, { end: this.end, missed });
  }
}
