import type { Tape } from './feed.js';
import { ASK, BID, Book, Candle, Market, WEEK_ANCHOR, randInt, trimmed, type Interval } from './market.js';

/**
 * OKX v5 public frames, key for key in the order of the documented examples
 * (../shared/fixtures/okx/docs-examples.ndjson: trades, books snapshot and update, books5, bbo-tbt;
 * tickers and candles from the OKX docs' push examples). Numbers are strings, except `seqId`,
 * `prevSeqId` and `checksum`.
 */

export const OKX_INSTRUMENTS = [
  'BTC-USDT',
  'ETH-USDT',
  'SOL-USDT',
  'XRP-USDT',
  'DOGE-USDT',
  'LTC-USDT',
  'TON-USDT',
  'BTC-USDC',
  'BTC-USDT-SWAP',
  'ETH-USDT-SWAP',
  'SOL-USDT-SWAP',
  'BCH-USDT-SWAP',
  'BTC-USD-SWAP',
];

export const PUBLIC_PATH = '/ws/v5/public';
export const BUSINESS_PATH = '/ws/v5/business';

const HOUR = 3_600_000;
/** OKX candles from 6H up align to Hong Kong time (UTC+8) unless the bar ends in `utc`. */
const HK = 8 * HOUR;
const CANDLE_BARS: Record<string, Interval> = {
  '1s': { ms: 1000, anchorMs: 0, offsetMs: 0 },
  '1M': { months: 1, offsetMs: HK },
  '1Mutc': { months: 1, offsetMs: 0 },
  '1W': { ms: 168 * HOUR, anchorMs: WEEK_ANCHOR, offsetMs: HK },
  '1Wutc': { ms: 168 * HOUR, anchorMs: WEEK_ANCHOR, offsetMs: 0 },
};
for (const m of [1, 3, 5, 15, 30]) CANDLE_BARS[`${m}m`] = { ms: m * 60_000, anchorMs: 0, offsetMs: 0 };
for (const h of [1, 2, 4]) CANDLE_BARS[`${h}H`] = { ms: h * HOUR, anchorMs: 0, offsetMs: 0 };
for (const [bar, ms] of [['6H', 6 * HOUR], ['12H', 12 * HOUR], ['1D', 24 * HOUR], ['2D', 48 * HOUR], ['3D', 72 * HOUR]] as const) {
  CANDLE_BARS[bar] = { ms, anchorMs: 0, offsetMs: HK };
  CANDLE_BARS[`${bar}utc`] = { ms, anchorMs: 0, offsetMs: 0 };
}

/** The URL path that serves a channel, or null when OKX has no such public channel. */
export function okxChannelPath(channel: string): string | null {
  if (channel === 'trades' || channel === 'books' || channel === 'books5' || channel === 'bbo-tbt' || channel === 'tickers') {
    return PUBLIC_PATH;
  }
  // Candles moved to the business URL in 2023 (OKX's 64001 "This channel has been migrated to the
  // '/business' URL": github.com/DogsTailFarmer/exchanges-wrapper/issues/27).
  if (channel.startsWith('candle') && Object.hasOwn(CANDLE_BARS, channel.slice(6))) return BUSINESS_PATH;
  return null;
}

/** `trades:BTC-USDT` → its parts; null when OKX has no such stream. */
function parseStream(stream: string, instIds: ReadonlySet<string>): { channel: string; instId: string } | null {
  const colon = stream.indexOf(':');
  const channel = stream.slice(0, Math.max(0, colon));
  const instId = stream.slice(colon + 1);
  if (colon < 0 || okxChannelPath(channel) === null || !instIds.has(instId)) return null;
  return { channel, instId };
}

export function newOkxTape(stream: string, instIds: ReadonlySet<string>, booksSnapshot: boolean): OkxTape | null {
  const p = parseStream(stream, instIds);
  if (p === null) return null;
  const { channel, instId } = p;
  const market = new Market(instId.split('-')[0]!);
  const head = `{"arg":{"channel":"${channel}","instId":"${instId}"}`;
  switch (channel) {
    case 'trades':
      return new TradeTape(head, instId, market);
    case 'books':
      return new BooksTape(head, market, booksSnapshot);
    case 'books5':
      return new TopTape(head, market, 5, `"instId":"${instId}",`);
    case 'bbo-tbt':
      return new TopTape(head, market, 1, '');
    case 'tickers':
      return new TickerTape(head, instId, market);
    default:
      return new CandleTape(head, market, CANDLE_BARS[channel.slice(6)]!);
  }
}

export type OkxTape = TradeTape | BooksTape | TopTape | TickerTape | CandleTape;

/**
 * trades: one push per aggregated taker order. `tradeId` is the last of `count` contiguous IDs (facts
 * sheet, OKX "trades": tradeId 123, count 3 = 121..123), so every ID is reported.
 */
class TradeTape implements Tape {
  private tradeId = randInt(1e8, 9e8);
  private seqId = randInt(1e9, 9e9);
  private count = 1;
  private qty = 0;
  private ts = 0;

  constructor(
    private readonly head: string,
    private readonly instId: string,
    private readonly market: Market,
  ) {}

  advance(now: number, maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.seqId += randInt(1, 20);
    this.count = Math.min(randInt(1, 3), maxIds);
    this.qty = 0;
    for (let k = 0; k < this.count; k++) {
      id(++this.tradeId);
      this.qty += this.market.trade();
    }
  }

  frame(): string {
    const m = this.market;
    return (
      `${this.head},"data":[{"instId":"${this.instId}","tradeId":"${this.tradeId}","px":"${trimmed(m.price, m.priceDp)}",` +
      `"sz":"${trimmed(this.qty, m.qtyDp)}","side":"${m.direction < 0 ? 'sell' : 'buy'}","ts":"${this.ts}",` +
      `"count":"${this.count}","source":"0","seqId":${this.seqId}}]}`
    );
  }
}

