import type { Tape } from './feed.js';
import { ASK, BID, Book, Candle, Market, WEEK_ANCHOR, fixed, randInt, type Interval } from './market.js';

/**
 * Bybit v5 public frames, key for key in the order of the documented examples: publicTrade and
 * orderbook.50 from ../shared/fixtures/bybit/docs-examples.ndjson, tickers and kline from the docs pages
 * (bybit-exchange/docs, docs/v5/websocket/public/ticker.mdx and kline.mdx). Level-1 books put `ts`
 * before `type` (facts sheet, Bybit "book").
 */

export const BYBIT_SYMBOLS = [
  'BTCUSDT',
  'ETHUSDT',
  'SOLUSDT',
  'XRPUSDT',
  'DOGEUSDT',
  'BNBUSDT',
  'ADAUSDT',
  'LTCUSDT',
  'TONUSDT',
  'MNTUSDT',
  'BTCUSDC',
  'ETHUSDC',
];

const BOOK_DEPTHS = new Set(['1', '50', '200', '1000']);
const MINUTE = 60_000;
const KLINE_INTERVALS: Record<string, Interval> = {
  D: { ms: 1440 * MINUTE, anchorMs: 0, offsetMs: 0 },
  W: { ms: 7 * 1440 * MINUTE, anchorMs: WEEK_ANCHOR, offsetMs: 0 },
  M: { months: 1, offsetMs: 0 },
};
for (const m of [1, 3, 5, 15, 30, 60, 120, 240, 360, 720]) KLINE_INTERVALS[m] = { ms: m * MINUTE, anchorMs: 0, offsetMs: 0 };

/** Canonical stream id (`orderbook.50:BTCUSDT`) of a topic (`orderbook.50.BTCUSDT`): the last `.` becomes `:`. */
export function bybitStream(topic: string): string {
  const dot = topic.lastIndexOf('.');
  return dot < 0 ? topic : `${topic.slice(0, dot)}:${topic.slice(dot + 1)}`;
}

/** Why Bybit refuses a topic (its ret_msg wording where known: facts sheet, [I-B3]); null: a valid topic. */
export function bybitTopicError(topic: string, symbols: ReadonlySet<string>): string | null {
  const dot = topic.lastIndexOf('.');
  const channel = topic.slice(0, Math.max(0, dot));
  if (dot < 0 || channelKind(channel) === null) return `error:handler not found,topic:${topic}`;
  if (!symbols.has(topic.slice(dot + 1))) return `Invalid symbol :[${topic}]`;
  return null;
}

type Kind = 'trade' | 'book' | 'ticker' | 'kline';

function channelKind(channel: string): Kind | null {
  if (channel === 'publicTrade') return 'trade';
  if (channel === 'tickers') return 'ticker';
  const [head, arg, ...rest] = channel.split('.');
  if (rest.length > 0 || arg === undefined) return null;
  if (head === 'orderbook' && BOOK_DEPTHS.has(arg)) return 'book';
  if (head === 'kline' && Object.hasOwn(KLINE_INTERVALS, arg)) return 'kline';
  return null;
}

/** The tape of a canonical stream id, or null when Bybit has no such stream. */
export function newBybitTape(stream: string, symbols: ReadonlySet<string>, linear: boolean): BybitTape | null {
  const colon = stream.lastIndexOf(':');
  const channel = stream.slice(0, Math.max(0, colon));
  const symbol = stream.slice(colon + 1);
  const kind = channelKind(channel);
  if (colon < 0 || kind === null || !symbols.has(symbol)) return null;
  const market = new Market(symbol.replace(/(USDT|USDC|USD|BTC|ETH|EUR)$/, ''));
  const topic = `${channel}.${symbol}`;
  const arg = channel.slice(channel.indexOf('.') + 1);
  switch (kind) {
    case 'trade':
      return new TradeTape(topic, symbol, market);
    case 'book':
      return new BookTape(topic, symbol, market, Number(arg));
    case 'ticker':
      return new TickerTape(topic, symbol, market, linear);
    case 'kline':
      return new KlineTape(topic, market, arg, KLINE_INTERVALS[arg]!);
  }
}

export type BybitTape = TradeTape | BookTape | TickerTape | KlineTape;

/** Spot trade IDs are numbers near 2.29e18 (docs captures); these stay below 2^53 so clients can check them as numbers. */
const TRADE_ID_BASE = 2_290_000_000_000_000;

