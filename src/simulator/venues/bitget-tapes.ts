import { crc32 } from 'node:zlib';
import type { Tape } from './feed.js';
import type { BitgetBooksStyle as BooksStyle } from './options.js';
import { ASK, BID, Book, Candle, Market, WEEK_ANCHOR, fixed, randInt, type Interval } from './market.js';

/**
 * Bitget v2 public frames, key for key in the order of the documented examples
 * (../shared/fixtures/bitget/docs-examples.ndjson: trade, books5 snapshot, subscribe ack; ticker and
 * candles from the channel pages' push examples): `{"action","arg":{"instType","channel","instId"},"data":[…],"ts"}`.
 * Prices and sizes are strings with the instrument's fixed decimals ("26275.0", "0.0500"), which is
 * what the checksum is computed over.
 */

export const BITGET_PATH = '/v2/ws/public';
export const BITGET_SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'DOGEUSDT', 'LTCUSDT', 'TONUSDT', 'BNBUSDT', 'ADAUSDT', 'BTCUSDC'];

const HOUR = 3_600_000;
const HK = 8 * HOUR;
const CANDLES: Record<string, Interval> = {
  '1M': { months: 1, offsetMs: HK },
  '1Mutc': { months: 1, offsetMs: 0 },
  '1W': { ms: 168 * HOUR, anchorMs: WEEK_ANCHOR, offsetMs: HK },
  '1Wutc': { ms: 168 * HOUR, anchorMs: WEEK_ANCHOR, offsetMs: 0 },
};
for (const m of [1, 5, 15, 30]) CANDLES[`${m}m`] = { ms: m * 60_000, anchorMs: 0, offsetMs: 0 };
for (const h of [1, 4]) CANDLES[`${h}H`] = { ms: h * HOUR, anchorMs: 0, offsetMs: 0 };
for (const [bar, ms] of [['6H', 6 * HOUR], ['12H', 12 * HOUR], ['1D', 24 * HOUR], ['3D', 72 * HOUR]] as const) {
  CANDLES[bar] = { ms, anchorMs: 0, offsetMs: HK };
  CANDLES[`${bar}utc`] = { ms, anchorMs: 0, offsetMs: 0 };
}

export function isBitgetChannel(channel: string): boolean {
  return ['trade', 'books', 'books1', 'books5', 'books15', 'ticker'].includes(channel) || (channel.startsWith('candle') && Object.hasOwn(CANDLES, channel.slice(6)));
}

export function newBitgetTape(stream: string, instType: string, symbols: ReadonlySet<string>, style: BooksStyle): Tape | null {
  const colon = stream.lastIndexOf(':');
  if (colon < 0) return null;
  const channel = stream.slice(0, colon);
  const instId = stream.slice(colon + 1);
  if (!isBitgetChannel(channel) || !symbols.has(instId)) return null;
  const market = new Market(instId.replace(/USDT$|USDC$/, ''));
  const arg = `"arg":{"instType":"${instType}","channel":"${channel}","instId":"${instId}"}`;
  switch (channel) {
    case 'trade':
      return new TradeTape(arg, market);
    case 'books':
      return new BooksTape(arg, market, style);
    case 'books1':
    case 'books5':
    case 'books15':
      return new TopTape(arg, market, Number(channel.slice(5)));
    case 'ticker':
      return new TickerTape(arg, instId, market);
    default:
      return new CandleTape(arg, market, CANDLES[channel.slice(6)]!);
  }
}

/** trade: the first push a `snapshot` of the recent trades, then an `update` per fill. */
class TradeTape implements Tape {
  private tradeId = BigInt(randInt(1e9, 2e9)) * 1_000_000_000n;
  private readonly recent: string[] = [];
  private ts = 0;

  constructor(
    private readonly arg: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.ts = now;
    this.tradeId += BigInt(randInt(1, 1000));
    const m = this.market;
    const qty = m.trade();
    this.recent.unshift(`{"ts":"${now}","price":"${fixed(m.price, m.priceDp)}","size":"${fixed(qty, m.qtyDp)}","side":"${m.direction < 0 ? 'sell' : 'buy'}","tradeId":"${this.tradeId}"}`);
    if (this.recent.length > 50) this.recent.pop();
  }

  frame(): string {
    return `{"action":"update",${this.arg},"data":[${this.recent[0]}],"ts":${this.ts}}`;
  }

  /** "first push snapshot (recent trades)" [G4], newest first. */
  firstFrame(): string {
    return `{"action":"snapshot",${this.arg},"data":[${this.recent.join(',')}],"ts":${this.ts}}`;
  }
}

/**
 * books: a subscriber's first push is a snapshot of the whole book, then updates of what changed.
 * Each push reports its `seq` (its last 15 digits when bigSeq, as the daemon reads it): seq steps by
 * 1 without pseq (the documented "incrementing"), by 1 to 5 with it. corrupt(): the next push carries
 * a wrong checksum.
 */
export class BooksTape implements Tape {
  readonly firstFrame: () => string;
  private readonly book: Book;
  private seq: bigint;
  private pseq = 0n;
  private ts = 0;
  private corruptNext = false;

  constructor(
    private readonly arg: string,
    market: Market,
    private readonly style: BooksStyle,
  ) {
    this.book = new Book(market, 100);
    this.seq = style.bigSeq ? 1_304_314_508_780_744_705n : BigInt(randInt(1e6, 9e6));
    this.firstFrame = () => this.push('snapshot', this.levels(ASK, false), this.levels(BID, false), 0n);
  }

  corrupt(): void {
    this.corruptNext = true;
  }