/** `[px, sz, "0", orders]`: the third field is deprecated and always "0"; a removed level has sz "0". */
function levelRenderer(m: Market): (p: number, s: number) => string {
  return (p, s) => `["${trimmed(p, m.priceDp)}","${trimmed(s, m.qtyDp)}","0","${s > 0 ? (Math.round(s * 7919) % 20) + 1 : 0}"]`;
}

/**
 * books (400 levels, here at most MAX_BOOK_LEVELS): a subscriber's first push is a snapshot with
 * prevSeqId -1, unless booksSnapshot is off (OKX's announced change); every update names the previous
 * push's seqId as prevSeqId, and seqId steps arbitrarily (facts sheet, OKX "sequence"). The checksum is
 * always 0 (deprecated 2026-06-23). resetSeq(): the next update's seqId drops below its prevSeqId, as
 * after OKX maintenance; the chain still holds.
 */
export class BooksTape implements Tape {
  readonly firstFrame: (() => string) | undefined;
  private readonly book: Book;
  private readonly render: (p: number, s: number) => string;
  private seqId = randInt(1e9, 9e9);
  private prevSeqId = -1;
  private ts = 0;
  private resetPending = false;

  constructor(
    private readonly head: string,
    market: Market,
    snapshot: boolean,
  ) {
    this.book = new Book(market, 400);
    this.render = levelRenderer(market);
    this.firstFrame = snapshot ? () => this.push('snapshot', this.book.side(ASK, this.render), this.book.side(BID, this.render), -1) : undefined;
  }

  resetSeq(): void {
    this.resetPending = true;
  }

  advance(now: number, _maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.prevSeqId = this.seqId;
    this.seqId = this.resetPending ? Math.min(this.prevSeqId - 1, randInt(1000, 9999)) : this.seqId + randInt(1, 30);
    this.resetPending = false;
    this.book.step();
    id(this.seqId);
  }

  frame(): string {
    return this.push('update', this.book.changes(ASK, this.render), this.book.changes(BID, this.render), this.prevSeqId);
  }

  private push(action: string, asks: string, bids: string, prevSeqId: number): string {
    return (
      `${this.head},"action":"${action}","data":[{"asks":[${asks}],"bids":[${bids}],"ts":"${this.ts}",` +
      `"checksum":0,"prevSeqId":${prevSeqId},"seqId":${this.seqId}}]}`
    );
  }
}

/** books5 and bbo-tbt: a full top-of-book snapshot every push, seqId but no prevSeqId or checksum. */
class TopTape implements Tape {
  private readonly book: Book;
  private readonly render: (p: number, s: number) => string;
  private seqId = randInt(1e8, 9e8);
  private ts = 0;

  constructor(
    private readonly head: string,
    market: Market,
    levels: number,
    /** books5 repeats the instId in data (fixture); bbo-tbt does not. */
    private readonly instIdField: string,
  ) {
    this.book = new Book(market, levels);
    this.render = levelRenderer(market);
  }

  advance(now: number, _maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.seqId += randInt(1, 30);
    this.book.step(0);
    id(this.seqId);
  }

  frame(): string {
    return (
      `${this.head},"data":[{"asks":[${this.book.side(ASK, this.render)}],"bids":[${this.book.side(BID, this.render)}],` +
      `${this.instIdField}"ts":"${this.ts}","seqId":${this.seqId}}]}`
    );
  }
}

/** tickers: a full ticker every push. */
class TickerTape implements Tape {
  private readonly instType: string;
  private ts = 0;

  constructor(
    private readonly head: string,
    private readonly instId: string,
    private readonly market: Market,
  ) {
    this.instType = instId.endsWith('-SWAP') ? 'SWAP' : 'SPOT';
  }

  advance(now: number): void {
    this.ts = now;
    this.market.trade();
  }

  frame(): string {
    const m = this.market;
    const p = (n: number): string => trimmed(n, m.priceDp);
    const q = (n: number): string => trimmed(n, m.qtyDp);
    return (
      `${this.head},"data":[{"instType":"${this.instType}","instId":"${this.instId}","last":"${p(m.price)}",` +
      `"lastSz":"${q(m.lastQty)}","askPx":"${p(m.price + m.tick)}","askSz":"${q(m.qty())}","bidPx":"${p(m.price)}",` +
      `"bidSz":"${q(m.qty())}","open24h":"${p(m.open24)}","high24h":"${p(m.high24)}","low24h":"${p(m.low24)}",` +
      `"sodUtc0":"${p(m.open24)}","sodUtc8":"${p(m.open24)}","volCcy24h":"${trimmed(m.turnover24, 4)}",` +
      `"vol24h":"${q(m.vol24)}","ts":"${this.ts}"}]}`
    );
  }
}

/** candle{bar}: `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`, confirm "1" once the bar is over. */
class CandleTape implements Tape {
  private readonly candle: Candle;

  constructor(
    private readonly head: string,
    market: Market,
    bar: Interval,
  ) {
    this.candle = new Candle(market, bar);
  }

  advance(now: number): void {
    this.candle.advance(now);
  }

  frame(): string {
    const c = this.candle;
    const p = (n: number): string => trimmed(n, c.market.priceDp);
    const turnover = trimmed(c.turnover, 4);
    return (
      `${this.head},"data":[["${c.start}","${p(c.open)}","${p(c.high)}","${p(c.low)}","${p(c.close)}",` +
      `"${trimmed(c.volume, c.market.qtyDp)}","${turnover}","${turnover}","${c.closed ? 1 : 0}"]]}`
    );
  }
}
