/**
 * The invented market behind the Bybit and OKX frames: plausible prices, sizes, books and candles.
 * Only the frames' shapes and sequence fields are taken from the venues; the numbers are made up.
 */

/** Reference price, price decimals, size decimals of the base coins; others get COIN_DEFAULT. */
const COINS: Record<string, readonly [number, number, number]> = {
  BTC: [65_000, 2, 6],
  ETH: [3_500, 2, 5],
  BNB: [600, 2, 3],
  BCH: [400, 2, 3],
  SOL: [150, 3, 3],
  LTC: [80, 3, 3],
  TON: [5, 4, 2],
  MNT: [0.8, 5, 2],
  XRP: [0.6, 5, 1],
  ADA: [0.45, 5, 1],
  DOGE: [0.15, 6, 0],
};
const COIN_DEFAULT = [100, 3, 3] as const;

export const randInt = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));

/** A decimal string with exactly `dp` decimals (Bybit: `"16578.50"`). */
export const fixed = (n: number, dp: number): string => n.toFixed(dp);

/** A decimal string without trailing zeros (OKX: `"42219.9"`, `"8477"`). */
export function trimmed(n: number, dp: number): string {
  const s = n.toFixed(dp);
  return dp === 0 ? s : s.replace(/\.?0+$/, '');
}

/** One instrument's last price, walking a tick or two per trade. */
export class Market {
  price: number;
  readonly tick: number;
  readonly priceDp: number;
  readonly qtyDp: number;
  /** 24 h figures, from the simulator's start. */
  readonly open24: number;
  high24: number;
  low24: number;
  vol24 = 0;
  turnover24 = 0;
  lastQty = 0;
  /** The last trade's move: +1 up, -1 down, 0 none. */
  direction = 0;
  /** The last non-zero move was up (with `direction`: Bybit's tick direction). */
  up = true;

  constructor(coin: string) {
    const [price, priceDp, qtyDp] = COINS[coin] ?? COIN_DEFAULT;
    this.priceDp = priceDp;
    this.qtyDp = qtyDp;
    this.tick = 10 ** -priceDp;
    this.price = this.open24 = this.high24 = this.low24 = price;
  }

  /** A trade: the price moves by -2..2 ticks; returns its size. */
  trade(): number {
    const move = randInt(-2, 2);
    this.direction = Math.sign(move);
    if (move !== 0) this.up = move > 0;
    this.price = Math.max(this.tick, round(this.price + move * this.tick, this.priceDp));
    this.high24 = Math.max(this.high24, this.price);
    this.low24 = Math.min(this.low24, this.price);
    this.lastQty = this.qty();
    this.vol24 += this.lastQty;
    this.turnover24 += this.lastQty * this.price;
    return this.lastQty;
  }

  /** A size worth up to about 2,000 in the quote currency, never 0. */
  qty(): number {
    const unit = 10 ** -this.qtyDp;
    return Math.max(unit, round((Math.random() * 2000) / this.price, this.qtyDp));
  }
}

function round(n: number, dp: number): number {
  const f = 10 ** dp;
  return Math.round(n * f) / f;
}

export const BID = 0;
export const ASK = 1;
/** Books keep at most this many levels a side whatever the channel's depth, so snapshots stay small. */
export const MAX_BOOK_LEVELS = 100;

/**
 * A book of `depth` (at most MAX_BOOK_LEVELS) price levels a side on a fixed grid around the price at creation: each step
 * changes the size of one to three levels, sometimes to 0 (the level is gone). Enough for snapshots
 * and deltas that a client can apply; it does not follow the trade price.
 */
export class Book {
  readonly levels: number;
  /** Size per level, index 0 the best; 0: nothing at that level. */
  readonly sizes: [Float64Array, Float64Array];
  /** Levels the last step changed, as side * levels + index. */
  readonly changed: number[] = [];
  private readonly mid: number;

