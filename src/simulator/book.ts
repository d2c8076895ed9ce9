import type { Tape } from './payloads.js';

/**
 * A matching book per symbol behind the diff-depth streams: every depth event is a diff of this book
 * (quantities absolute, 0 removes a level), and REST `depth` answers a snapshot of it with the
 * stream's current update ID, so a client that follows Binance's procedure (docs/recovery.md) holds
 * exactly this book. The book is never crossed: as the price walks, levels on the wrong side of it
 * are removed in the same event that moves it. At most `maxLevels` a side (the farthest goes).
 */

export interface BookLevels {
  lastUpdateId: number;
  bids: Array<[string, string]>;
  asks: Array<[string, string]>;
}

export class SimBook {
  /** Tick index → quantity (string as sent). */
  private readonly bids = new Map<number, string>();
  private readonly asks = new Map<number, string>();
  private started = false;

  constructor(private readonly maxLevels = 50) {}

  /**
   * Moves the book for the event whose IDs the tape holds (after advance() and fill()): sets
   * tape.bids / tape.asks to the diff and applies it.
   */
  step(t: Tape): void {
    const mid = Math.max(20, Math.round(t.price / t.tick));
    const bidDiff = new Map<number, string>();
    const askDiff = new Map<number, string>();
    if (!this.started) {
      this.started = true;
      for (let i = 1; i <= 20; i++) {
        bidDiff.set(mid - i, qty(t));
        askDiff.set(mid + i, qty(t));
      }
    } else {
      // Levels the price walked through leave the book (never crossed).
      for (const k of this.bids.keys()) if (k >= mid) bidDiff.set(k, ZERO(t));
      for (const k of this.asks.keys()) if (k <= mid) askDiff.set(k, ZERO(t));
      const n = 1 + rnd(4);
      for (let i = 0; i < n; i++) {
        const bid = Math.random() < 0.5;
        const k = bid ? mid - 1 - rnd(25) : mid + 1 + rnd(25);
        const side = bid ? this.bids : this.asks;
        const diff = bid ? bidDiff : askDiff;
        // A quarter of the changes remove a level that exists.
        diff.set(k, side.has(k) && rnd(4) === 0 ? ZERO(t) : qty(t));
      }
    }
    apply(this.bids, bidDiff);
    apply(this.asks, askDiff);
    trim(this.bids, bidDiff, this.maxLevels, -1, t);
    trim(this.asks, askDiff, this.maxLevels, 1, t);
    t.bids = encode(bidDiff, t, -1);
    t.asks = encode(askDiff, t, 1);
  }

  /** The book now, best first, at most `limit` levels a side. */
  snapshot(lastUpdateId: number, limit: number, t: Tape): BookLevels {
    const side = (m: Map<number, string>, dir: 1 | -1): Array<[string, string]> =>
      [...m.entries()]
        .sort((a, b) => (a[0] - b[0]) * dir)
        .slice(0, limit)
        .map(([k, q]) => [price(k, t), q]);
    return { lastUpdateId, bids: side(this.bids, -1), asks: side(this.asks, 1) };
  }
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

function qty(t: Tape): string {
  const q = (1 + rnd(2000)) / (t.price >= 100 ? 1000 : 10);
  return (t.qtyDp === 0 ? Math.ceil(q) : q).toFixed(t.qtyDp);
}

function ZERO(t: Tape): string {
  return (0).toFixed(t.qtyDp);
}

function price(k: number, t: Tape): string {
  return (k * t.tick).toFixed(t.priceDp);
}

function apply(side: Map<number, string>, diff: Map<number, string>): void {
  for (const [k, q] of diff) {
    if (Number(q) === 0) side.delete(k);
    else side.set(k, q);
  }
}

/** Keep `max` levels a side: the farthest from the touch go, announced in the diff. */
function trim(side: Map<number, string>, diff: Map<number, string>, max: number, dir: 1 | -1, t: Tape): void {
  if (side.size <= max) return;
  const far = [...side.keys()].sort((a, b) => (b - a) * dir).slice(0, side.size - max);
  for (const k of far) {
    side.delete(k);
    diff.set(k, ZERO(t));
  }
}

function encode(diff: Map<number, string>, t: Tape, dir: 1 | -1): string {
  const rows = [...diff.entries()].sort((a, b) => (a[0] - b[0]) * dir);
  return `[${rows.map(([k, q]) => `["${price(k, t)}","${q}"]`).join(',')}]`;
}
