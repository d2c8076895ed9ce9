import type { Tape } from './feed.js';
import { ASK, BID, Book, Market, randInt, trimmed } from './market.js';

/**
 * Gate.io spot v4 pushes, key for key in the order of Gate's documented examples
 * (test/fixtures/gate/docs-examples.ndjson: spot.trades, spot.order_book_update; spot.book_ticker
 * from the docs' push example). `time` in seconds and `time_ms` lead, `result` last.
 */

export const GATE_PATH = '/ws/v4/';

export const GATE_PAIRS = ['BTC_USDT', 'ETH_USDT', 'SOL_USDT', 'XRP_USDT', 'DOGE_USDT', 'GT_USDT', 'LTC_USDT', 'TON_USDT', 'BTC_USDC'];

/** Config type → channel; the channels this dialect serves. */
export const GATE_SIM_CHANNELS: Readonly<Record<string, string>> = {
  'spot.trades': 'trades',
  'spot.order_book_update': 'order_book_update',
  'spot.book_ticker': 'book_ticker',
};

/** The market's "all markets" trade counter (`id`), shared by every pair as on Gate. */
let globalTradeId = randInt(3e8, 4e8);

/** Server time, for the `time`/`time_ms` every push starts with. */
export type ServerNow = () => number;

function head(now: number, channel: string): string {
  return `{"time":${Math.floor(now / 1000)},"time_ms":${now},"channel":"${channel}","event":"update","result":`;
}

export function newGateTape(stream: string, pairs: ReadonlySet<string>, serverNow: ServerNow, duplicateIdMarket: boolean): Tape | null {
  const colon = stream.lastIndexOf(':');
  const type = stream.slice(0, Math.max(0, colon));
  const pair = stream.slice(colon + 1);
  if (colon < 0 || !pairs.has(pair)) return null;
  const market = new Market(pair.split('_')[0]!);
  switch (type) {
    case 'trades':
      return new TradeTape(pair, market, serverNow, duplicateIdMarket);
    case 'order_book_update':
      return new BookTape(pair, market, serverNow);
    case 'book_ticker':
      return new BookTickerTape(pair, market, serverNow);
  }
  return null;
}

/**
 * spot.trades: one push per taker order, covering `range` "start-end" of the pair's contiguous
 * `id_market` (facts sheet, Gate "trades"); every id_market is reported. `duplicateIdMarket`: the
 * push repeats `id_market` at the end with another value, as Gate's own docs example does.
 */
class TradeTape implements Tape {
  private idMarket = randInt(1e6, 9e6);
  private first = 0;
  private qty = 0;
  private at = 0;
  private id = 0;

  constructor(
    private readonly pair: string,
    private readonly market: Market,
    private readonly serverNow: ServerNow,
    private readonly duplicateIdMarket: boolean,
  ) {}

  advance(_now: number, maxIds: number, id: (n: number) => void): void {
    this.at = this.serverNow();
    const count = Math.min(randInt(1, 3), maxIds);
    this.first = this.idMarket + 1;
    this.qty = 0;
    for (let k = 0; k < count; k++) {
      id(++this.idMarket);
      this.qty += this.market.trade();
    }
    globalTradeId += randInt(count, count + 40);
    this.id = globalTradeId;
  }

  frame(): string {
    const m = this.market;
    const t = this.at;
    const dup = this.duplicateIdMarket ? `,"id_market":${this.idMarket + randInt(1e6, 3e6)}` : '';
    return (
      `${head(t, 'spot.trades')}{"id":${this.id},"id_market":${this.first},"create_time":${Math.floor(t / 1000)},` +
      `"create_time_ms":"${t}.${randInt(1000, 9999)}","side":"${m.direction < 0 ? 'sell' : 'buy'}","currency_pair":"${this.pair}",` +
      `"amount":"${this.qty.toFixed(10)}","price":"${m.price.toFixed(10)}","range":"${this.first}-${this.idMarket}"${dup}}}`
    );
  }
}

/**
 * spot.order_book_update (100 ms, 100 levels): `U`..`u` are the update IDs the push covers, the
 * next `U` is this `u` + 1 (facts sheet, Gate "book v1"). No snapshot on subscribe (a client starts
 * from REST); every push is reported by its `u`.
 */
class BookTape implements Tape {
  private readonly book: Book;
  private u = randInt(4e7, 5e7);
  private first = 0;
  private at = 0;

  constructor(
    private readonly pair: string,
    market: Market,
    private readonly serverNow: ServerNow,
  ) {
    this.book = new Book(market, 100);
  }

  advance(_now: number, maxIds: number, id: (n: number) => void): void {
    this.at = this.serverNow();
    this.first = this.u + 1;
    this.u += Math.min(randInt(1, 5), Math.max(1, maxIds));
    this.book.step();
    id(this.u);
  }

  frame(): string {
    const m = this.book.market;
    const level = (p: number, s: number): string => `["${trimmed(p, m.priceDp)}","${trimmed(s, m.qtyDp)}"]`;
    const t = this.at;
    return (
      `${head(t, 'spot.order_book_update')}{"t":${t},"e":"depthUpdate","E":${Math.floor(t / 1000)},"s":"${this.pair}",` +
      `"U":${this.first},"u":${this.u},"b":[${this.book.changes(BID, level)}],"a":[${this.book.changes(ASK, level)}]}}`
    );
  }
}

/** spot.book_ticker: the best bid and ask, `u` the book's update ID then (it jumps). */
class BookTickerTape implements Tape {
  private u = randInt(4e7, 5e7);
  private at = 0;

  constructor(
    private readonly pair: string,
    private readonly market: Market,
    private readonly serverNow: ServerNow,
  ) {}

  advance(): void {
    this.at = this.serverNow();
    this.u += randInt(1, 20);
    this.market.trade();
  }

  frame(): string {
    const m = this.market;
    const t = this.at;
    return (
      `${head(t, 'spot.book_ticker')}{"t":${t},"u":${this.u},"s":"${this.pair}","b":"${trimmed(m.price, m.priceDp)}",` +
      `"B":"${trimmed(m.qty(), m.qtyDp)}","a":"${trimmed(m.price + m.tick, m.priceDp)}","A":"${trimmed(m.qty(), m.qtyDp)}"}}`
    );
  }
}