  constructor(
    readonly market: Market,
    depth: number,
  ) {
    this.levels = Math.min(depth, MAX_BOOK_LEVELS);
    this.mid = market.price;
    this.sizes = [new Float64Array(this.levels), new Float64Array(this.levels)];
    for (const side of this.sizes) for (let i = 0; i < this.levels; i++) side[i] = market.qty();
  }

  price(side: number, i: number): number {
    return round(this.mid + (side === BID ? -(i + 1) : i + 1) * this.market.tick, this.market.priceDp);
  }

  /**
   * `removeShare`: the chance that a changed level goes to 0 (0 for top-of-book snapshots, always full).
   * A one-level book never loses its level: a side would go empty.
   */
  step(removeShare = 0.2): void {
    const share = this.levels > 1 ? removeShare : 0;
    this.changed.length = 0;
    const n = Math.min(randInt(1, 3), this.levels * 2);
    while (this.changed.length < n) {
      const at = randInt(0, this.levels * 2 - 1);
      if (this.changed.includes(at)) continue;
      this.changed.push(at);
      const side = at < this.levels ? BID : ASK;
      this.sizes[side][at % this.levels] = Math.random() < share ? 0 : this.market.qty();
    }
    this.changed.sort((a, b) => a - b);
  }

  /** `render(price, size)` of every level present on a side, best first, joined with commas. */
  side(side: number, render: (price: number, size: number) => string): string {
    const parts: string[] = [];
    const sizes = this.sizes[side];
    for (let i = 0; i < this.levels; i++) if (sizes[i]! > 0) parts.push(render(this.price(side, i), sizes[i]!));
    return parts.join(',');
  }

  /** The last step's changes on a side (size 0: level removed), joined with commas. */
  changes(side: number, render: (price: number, size: number) => string): string {
    const parts: string[] = [];
    for (const at of this.changed) {
      if ((at < this.levels ? BID : ASK) !== side) continue;
      const i = at % this.levels;
      parts.push(render(this.price(side, i), this.sizes[side][i]!));
    }
    return parts.join(',');
  }
}

/** A candle interval: fixed length, aligned to `anchorMs` after the epoch in a zone `offsetMs` east of UTC. */
export type Interval = { ms: number; anchorMs: number; offsetMs: number } | { months: 1; offsetMs: number };

const DAY = 86_400_000;
/** 1970-01-05 was the first Monday: weeks start on Mondays on both venues. */
export const WEEK_ANCHOR = 4 * DAY;

/** The candle containing `t`: [start, end) in ms. */
export function candleWindow(t: number, iv: Interval): [number, number] {
  if ('months' in iv) {
    const d = new Date(t + iv.offsetMs);
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) - iv.offsetMs;
    return [start, Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - iv.offsetMs];
  }
  const k = Math.floor((t + iv.offsetMs - iv.anchorMs) / iv.ms);
  const start = k * iv.ms + iv.anchorMs - iv.offsetMs;
  return [start, start + iv.ms];
}

/**
 * A candle fed by the instrument's trades. The push that finds its window over reports the old candle
 * as closed (Bybit `confirm`, OKX `confirm` "1"); the next push opens the window it falls in.
 */
export class Candle {
  start = -1;
  end = 0;
  open = 0;
  high = 0;
  low = 0;
  close = 0;
  volume = 0;
  turnover = 0;
  /** Time of the last trade in the candle. */
  lastAt = 0;
  closed = false;

  constructor(
    readonly market: Market,
    readonly interval: Interval,
  ) {}

  advance(now: number): void {
    if (this.closed || this.start < 0) {
      [this.start, this.end] = candleWindow(now, this.interval);
      this.open = this.high = this.low = this.close = this.market.price;
      this.volume = this.turnover = 0;
      this.closed = false;
    } else if (now >= this.end) {
      this.closed = true;
      return;
    }
    const qty = this.market.trade();
    this.close = this.market.price;
    this.high = Math.max(this.high, this.close);
    this.low = Math.min(this.low, this.close);
    this.volume += qty;
    this.turnover += qty * this.close;
    this.lastAt = now;
  }
}