/** Bybit's tick direction of the last trade (docs enum `tickDirection`). */
function tickDirection(m: Market): string {
  if (m.up) return m.direction !== 0 ? 'PlusTick' : 'ZeroPlusTick';
  return m.direction !== 0 ? 'MinusTick' : 'ZeroMinusTick';
}

/** publicTrade: one to three trades a push; `i` jumps (Bybit promises no contiguity: facts sheet, "trades"). */
class TradeTape implements Tape {
  private readonly head: string;
  private id = TRADE_ID_BASE + randInt(0, 1e12);
  private seq = randInt(1e9, 9e9);
  private ts = 0;
  /** Trades are sorted by match time, across pushes too (facts sheet, Bybit "trades"): T never falls. */
  private lastT = 0;
  private readonly rows: string[] = [];

  constructor(
    topic: string,
    private readonly symbol: string,
    private readonly market: Market,
  ) {
    this.head = `{"topic":"${topic}","type":"snapshot","ts":`;
  }

  advance(now: number, maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.seq += randInt(1, 50);
    this.rows.length = 0;
    const m = this.market;
    const n = Math.min(randInt(1, 3), maxIds);
    for (let k = 0; k < n; k++) {
      this.id += randInt(1, 40);
      id(this.id);
      const qty = m.trade();
      this.lastT = Math.max(this.lastT, now - randInt(1, 3));
      this.rows.push(
        `{"T":${this.lastT},"s":"${this.symbol}","S":"${m.direction < 0 ? 'Sell' : 'Buy'}","v":"${fixed(qty, m.qtyDp)}",` +
          `"p":"${fixed(m.price, m.priceDp)}","L":"${tickDirection(m)}","i":"${this.id}","BT":false,"seq":${this.seq}}`,
      );
    }
  }

  frame(): string {
    return `${this.head}${this.ts},"data":[${this.rows.join(',')}]}`;
  }
}

const level = (p: number, s: number, m: Market): string => `["${fixed(p, m.priceDp)}","${fixed(s, m.qtyDp)}"]`;

/**
 * orderbook.{depth}: a subscriber's first push is a snapshot, then deltas; `u` +1 a push, `seq` grows
 * by jumps. restart() makes the next push a snapshot with u=1 for everyone: Bybit's service restart
 * (facts sheet, "book": "u=1 means service restart: overwrite").
 */
export class BookTape implements Tape {
  private readonly book: Book;
  private readonly topic: string;
  private readonly levelOne: boolean;
  private u = randInt(1e7, 2e8);
  private seq = randInt(1e9, 9e10);
  private ts = 0;
  private restartPending = false;
  private restarted = false;
  private readonly render: (p: number, s: number) => string;

  constructor(
    topic: string,
    private readonly symbol: string,
    market: Market,
    depth: number,
  ) {
    this.topic = topic;
    this.levelOne = depth === 1;
    this.book = new Book(market, depth);
    this.render = (p, s) => level(p, s, market);
  }

  restart(): void {
    this.restartPending = true;
  }

  advance(now: number, _maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.restarted = this.restartPending;
    this.restartPending = false;
    this.u = this.restarted ? 1 : this.u + 1;
    this.seq += randInt(1, 5000);
    this.book.step();
    id(this.u);
  }

  frame(): string {
    return this.restarted ? this.firstFrame() : this.push('delta', this.book.changes(BID, this.render), this.book.changes(ASK, this.render));
  }

  firstFrame(): string {
    return this.push('snapshot', this.book.side(BID, this.render), this.book.side(ASK, this.render));
  }

  private push(type: string, b: string, a: string): string {
    const head = this.levelOne
      ? `{"topic":"${this.topic}","ts":${this.ts},"type":"${type}"`
      : `{"topic":"${this.topic}","type":"${type}","ts":${this.ts}`;
    return `${head},"data":{"s":"${this.symbol}","b":[${b}],"a":[${a}],"u":${this.u},"seq":${this.seq}},"cts":${this.ts - randInt(1, 3)}}`;
  }
}

/**
 * tickers: spot pushes snapshots only; linear pushes a snapshot to a new subscriber, then deltas with
 * the fields that change (ticker.mdx: "If a response param is not found in the message, then its value
 * has not changed").
 */
class TickerTape implements Tape {
  private cs = randInt(1e9, 9e10);
  private ts = 0;

  constructor(
    private readonly topic: string,
    private readonly symbol: string,
    private readonly market: Market,
    private readonly linear: boolean,
  ) {}

  advance(now: number): void {
    this.ts = now;
    this.cs += randInt(1, 5000);
    this.market.trade();
  }

