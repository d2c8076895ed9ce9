import type { Tape } from './feed.js';
import { ASK, BID, Book, Market, randInt, trimmed } from './market.js';
import { systemClock } from '../../clock.js';

/**
 * KuCoin spot (classic) public frames, key for key in the order of the documented examples
 * (../shared/fixtures/kucoin/docs-examples.ndjson: match, level2; ticker and snapshot from the docs
 * pages' examples, test/fixtures/kucoin/README.md). Prices and sizes are strings; level2's
 * sequenceStart/sequenceEnd and every `time` but match's (ns, a string) are numbers.
 */

export const KUCOIN_SYMBOLS = ['BTC-USDT', 'ETH-USDT', 'SOL-USDT', 'XRP-USDT', 'DOGE-USDT', 'LTC-USDT', 'TON-USDT', 'ETH-BTC', 'BTC-USDC', 'ADA-USDT'];

/** The one WebSocket path, the bullet reply's endpoint (`wss://ws-api-spot.kucoin.com/`). */
export const KUCOIN_PATH = '/';

export const KUCOIN_TYPES = ['match', 'level2', 'ticker', 'snapshot'] as const;

/** `level2:BTC-USDT` → its parts; null when KuCoin has no such stream here. */
function parseStream(stream: string, symbols: ReadonlySet<string>): { type: string; symbol: string } | null {
  const colon = stream.indexOf(':');
  if (colon < 0) return null;
  const type = stream.slice(0, colon);
  const symbol = stream.slice(colon + 1);
  if (!(KUCOIN_TYPES as readonly string[]).includes(type) || !symbols.has(symbol)) return null;
  return { type, symbol };
}

export function newKucoinTape(stream: string, symbols: ReadonlySet<string>): Tape | null {
  const p = parseStream(stream, symbols);
  if (p === null) return null;
  const market = new Market(p.symbol.split('-')[0]!);
  switch (p.type) {
    case 'match':
      return new MatchTape(p.symbol, market);
    case 'level2':
      return new Level2Tape(p.symbol, market);
    case 'ticker':
      return new TickerTape(p.symbol, market);
    default:
      return new SnapshotTape(p.symbol, market);
  }
}

const hex24 = (): string => randInt(0, 0xffffff).toString(16).padStart(6, '0') + systemClock.now().toString(16).padStart(12, '0').slice(-12) + randInt(0, 0xffffff).toString(16).padStart(6, '0');

/**
 * match (`trade.l3match`): one fill per push. `sequence` and `tradeId` are 17-digit strings (over
 * 2^53, as in the docs example) and `time` is ns: nothing here is contiguous, so no IDs are reported.
 */
class MatchTape implements Tape {
  /** Above 2^53 like the docs' 11067996711960577: kept as a BigInt. */
  private seq = 11_067_996_711_960_577n + BigInt(randInt(0, 1e9));
  private ns = '';
  private qty = 0;
  private lastMs = 0;
  private inMs = 0;

  constructor(
    private readonly symbol: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.seq += BigInt(randInt(1, 50));
    this.qty = this.market.trade();
    this.inMs = now === this.lastMs ? this.inMs + 1 : 0;
    this.lastMs = now;
    this.ns = `${now}${String(this.inMs).padStart(6, '0')}`;
  }

  frame(): string {
    const m = this.market;
    return (
      `{"topic":"/market/match:${this.symbol}","type":"message","subject":"trade.l3match","data":{"makerOrderId":"${hex24()}",` +
      `"price":"${trimmed(m.price, m.priceDp)}","sequence":"${this.seq}","side":"${m.direction < 0 ? 'sell' : 'buy'}",` +
      `"size":"${trimmed(this.qty, m.qtyDp)}","symbol":"${this.symbol}","takerOrderId":"${hex24()}","time":"${this.ns}",` +
      `"tradeId":"${this.seq}","type":"match"}}`
    );
  }
}

/**
 * level2 (`trade.l2update`): each push carries one to three changes, each with its own sequence;
 * the push covers [sequenceStart, sequenceEnd] and the next starts at sequenceEnd + 1 (facts sheet,
 * KuCoin "book"). Each push reports its sequenceEnd: skip(n) swallows n pushes.
 */
