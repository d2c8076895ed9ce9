import type { Tape } from './feed.js';
import { ASK, BID, Book, Candle, Market, randInt, trimmed } from './market.js';

/**
 * Coinbase Advanced Trade pushes, key for key in the order of the documented examples
 * (test/fixtures/coinbase: market_trades, l2_data, heartbeats; ticker and candles from the channels
 * page). Every message carries `"sequence_num":0` here: the dialect numbers each connection's
 * messages as it writes them (coinbase.ts), since the counter is per connection.
 */

export const COINBASE_PATH = '/';
export const COINBASE_PRODUCTS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD', 'DOGE-USD', 'LTC-USD', 'BTC-USDC', 'ETH-EUR'];
export const COINBASE_CHANNELS = ['market_trades', 'level2', 'ticker', 'candles'];
/** The placeholder every rendered message carries, replaced per connection. */
export const SEQ_PLACEHOLDER = '"sequence_num":0,';

/** RFC 3339 with nanoseconds, as Coinbase writes `timestamp` (`2023-02-09T20:19:35.39625135Z`). */
export function isoNs(ms: number): string {
  return new Date(ms).toISOString().replace('Z', `${String(randInt(0, 999_999)).padStart(6, '0')}Z`);
}

export function head(channel: string, now: number): string {
  return `{"channel":"${channel}","client_id":"","timestamp":"${isoNs(now)}",${SEQ_PLACEHOLDER}"events":[`;
}

export function newCoinbaseTape(stream: string, products: ReadonlySet<string>, snapshotLevels: number): Tape | null {
  const colon = stream.lastIndexOf(':');
  const channel = stream.slice(0, Math.max(0, colon));
  const product = stream.slice(colon + 1);
  if (colon < 0 || !products.has(product)) return null;
  const market = new Market(product.split('-')[0]!);
  switch (channel) {
    case 'market_trades':
      return new TradesTape(product, market);
    case 'level2':
      return new Level2Tape(product, market, snapshotLevels);
    case 'ticker':
      return new TickerTape(product, market);
    case 'candles':
      return new CandlesTape(product, market);
  }
  return null;
}

/** market_trades: trades batched; a subscriber's first push is a `snapshot`. */
class TradesTape implements Tape {
  private tradeId = randInt(1e8, 9e8);
  private trades: string[] = [];
  private at = 0;

  constructor(
    private readonly product: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.at = now;
    this.trades = [];
    for (let k = randInt(1, 3); k > 0; k--) {
      const qty = this.market.trade();
      const m = this.market;
      this.trades.push(
        `{"trade_id":"${++this.tradeId}","product_id":"${this.product}","price":"${trimmed(m.price, m.priceDp)}","size":"${trimmed(qty, m.qtyDp)}",` +
          `"side":"${m.direction < 0 ? 'SELL' : 'BUY'}","time":"${new Date(now).toISOString()}"}`,
      );
    }
  }

  frame(): string {
    return this.push('update');
  }

  firstFrame(): string {
    return this.push('snapshot');
  }

  private push(type: string): string {
    return `${head('market_trades', this.at)}{"type":"${type}","trades":[${this.trades.join(',')}]}]}`;
  }
}

/**
 * level2 (frames on `l2_data`): a subscriber's first push is the whole book (`snapshot`,
 * `snapshotLevels` a side: the BTC-USD book runs to megabytes, facts sheet [I-C1]), then `update`s
 * with absolute quantities, "0" removing the level.
 */
class Level2Tape implements Tape {
  private readonly book: Book;
  private at = 0;

  constructor(
    private readonly product: string,
    market: Market,
    private readonly snapshotLevels: number,
  ) {
    this.book = new Book(market, 100);
  }

  advance(now: number): void {
    this.at = now;
    this.book.step();
  }

  frame(): string {
    const t = new Date(this.at).toISOString();
    const m = this.book.market;
    const level = (side: string) => (p: number, s: number) =>
      `{"side":"${side}","event_time":"${t}","price_level":"${trimmed(p, m.priceDp)}","new_quantity":"${trimmed(s, m.qtyDp)}"}`;
    const parts = [this.book.changes(BID, level('bid')), this.book.changes(ASK, level('offer'))].filter((x) => x !== '');
    return `${head('l2_data', this.at)}{"type":"update","product_id":"${this.product}","updates":[${parts.join(',')}]}]}`;
  }

  firstFrame(): string {
    const m = this.book.market;
    const parts: string[] = [];
    const tick = m.tick;
    for (const [side, sign] of [['bid', -1], ['offer', 1]] as const) {
      for (let i = 0; i < this.snapshotLevels; i++) {
        const p = trimmed(Math.max(tick, m.price + sign * (i + 1) * tick), m.priceDp);
        parts.push(`{"side":"${side}","event_time":"1970-01-01T00:00:00Z","price_level":"${p}","new_quantity":"${trimmed(m.qty(), m.qtyDp)}"}`);
      }
    }
    return `${head('l2_data', this.at)}{"type":"snapshot","product_id":"${this.product}","updates":[${parts.join(',')}]}]}`;
  }
}

/** ticker: the product's ticker after each trade. */
class TickerTape implements Tape {
  private at = 0;

  constructor(
    private readonly product: string,
    private readonly market: Market,
  ) {}

  advance(now: number): void {
    this.at = now;
    this.market.trade();
  }

  frame(): string {
    return this.push('update');
  }

  firstFrame(): string {
    return this.push('snapshot');
  }

  private push(type: string): string {
    const m = this.market;
    const p = (n: number): string => trimmed(n, m.priceDp);
    const chg = (((m.price - m.open24) / m.open24) * 100).toFixed(8);
    return (
      `${head('ticker', this.at)}{"type":"${type}","tickers":[{"type":"ticker","product_id":"${this.product}","price":"${p(m.price)}",` +
      `"volume_24_h":"${trimmed(m.vol24, m.qtyDp)}","low_24_h":"${p(m.low24)}","high_24_h":"${p(m.high24)}","low_52_w":"${p(m.low24)}",` +
      `"high_52_w":"${p(m.high24)}","price_percent_chg_24_h":"${chg}","best_bid":"${p(m.price)}","best_bid_quantity":"${trimmed(m.qty(), m.qtyDp)}",` +
      `"best_ask":"${p(m.price + m.tick)}","best_ask_quantity":"${trimmed(m.qty(), m.qtyDp)}"}]}]}`
    );
  }
}

/** candles: 5-minute candles, `start` in epoch seconds as a string. */
class CandlesTape implements Tape {
  private readonly candle: Candle;
  private at = 0;

  constructor(
    private readonly product: string,
    market: Market,
  ) {
    this.candle = new Candle(market, { ms: 300_000, anchorMs: 0, offsetMs: 0 });
  }

  advance(now: number): void {
    this.at = now;
    this.candle.advance(now);
  }

  frame(): string {
    return this.push('update');
  }

  firstFrame(): string {
    return this.push('snapshot');
  }

  private push(type: string): string {
    const c = this.candle;
    const p = (n: number): string => trimmed(n, c.market.priceDp);
    return (
      `${head('candles', this.at)}{"type":"${type}","candles":[{"start":"${Math.floor(c.start / 1000)}","high":"${p(c.high)}","low":"${p(c.low)}",` +
      `"open":"${p(c.open)}","close":"${p(c.close)}","volume":"${trimmed(c.volume, c.market.qtyDp)}","product_id":"${this.product}"}]}]}`
    );
  }
}