  frame(): string {
    if (!this.linear) return this.spot();
    const m = this.market;
    const p = (n: number): string => fixed(n, m.priceDp);
    return (
      `{"topic":"${this.topic}","type":"delta","data":{"symbol":"${this.symbol}","tickDirection":"${tickDirection(m)}",` +
      `"lastPrice":"${p(m.price)}","markPrice":"${p(m.price)}","indexPrice":"${p(m.price)}",` +
      `"turnover24h":"${m.turnover24.toFixed(4)}","volume24h":"${fixed(m.vol24, m.qtyDp)}",` +
      `"bid1Price":"${p(m.price - m.tick)}","bid1Size":"${fixed(m.qty(), m.qtyDp)}","ask1Price":"${p(m.price)}",` +
      `"ask1Size":"${fixed(m.qty(), m.qtyDp)}"},"cs":${this.cs},"ts":${this.ts}}`
    );
  }

  firstFrame(): string {
    if (!this.linear) return this.spot();
    const m = this.market;
    const p = (n: number): string => fixed(n, m.priceDp);
    return (
      `{"topic":"${this.topic}","type":"snapshot","data":{"symbol":"${this.symbol}","tickDirection":"${tickDirection(m)}",` +
      `"price24hPcnt":"${pcnt(m)}","lastPrice":"${p(m.price)}","prevPrice24h":"${p(m.open24)}",` +
      `"highPrice24h":"${p(m.high24)}","lowPrice24h":"${p(m.low24)}","prevPrice1h":"${p(m.open24)}",` +
      `"markPrice":"${p(m.price)}","indexPrice":"${p(m.price)}","openInterest":"${fixed(m.vol24 * 3, m.qtyDp)}",` +
      `"openInterestValue":"${(m.vol24 * 3 * m.price).toFixed(2)}","turnover24h":"${m.turnover24.toFixed(4)}",` +
      `"volume24h":"${fixed(m.vol24, m.qtyDp)}","nextFundingTime":"${nextFunding(this.ts)}","fundingRate":"0.0001",` +
      `"bid1Price":"${p(m.price - m.tick)}","bid1Size":"${fixed(m.qty(), m.qtyDp)}","ask1Price":"${p(m.price)}",` +
      `"ask1Size":"${fixed(m.qty(), m.qtyDp)}"},"cs":${this.cs},"ts":${this.ts}}`
    );
  }

  private spot(): string {
    const m = this.market;
    const p = (n: number): string => fixed(n, m.priceDp);
    return (
      `{"topic":"${this.topic}","ts":${this.ts},"type":"snapshot","cs":${this.cs},"data":{"symbol":"${this.symbol}",` +
      `"lastPrice":"${p(m.price)}","highPrice24h":"${p(m.high24)}","lowPrice24h":"${p(m.low24)}",` +
      `"prevPrice24h":"${p(m.open24)}","volume24h":"${fixed(m.vol24, m.qtyDp)}",` +
      `"turnover24h":"${m.turnover24.toFixed(4)}","price24hPcnt":"${pcnt(m)}"}}`
    );
  }
}

/** `+ 0` turns a rounded -0 into 0: no "-0.0000". */
const pcnt = (m: Market): string => (Math.round(((m.price - m.open24) / m.open24) * 1e4) / 1e4 + 0).toFixed(4);
/** Funding every 8 h on the hour (00, 08, 16 UTC). */
const nextFunding = (ts: number): number => (Math.floor(ts / (8 * 3_600_000)) + 1) * 8 * 3_600_000;

/** kline.{interval}: the running candle every push; `confirm` true once, on the push after it ends. */
class KlineTape implements Tape {
  private readonly candle: Candle;
  private ts = 0;

  constructor(
    private readonly topic: string,
    market: Market,
    private readonly interval: string,
    iv: Interval,
  ) {
    this.candle = new Candle(market, iv);
  }

  advance(now: number): void {
    this.ts = now;
    this.candle.advance(now);
  }

  frame(): string {
    const c = this.candle;
    const { priceDp, qtyDp } = c.market;
    return (
      `{"topic":"${this.topic}","data":[{"start":${c.start},"end":${c.end - 1},"interval":"${this.interval}",` +
      `"open":"${fixed(c.open, priceDp)}","close":"${fixed(c.close, priceDp)}","high":"${fixed(c.high, priceDp)}",` +
      `"low":"${fixed(c.low, priceDp)}","volume":"${fixed(c.volume, qtyDp)}","turnover":"${c.turnover.toFixed(4)}",` +
      `"confirm":${c.closed},"timestamp":${c.lastAt}}],"ts":${this.ts},"type":"snapshot"}`
    );
  }
}