  advance(now: number, _maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.pseq = this.seq;
    this.seq += BigInt(this.style.pseq ? randInt(1, 5) : 1);
    this.book.step();
    id(Number(this.seq % 1_000_000_000_000_000n));
  }

  frame(): string {
    const f = this.push('update', this.levels(ASK, true), this.levels(BID, true), this.pseq);
    this.corruptNext = false;
    return f;
  }

  private level(side: number, i: number): string {
    const m = this.book.market;
    return `["${fixed(this.book.price(side, i), m.priceDp)}","${fixed(this.book.sizes[side][i]!, m.qtyDp)}"]`;
  }

  private levels(side: number, changedOnly: boolean): string {
    const out: string[] = [];
    if (changedOnly) {
      for (const at of this.book.changed) if ((at < this.book.levels ? BID : ASK) === side) out.push(this.level(side, at % this.book.levels));
    } else {
      for (let i = 0; i < this.book.levels; i++) if (this.book.sizes[side][i]! > 0) out.push(this.level(side, i));
    }
    return out.join(',');
  }

  /** Bitget's CRC32 over the top 25 levels, bid:ask interleaved, the strings as sent (facts sheet, Bitget "checksum"). */
  private checksum(): number {
    const m = this.book.market;
    const top = (side: number): string[][] => {
      const out: string[][] = [];
      for (let i = 0; i < this.book.levels && out.length < 25; i++) {
        const s = this.book.sizes[side][i]!;
        if (s > 0) out.push([fixed(this.book.price(side, i), m.priceDp), fixed(s, m.qtyDp)]);
      }
      return out;
    };
    const bids = top(BID);
    const asks = top(ASK);
    const parts: string[] = [];
    for (let i = 0; i < 25; i++) {
      if (bids[i] !== undefined) parts.push(...bids[i]!);
      if (asks[i] !== undefined) parts.push(...asks[i]!);
    }
    const c = crc32(Buffer.from(parts.join(':'), 'latin1')) | 0;
    return this.corruptNext ? c ^ 0x5a5a : c;
  }

  private push(action: string, asks: string, bids: string, pseq: bigint): string {
    const { checksum, pseq: withPseq } = this.style;
    const sum = checksum === 'absent' ? '' : `"checksum":${checksum === 'zero' ? 0 : this.checksum()},`;
    const prev = withPseq ? `"pseq":${pseq},` : '';
    return `{"action":"${action}",${this.arg},"data":[{"asks":[${asks}],"bids":[${bids}],${sum}${prev}"seq":${this.seq},"ts":"${this.ts}"}],"ts":${this.ts}}`;
  }
}

/** books1/5/15: the top of the book, a snapshot every push, checksum 0 as on one page copy. */
class TopTape implements Tape {
  private readonly book: Book;
  private seq = randInt(1e6, 9e6);
  private ts = 0;

  constructor(
    private readonly arg: string,
    market: Market,
    levels: number,
  ) {
    this.book = new Book(market, levels);
  }

  advance(now: number): void {
    this.ts = now;
    this.seq += randInt(1, 5);
    this.book.step(0);
  }

  frame(): string {
    const m = this.book.market;
    const side = (s: number): string => this.book.side(s, (p, q) => `["${fixed(p, m.priceDp)}","${fixed(q, m.qtyDp)}"]`);
    return `{"action":"snapshot",${this.arg},"data":[{"asks":[${side(ASK)}],"bids":[${side(BID)}],"checksum":0,"seq":${this.seq},"ts":"${this.ts}"}],"ts":${this.ts}}`;
  }
}

/** ticker: the v2 spot ticker's fields, all strings. */
class TickerTape implements Tape {
  private ts = 0;

  constructor(
    private readonly arg: string,
    private readonly instId: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.ts = now;
    this.market.trade();
  }

  frame(): string {
    const m = this.market;
    const p = (n: number): string => fixed(n, m.priceDp);
    const q = (n: number): string => fixed(n, m.qtyDp);
    return (
      `{"action":"snapshot",${this.arg},"data":[{"instId":"${this.instId}","lastPr":"${p(m.price)}","open24h":"${p(m.open24)}",` +
      `"high24h":"${p(m.high24)}","low24h":"${p(m.low24)}","change24h":"${((m.price - m.open24) / m.open24).toFixed(5)}",` +
      `"bidPr":"${p(m.price)}","askPr":"${p(m.price + m.tick)}","bidSz":"${q(m.qty())}","askSz":"${q(m.qty())}",` +
      `"baseVolume":"${q(m.vol24)}","quoteVolume":"${fixed(m.turnover24, 2)}","openUtc":"${p(m.open24)}","changeUtc24h":"0",` +
      `"ts":"${this.ts}"}],"ts":${this.ts}}`
    );
  }
}

/** candle{bar}: `[start, o, h, l, c, baseVol, quoteVol, usdtVol]`, all strings. */
class CandleTape implements Tape {
  private readonly candle: Candle;
  private ts = 0;

  constructor(
    private readonly arg: string,
    market: Market,
    bar: Interval,
  ) {
    this.candle = new Candle(market, bar);
  }

  advance(now: number): void {
    this.ts = now;
    this.candle.advance(now);
  }

  frame(): string {
    const c = this.candle;
    const p = (n: number): string => fixed(n, c.market.priceDp);
    const t = fixed(c.turnover, 4);
    return `{"action":"update",${this.arg},"data":[["${c.start}","${p(c.open)}","${p(c.high)}","${p(c.low)}","${p(c.close)}","${fixed(c.volume, c.market.qtyDp)}","${t}","${t}"]],"ts":${this.ts}}`;
  }
}
