import type { VenueName } from '../venues/index.js';
import type { StreamSpec } from './streams.js';

/**
 * Realistic payloads, key for key and in key order as Binance sends them: the spot and USD-M shapes
 * of depth, bookTicker, aggTrade and kline are copied from recorded frames
 * (test/fixtures/binance/*.ndjson, checked by test/simulator-shapes.test.ts); trade, the tickers,
 * avgPrice and partial depth from binance-spot-api-docs web-socket-streams.md and the USD-M docs.
 * Each payload is built by a template from a stream's Tape, once per event.
 */

/** IDs start above 2^32, like real ones (facts sheet: "update IDs exceed 2^32"). */
const ID_BASE = 2 ** 32 + 1_000_000_000;
const DAY_MS = 86_400_000;

/** One stream's market state: the last event's IDs, prices and times. Mutated in place, never copied. */
export class Tape {
  /** The stream's ID: trade `t`, aggTrade `a`, depth/bookTicker `u`, spot partial depth `lastUpdateId`. */
  seq: number;
  /** aggTrade `f`, depth `U`. */
  first = 0;
  /** aggTrade `l`; USD-M depth `pu` (the previous event's `u`). */
  last = 0;
  /** Underlying trade IDs (aggTrade f/l, kline f/L, ticker F/L). */
  tradeId: number;
  price: number;
  readonly tick: number;
  E = 0;
  T = 0;
  maker = false;
  p = '';
  q = '';
  bid = '';
  bidQty = '';
  ask = '';
  askQty = '';
  /** JSON arrays of [price, qty] levels. */
  bids = '[]';
  asks = '[]';
  // kline window
  kStart = -1;
  kEnd = 0;
  kFirst = 0;
  kOpen = 0;
  kHigh = 0;
  kLow = 0;
  kVol = 0;
  kQuote = 0;
  kTakerVol = 0;
  kTakerQuote = 0;
  kTrades = 0;
  kClosed = false;
  // 24 h ticker
  open24: number;
  high24: number;
  low24: number;
  vol24: number;
  trades24: number;

  constructor(
    readonly symbol: string,
    price: number,
    readonly priceDp: number,
    readonly qtyDp: number,
    /** Levels a side of a partial depth stream (5, 10, 20); 0 for other streams. */
    readonly depthLevels: number,
    /** Kline interval, e.g. `1m`; '' for other streams. */
    readonly interval: string,
  ) {
    this.seq = ID_BASE + Math.floor(Math.random() * 1e11);
    this.tradeId = ID_BASE + Math.floor(Math.random() * 1e11);
    this.price = price;
    this.tick = Math.max(10 ** (Math.floor(Math.log10(price)) - 4), 10 ** -priceDp);
    this.open24 = this.high24 = this.low24 = this.price;
    this.vol24 = 0;
    this.trades24 = 0;
  }
}

export interface Family {
  /** The payload field sentIds() reports, or null where the stream is ordered by event time only. */
  readonly idField: string | null;
  /** Consume the next event's IDs only (cheap: used to move a stream on while nobody listens). */
  advance(t: Tape): void;
  /** Fill prices, sizes and times of the event whose IDs advance() just consumed. */
  fill(t: Tape, now: number): void;
  /** The payload; times in ms × tu (tu = 1000 for timeUnit=MICROSECOND). */
  encode(t: Tape, tu: number): string;
}

export function newTape(venue: VenueName, spec: StreamSpec): Tape {
  const usdm = venue === 'binance-usdm' || venue === 'binance-coinm';
  const levels = /^depth(5|10|20)/.exec(spec.type);
  const price = basePrice(spec.symbol);
  const priceDp = usdm ? (price >= 1000 ? 2 : price >= 1 ? 4 : 5) : 8;
  const qtyDp = usdm ? (price >= 100 ? 3 : 0) : 8;
  const interval = spec.type.startsWith('kline_') ? spec.type.slice(6) : '';
  return new Tape(spec.symbol, price, priceDp, qtyDp, levels ? Number(levels[1]) : 0, interval);
}