export class Level2Tape implements Tape {
  private readonly book: Book;
  private seq = randInt(1e10, 2e10);
  private start = 0;
  private asks = '';
  private bids = '';
  private ts = 0;

  constructor(
    private readonly symbol: string,
    market: Market,
  ) {
    this.book = new Book(market, 50);
  }

  advance(now: number, _maxIds: number, id: (n: number) => void): void {
    this.ts = now;
    this.book.step();
    const m = this.book.market;
    const asks: string[] = [];
    const bids: string[] = [];
    this.start = this.seq + 1;
    for (const at of this.book.changed) {
      const side = at < this.book.levels ? BID : ASK;
      const i = at % this.book.levels;
      const seq = ++this.seq;
      const level = `["${trimmed(this.book.price(side, i), m.priceDp)}","${trimmed(this.book.sizes[side][i]!, m.qtyDp)}","${seq}"]`;
      (side === ASK ? asks : bids).push(level);
    }
    this.asks = asks.join(',');
    this.bids = bids.join(',');
    // One ID per push, its sequenceEnd (as Binance depth reports `u`): the push covers
    // (previous end, end], and the rehearsal invariant checks missed ranges on push boundaries.
    id(this.seq);
  }

  frame(): string {
    return (
      `{"topic":"/market/level2:${this.symbol}","type":"message","subject":"trade.l2update","data":{"changes":{"asks":[${this.asks}],` +
      `"bids":[${this.bids}]},"sequenceEnd":${this.seq},"sequenceStart":${this.start},"symbol":"${this.symbol}","time":${this.ts}}}`
    );
  }
}

/** ticker (`trade.ticker`): best bid and ask with the last trade; `type` comes before `topic` here. */
class TickerTape implements Tape {
  private seq = randInt(1e12, 2e12);
  private ts = 0;

  constructor(
    private readonly symbol: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.ts = now;
    this.seq += randInt(1, 20);
    this.market.trade();
  }

  frame(): string {
    const m = this.market;
    const p = (n: number): string => trimmed(n, m.priceDp);
    const q = (n: number): string => trimmed(n, m.qtyDp);
    return (
      `{"type":"message","topic":"/market/ticker:${this.symbol}","subject":"trade.ticker","data":{"sequence":"${this.seq}",` +
      `"price":"${p(m.price)}","size":"${q(m.lastQty)}","bestAsk":"${p(m.price + m.tick)}","bestAskSize":"${q(m.qty())}",` +
      `"bestBid":"${p(m.price)}","bestBidSize":"${q(m.qty())}","time":${this.ts}}}`
    );
  }
}

/** snapshot (`trade.snapshot`): the 24 h market figures, `datetime` in ms inside `data.data`. */
class SnapshotTape implements Tape {
  private seq = randInt(1e12, 2e12);
  private ts = 0;

  constructor(
    private readonly symbol: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.ts = now;
    this.seq += randInt(1, 20);
    this.market.trade();
  }

  frame(): string {
    const m = this.market;
    const p = (n: number): string => trimmed(n, m.priceDp);
    const [base, quote] = this.symbol.split('-');
    const change = m.price - m.open24;
    return (
      `{"topic":"/market/snapshot:${this.symbol}","type":"message","subject":"trade.snapshot","data":{"sequence":"${this.seq}",` +
      `"data":{"averagePrice":${p(m.open24)},"baseCurrency":"${base}","board":1,"buy":${p(m.price)},"changePrice":${p(change)},` +
      `"changeRate":${(change / m.open24).toFixed(4)},"close":${p(m.price)},"datetime":${this.ts},"high":${p(m.high24)},` +
      `"lastTradedPrice":${p(m.price)},"low":${p(m.low24)},"makerCoefficient":1,"makerFeeRate":0.001,"marginTrade":true,"mark":0,` +
      `"market":"USDS","markets":["USDS"],"open":${p(m.open24)},"quoteCurrency":"${quote}","sell":${p(m.price + m.tick)},"sort":100,` +
      `"symbol":"${this.symbol}","symbolCode":"${this.symbol}","takerCoefficient":1,"takerFeeRate":0.001,"trading":true,` +
      `"vol":${trimmed(m.vol24, m.qtyDp)},"volValue":${trimmed(m.turnover24, 4)}}}}`
    );
  }
}
