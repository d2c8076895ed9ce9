import type { Tape } from './payloads.js';

/**
 * The simulator's truth for REST backfill: every trade and aggregate trade a stream generated
 * (sent, skipped, or generated while nobody listened), in ID order, so that `GET /api/v3/aggTrades`,
 * `/api/v3/historicalTrades` and the futures `aggTrades` serve exactly what the streams carried.
 * History ages out: records older than `maxAgeMs` (by trade time T) and beyond `maxRecords` are
 * forgotten, as an exchange forgets (a futures history limit, a retention window).
 */

export interface TradeRecord {
  /** Trade `t` or aggTrade `a`. */
  id: number;
  p: string;
  q: string;
  /** aggTrade first/last trade IDs (0 for trades). */
  f: number;
  l: number;
  T: number;
  m: boolean;
}

export interface HistoryLimits {
  /** Records kept per stream at most (the oldest go first). */
  maxRecords: number;
  /** Records whose trade time is older than this (ms before the clock) are no longer served. */
  maxAgeMs: number;
}

export class TradeHistory {
  private records: TradeRecord[] = [];
  /** Index of the oldest record still served. */
  private head = 0;

  constructor(
    private readonly limits: HistoryLimits,
    private readonly clock: () => number,
  ) {}

  /** Records the event whose IDs and fields the tape holds now (after advance() and fill()). */
  push(t: Tape, aggregate: boolean): void {
    if (this.limits.maxRecords <= 0) return;
    this.records.push({ id: t.seq, p: t.p, q: t.q, f: aggregate ? t.first : 0, l: aggregate ? t.last : 0, T: t.T, m: t.maker });
    if (this.records.length - this.head > this.limits.maxRecords) this.head = this.records.length - this.limits.maxRecords;
    this.compact();
  }

  get size(): number {
    this.age();
    return this.records.length - this.head;
  }

  /** The oldest ID still served, or null when nothing is. */
  oldestId(): number | null {
    this.age();
    return this.head < this.records.length ? this.records[this.head]!.id : null;
  }

  /**
   * Up to `limit` records with id >= fromId, oldest first (from the oldest served when fromId is
   * older than the history: the caller sees the first ID returned is above the one it asked for).
   * Without fromId: the most recent `limit`.
   */
  from(fromId: number | null, limit: number): TradeRecord[] {
    this.age();
    const n = this.records.length;
    if (fromId === null) return this.records.slice(Math.max(this.head, n - limit), n);
    // IDs are contiguous within a stream (+1 per event): index arithmetic, with a binary search as
    // a fallback should that ever not hold.
    let i = this.head;
    if (i < n) {
      const guess = this.head + (fromId - this.records[this.head]!.id);
      if (guess >= this.head && guess < n && this.records[guess]!.id === fromId) i = guess;
      else if (fromId > this.records[this.head]!.id) {
        let lo = this.head;
        let hi = n;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (this.records[mid]!.id < fromId) lo = mid + 1;
          else hi = mid;
        }
        i = lo;
      }
    }
    return this.records.slice(i, Math.min(n, i + limit));
  }

  private age(): void {
    const cutoff = this.clock() - this.limits.maxAgeMs;
    while (this.head < this.records.length && this.records[this.head]!.T < cutoff) this.head++;
    this.compact();
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
  }
}

/** `GET /api/v3/aggTrades` (and /fapi, /dapi: the same object without `M`). */
export function aggTradeJson(r: TradeRecord, spot: boolean): string {
  return `{"a":${r.id},"p":"${r.p}","q":"${r.q}","f":${r.f},"l":${r.l},"T":${r.T},"m":${r.m}${spot ? ',"M":true' : ''}}`;
}

/** `GET /api/v3/historicalTrades`: one trade. */
export function historicalTradeJson(r: TradeRecord, priceDp: number): string {
  const quote = (Number(r.p) * Number(r.q)).toFixed(priceDp);
  return `{"id":${r.id},"price":"${r.p}","qty":"${r.q}","quoteQty":"${quote}","time":${r.T},"isBuyerMaker":${r.m},"isBestMatch":true}`;
}