export function familyFor(venue: VenueName, family: string): Family {
  const table = venue === 'binance-usdm' ? USDM : venue === 'binance-coinm' ? COINM : SPOT;
  const f = table[family];
  if (f === undefined) throw new TypeError(`simulator has no ${family} payload for ${venue}`);
  return f;
}

// ---------------------------------------------------------------- shared steps

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

/** A price between 0.01 and ~2000 that stays the same for a symbol across runs. */
function basePrice(symbol: string): number {
  let h = 2166136261;
  for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 16777619) >>> 0;
  return 10 ** ((h % 6) - 2) * (1 + ((h >>> 8) % 1000) / 1000);
}

function walk(t: Tape): void {
  const moved = t.price + (rnd(5) - 2) * t.tick;
  t.price = moved > t.tick * 10 ? moved : t.tick * 10;
  t.p = t.price.toFixed(t.priceDp);
}

function quantity(t: Tape): number {
  const q = (1 + rnd(2000)) / (t.price >= 100 ? 1000 : 10);
  return t.qtyDp === 0 ? Math.ceil(q) : q;
}

function trade(t: Tape, now: number): void {
  walk(t);
  const qty = quantity(t);
  t.q = qty.toFixed(t.qtyDp);
  t.maker = Math.random() < 0.5;
  t.E = now;
  t.T = now - rnd(5);
  t.vol24 += qty;
  t.trades24++;
  if (t.price > t.high24) t.high24 = t.price;
  if (t.price < t.low24) t.low24 = t.price;
}

function top(t: Tape): void {
  t.bid = (t.price - t.tick).toFixed(t.priceDp);
  t.ask = (t.price + t.tick).toFixed(t.priceDp);
  t.bidQty = quantity(t).toFixed(t.qtyDp);
  t.askQty = quantity(t).toFixed(t.qtyDp);
}

/** A depth diff: 0-3 changed levels a side (at least one level in all), quantity 0 removing a level. */
function diffLevels(t: Tape): void {
  const nb = rnd(4);
  const na = nb === 0 ? 1 + rnd(3) : rnd(4);
  t.bids = levels(t, nb, -1, true);
  t.asks = levels(t, na, 1, true);
}

/** A book snapshot of depthLevels levels a side. */
function bookLevels(t: Tape): void {
  t.bids = levels(t, t.depthLevels, -1, false);
  t.asks = levels(t, t.depthLevels, 1, false);
}

function levels(t: Tape, n: number, side: 1 | -1, diff: boolean): string {
  if (n === 0) return '[]';
  let s = '[';
  let offset = diff ? rnd(5) : 0;
  for (let i = 0; i < n; i++) {
    offset += 1 + (diff ? rnd(3) : 0);
    const px = t.price + side * offset * t.tick;
    const qty = diff && rnd(4) === 0 ? 0 : quantity(t);
    if (i > 0) s += ',';
    s += '["' + px.toFixed(t.priceDp) + '","' + qty.toFixed(t.qtyDp) + '"]';
  }
  return s + ']';
}

function tickerFill(t: Tape, now: number): void {
  walk(t);
  t.tradeId += 1 + rnd(3);
  t.trades24 += 1;
  if (t.price > t.high24) t.high24 = t.price;
  if (t.price < t.low24) t.low24 = t.price;
  t.vol24 += quantity(t);
  top(t);
  t.E = now;
}

const KLINE_MS: Record<string, number> = {
  '1s': 1000, '1m': 60_000, '3m': 180_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000,
  '1h': 3_600_000, '2h': 7_200_000, '4h': 14_400_000, '6h': 21_600_000, '8h': 28_800_000,
  '12h': 43_200_000, '1d': DAY_MS, '3d': 3 * DAY_MS, '1w': 7 * DAY_MS,
};

