/**
 * A local order book: price → quantity per side, as strings exactly as the exchange sent them
 * (quantities are absolute; "0" removes a level). Sorted on demand, best first.
 */
export type Level = [price: string, qty: string];

export class LocalBook {
  readonly bids = new Map<string, string>();
  readonly asks = new Map<string, string>();

  constructor(
    public lastUpdateId: number,
    bids: readonly Level[] = [],
    asks: readonly Level[] = [],
  ) {
    this.apply(bids, asks);
  }

  apply(bids: readonly Level[], asks: readonly Level[]): void {
    for (const [p, q] of bids) set(this.bids, p, q);
    for (const [p, q] of asks) set(this.asks, p, q);
  }

  bestBid(): number | null {
    let best: number | null = null;
    for (const p of this.bids.keys()) {
      const v = Number(p);
      if (best === null || v > best) best = v;
    }
    return best;
  }

  bestAsk(): number | null {
    let best: number | null = null;
    for (const p of this.asks.keys()) {
      const v = Number(p);
      if (best === null || v < best) best = v;
    }
    return best;
  }

  /** Best bid ≥ best ask: a book that cannot be (a missed update, a bug): treated as corrupt. */
  crossed(): boolean {
    const b = this.bestBid();
    const a = this.bestAsk();
    return b !== null && a !== null && b >= a;
  }

  levels(limit = Number.POSITIVE_INFINITY): { bids: Level[]; asks: Level[] } {
    return { bids: sorted(this.bids, -1, limit), asks: sorted(this.asks, 1, limit) };
  }
}

function set(side: Map<string, string>, p: string, q: string): void {
  if (Number(q) === 0) side.delete(p);
  else side.set(p, q);
}

function sorted(side: Map<string, string>, dir: 1 | -1, limit: number): Level[] {
  return [...side.entries()].sort((a, b) => (Number(a[0]) - Number(b[0])) * dir).slice(0, limit);
}

/** A diff-depth event, as the book needs it. */
export interface DepthEvent {
  U: number;
  u: number;
  /** USD-M/COIN-M: the previous event's `u`. */
  pu: number | null;
  b: Level[];
  a: Level[];
  recv: number;
}

/** Reads a Binance diff-depth payload (`{"e":"depthUpdate",...,"U","u","pu"?,"b","a"}`); null if it is none. */
export function depthEvent(data: unknown, recv: number): DepthEvent | null {
  if (typeof data !== 'object' || data === null) return null;
  const d = data as Record<string, unknown>;
  if (typeof d.U !== 'number' || typeof d.u !== 'number' || !Array.isArray(d.b) || !Array.isArray(d.a)) return null;
  return { U: d.U, u: d.u, pu: typeof d.pu === 'number' ? d.pu : null, b: d.b as Level[], a: d.a as Level[], recv };
}