/** Open time of the kline holding `now`: weeks start on Monday, months on the 1st (UTC). */
function klineStart(interval: string, now: number): number {
  if (interval === '1M') {
    const d = new Date(now);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const ms = KLINE_MS[interval]!;
  const offset = interval === '1w' ? 4 * DAY_MS : 0; // 1970-01-01 was a Thursday
  return Math.floor((now - offset) / ms) * ms + offset;
}

function klineEnd(interval: string, start: number): number {
  if (interval === '1M') {
    const d = new Date(start);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - 1;
  }
  return start + KLINE_MS[interval]! - 1;
}

// ---------------------------------------------------------------- families

const tradeFamily = (encode: (t: Tape, tu: number) => string): Family => ({
  idField: 't',
  advance: (t) => {
    t.seq += 1;
  },
  fill: trade,
  encode,
});

const aggTradeFamily = (encode: (t: Tape, tu: number) => string): Family => ({
  idField: 'a',
  advance: (t) => {
    t.seq += 1;
    t.first = t.tradeId + 1;
    t.tradeId += 1 + rnd(3);
    t.last = t.tradeId;
  },
  fill: trade,
  encode,
});

/** Spot diff depth: each event covers [U;u] and the next U is this u + 1. */
const spotDepthAdvance = (t: Tape): void => {
  t.first = t.seq + 1;
  t.seq = t.first + rnd(5);
};

/** USD-M diff depth: U jumps (the ID space is shared), `pu` carries the previous u. */
const usdmDepthAdvance = (t: Tape): void => {
  t.last = t.seq;
  t.first = t.seq + 1 + rnd(300);
  t.seq = t.first + rnd(1500);
};

/** bookTicker `u` and partial depth `lastUpdateId` jump: other updates of the book happen between. */
const jumpAdvance = (t: Tape): void => {
  t.seq += 1 + rnd(50);
};

const klineFamily: Family = {
  idField: null,
  advance: (t) => {
    t.tradeId += 1 + rnd(3);
  },
  fill: (t, now) => {
    t.E = now;
    const start = klineStart(t.interval, now);
    if (t.kStart !== -1 && start !== t.kStart && !t.kClosed) {
      t.kClosed = true; // this event is the final one of the previous kline (x: true)
      return;
    }
    if (start !== t.kStart) {
      t.kStart = start;
      t.kEnd = klineEnd(t.interval, start);
      t.kFirst = t.tradeId;
      t.kOpen = t.kHigh = t.kLow = t.price;
      t.kVol = t.kQuote = t.kTakerVol = t.kTakerQuote = 0;
      t.kTrades = 0;
      t.kClosed = false;
    }
    walk(t);
    const qty = quantity(t);
    if (t.price > t.kHigh) t.kHigh = t.price;
    if (t.price < t.kLow) t.kLow = t.price;
    t.kVol += qty;
    t.kQuote += qty * t.price;
    if (Math.random() < 0.5) {
      t.kTakerVol += qty;
      t.kTakerQuote += qty * t.price;
    }
    t.kTrades = t.tradeId - t.kFirst + 1;
  },
  encode: (t, tu) => {
    const dp = t.priceDp;
    const qdp = t.qtyDp;
    return `{"e":"kline","E":${t.E * tu},"s":"${t.symbol}","k":{"t":${t.kStart * tu},"T":${t.kEnd * tu + tu - 1},"s":"${t.symbol}","i":"${t.interval}","f":${t.kFirst},"L":${t.tradeId},"o":"${t.kOpen.toFixed(dp)}","c":"${t.price.toFixed(dp)}","h":"${t.kHigh.toFixed(dp)}","l":"${t.kLow.toFixed(dp)}","v":"${t.kVol.toFixed(qdp)}","n":${t.kTrades},"x":${t.kClosed},"q":"${t.kQuote.toFixed(dp)}","V":"${t.kTakerVol.toFixed(qdp)}","Q":"${t.kTakerQuote.toFixed(dp)}","B":"0"}}`;
  },
};

const miniTickerFamily: Family = {
  idField: null,
  advance: () => {},
  fill: tickerFill,
  encode: (t, tu) =>
    `{"e":"24hrMiniTicker","E":${t.E * tu},"s":"${t.symbol}","c":"${t.p}","o":"${t.open24.toFixed(t.priceDp)}","h":"${t.high24.toFixed(t.priceDp)}","l":"${t.low24.toFixed(t.priceDp)}","v":"${t.vol24.toFixed(t.qtyDp)}","q":"${(t.vol24 * t.price).toFixed(t.priceDp)}"}`,
};

/** The fields spot and USD-M 24hrTicker share, after `"w"`. */
function tickerChange(t: Tape): { p: string; P: string; w: string } {
  const change = t.price - t.open24;
  return {
    p: change.toFixed(t.priceDp),
    P: ((change / t.open24) * 100).toFixed(3),
    w: ((t.high24 + t.low24 + t.price) / 3).toFixed(t.priceDp),
  };
}

const SPOT: Record<string, Family> = {
  trade: tradeFamily(
    (t, tu) =>
      `{"e":"trade","E":${t.E * tu},"s":"${t.symbol}","t":${t.seq},"p":"${t.p}","q":"${t.q}","T":${t.T * tu},"m":${t.maker},"M":true}`,
  ),
  aggTrade: aggTradeFamily(
    (t, tu) =>
      `{"e":"aggTrade","E":${t.E * tu},"s":"${t.symbol}","a":${t.seq},"p":"${t.p}","q":"${t.q}","f":${t.first},"l":${t.last},"T":${t.T * tu},"m":${t.maker},"M":true}`,
  ),
  depth: {
    idField: 'u',
    advance: spotDepthAdvance,
    fill: (t, now) => {
      walk(t);
      diffLevels(t);
      t.E = now;
    },
    encode: (t, tu) =>
      `{"e":"depthUpdate","E":${t.E * tu},"s":"${t.symbol}","U":${t.first},"u":${t.seq},"b":${t.bids},"a":${t.asks}}`,
  },
  // Spot bookTicker has neither e nor E (the recorded frames confirm it).
  bookTicker: {
    idField: 'u',
    advance: jumpAdvance,
    fill: (t) => {
      walk(t);
      top(t);
    },
    encode: (t) => `{"u":${t.seq},"s":"${t.symbol}","b":"${t.bid}","B":"${t.bidQty}","a":"${t.ask}","A":"${t.askQty}"}`,
  },
  depthPartial: {
    idField: 'lastUpdateId',
    advance: jumpAdvance,
    fill: (t) => {
      walk(t);
      bookLevels(t);
    },
    encode: (t) => `{"lastUpdateId":${t.seq},"bids":${t.bids},"asks":${t.asks}}`,
  },
  kline: klineFamily,
  miniTicker: miniTickerFamily,
  ticker: {
    idField: null,
    advance: () => {},
    fill: tickerFill,
    encode: (t, tu) => {
      const c = tickerChange(t);
      return `{"e":"24hrTicker","E":${t.E * tu},"s":"${t.symbol}","p":"${c.p}","P":"${c.P}","w":"${c.w}","x":"${t.open24.toFixed(t.priceDp)}","c":"${t.p}","Q":"${t.bidQty}","b":"${t.bid}","B":"${t.bidQty}","a":"${t.ask}","A":"${t.askQty}","o":"${t.open24.toFixed(t.priceDp)}","h":"${t.high24.toFixed(t.priceDp)}","l":"${t.low24.toFixed(t.priceDp)}","v":"${t.vol24.toFixed(t.qtyDp)}","q":"${(t.vol24 * t.price).toFixed(t.priceDp)}","O":${(t.E - DAY_MS) * tu},"C":${t.E * tu},"F":${t.tradeId - t.trades24 + 1},"L":${t.tradeId},"n":${t.trades24}}`;
    },
  },
  avgPrice: {
    idField: null,
    advance: () => {},
    fill: (t, now) => {
      walk(t);
      t.E = now;
      t.T = now - rnd(1000);
    },
    encode: (t, tu) => `{"e":"avgPrice","E":${t.E * tu},"s":"${t.symbol}","i":"5m","w":"${t.p}","T":${t.T * tu}}`,
  },
};

/** USD-M diff and partial depth share one shape: T, and `pu` for the link to the previous event. */
const usdmDepth: Family = {
  idField: 'u',
  advance: usdmDepthAdvance,
  fill: (t, now) => {
    walk(t);
    if (t.depthLevels > 0) bookLevels(t);
    else diffLevels(t);
    t.E = now;
    t.T = now - rnd(20);
  },
  encode: (t, tu) =>
    `{"e":"depthUpdate","E":${t.E * tu},"T":${t.T * tu},"s":"${t.symbol}","U":${t.first},"u":${t.seq},"pu":${t.last},"b":${t.bids},"a":${t.asks}}`,
};

const USDM: Record<string, Family> = {
  trade: tradeFamily(
    (t, tu) =>
      `{"e":"trade","E":${t.E * tu},"T":${t.T * tu},"s":"${t.symbol}","t":${t.seq},"p":"${t.p}","q":"${t.q}","X":"MARKET","m":${t.maker}}`,
  ),
  aggTrade: aggTradeFamily(
    (t, tu) =>
      `{"e":"aggTrade","E":${t.E * tu},"a":${t.seq},"s":"${t.symbol}","p":"${t.p}","q":"${t.q}","f":${t.first},"l":${t.last},"T":${t.T * tu},"m":${t.maker}}`,
  ),
  depth: usdmDepth,
  depthPartial: usdmDepth,
  bookTicker: {
    idField: 'u',
    advance: jumpAdvance,
    fill: (t, now) => {
      walk(t);
      top(t);
      t.T = now - rnd(10);
      t.E = now;
    },
    encode: (t, tu) =>
      `{"e":"bookTicker","u":${t.seq},"s":"${t.symbol}","b":"${t.bid}","B":"${t.bidQty}","a":"${t.ask}","A":"${t.askQty}","T":${t.T * tu},"E":${t.E * tu}}`,
  },
  kline: klineFamily,
  miniTicker: miniTickerFamily,
  ticker: {
    idField: null,
    advance: () => {},
    fill: tickerFill,
    encode: (t, tu) => {
      const c = tickerChange(t);
      return `{"e":"24hrTicker","E":${t.E * tu},"s":"${t.symbol}","p":"${c.p}","P":"${c.P}","w":"${c.w}","c":"${t.p}","Q":"${t.bidQty}","o":"${t.open24.toFixed(t.priceDp)}","h":"${t.high24.toFixed(t.priceDp)}","l":"${t.low24.toFixed(t.priceDp)}","v":"${t.vol24.toFixed(t.qtyDp)}","q":"${(t.vol24 * t.price).toFixed(t.priceDp)}","O":${(t.E - DAY_MS) * tu},"C":${t.E * tu},"F":${t.tradeId - t.trades24 + 1},"L":${t.tradeId},"n":${t.trades24}}`;
    },
  },
};

/**
 * COIN-M shapes are USD-M's plus `ps`, the pair of the contract (BTCUSD for BTCUSD_PERP), after
 * `s` (test/fixtures/binance-coinm: the docs' diff-depth example).
 */
const coinmDepth: Family = {
  ...usdmDepth,
  encode: (t, tu) =>
    `{"e":"depthUpdate","E":${t.E * tu},"T":${t.T * tu},"s":"${t.symbol}","ps":"${t.symbol.slice(0, t.symbol.indexOf('_'))}","U":${t.first},"u":${t.seq},"pu":${t.last},"b":${t.bids},"a":${t.asks}}`,
};

const COINM: Record<string, Family> = { ...USDM, depth: coinmDepth, depthPartial: coinmDepth };
