import type { VenueName } from '../venues/types.js';
import { sendJson } from './rest.js';
import type { RouteHandler } from './types.js';

/** A listed symbol as the simulator's exchangeInfo describes it. */
export interface SimInstrument {
  symbol: string;
  status: string;
  quoteAsset: string;
}

/**
 * The simulator's instrument list behind exchangeInfo (spot `/api/v3/exchangeInfo`, USD-M
 * `/fapi/v1/exchangeInfo`, COIN-M `/dapi/v1/exchangeInfo`), in each venue's shape: spot symbols with
 * `permissionSets`, USD-M with `contractType` and `status`, COIN-M with `contractType` and
 * `contractStatus`. Listings and delistings change it at runtime (list(), delist(), or
 * `POST /_sim/list?symbol=` and `/_sim/delist?symbol=`). The streams of any well-formed symbol are
 * served, listed or not, as Binance serves a delisted symbol's streams: silent once trading ends.
 */
export class InstrumentTable {
  private readonly table = new Map<string, SimInstrument>();

  constructor(
    private readonly venue: VenueName,
    extra: number,
  ) {
    const coinm = venue === 'binance-coinm';
    const base = coinm
      ? ['BTCUSD_PERP', 'ETHUSD_PERP', 'SOLUSD_PERP', 'BNBUSD_PERP', 'XRPUSD_PERP', 'DOGEUSD_PERP']
      : ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT', 'DOGEUSDT'];
    for (const s of base) this.list(s);
    if (!coinm) {
      // A pair in another quote asset and one not trading, for the filters.
      this.list('ETHBTC', { quoteAsset: 'BTC' });
      this.list('BNBBTC', { quoteAsset: 'BTC' });
      this.list('LUNAUSDT', { status: 'BREAK' });
    }
    for (let i = 1; i <= extra; i++) {
      const n = String(i).padStart(4, '0');
      this.list(coinm ? `T${n}USD_PERP` : `T${n}USDT`);
    }
  }

  /** List a symbol (or change its status / quote asset). */
  list(symbol: string, opts: { status?: string; quoteAsset?: string } = {}): void {
    const quote = this.venue === 'binance-coinm' ? 'USD' : /(USDT|BTC|USDC|FDUSD)$/.exec(symbol)?.[1] ?? 'USDT';
    this.table.set(symbol, { symbol, status: opts.status ?? 'TRADING', quoteAsset: opts.quoteAsset ?? quote });
  }

  /** Delist a symbol: gone from exchangeInfo. False when it was not listed. */
  delist(symbol: string): boolean {
    return this.table.delete(symbol);
  }

  symbols(): string[] {
    return [...this.table.keys()];
  }

  /** exchangeInfo's body, in the venue's shape (only the fields feedkeeper reads, and a few more). */
  body(now: number): string {
    const symbols = [...this.table.values()].map((i) => {
      const baseAsset = i.symbol.replace(/_.*$/, '').slice(0, -i.quoteAsset.length) || i.symbol;
      if (this.venue === 'binance-spot') {
        return { symbol: i.symbol, status: i.status, baseAsset, quoteAsset: i.quoteAsset, permissions: [], permissionSets: [['SPOT', 'MARGIN']] };
      }
      if (this.venue === 'binance-usdm') {
        return { symbol: i.symbol, pair: i.symbol, contractType: 'PERPETUAL', status: i.status, baseAsset, quoteAsset: i.quoteAsset, marginAsset: i.quoteAsset };
      }
      return { symbol: i.symbol, pair: i.symbol.replace(/_.*$/, ''), contractType: 'PERPETUAL', contractStatus: i.status, baseAsset, quoteAsset: i.quoteAsset, marginAsset: baseAsset };
    });
    return JSON.stringify({ timezone: 'UTC', serverTime: now, rateLimits: [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 }], symbols });
  }

  /** The REST routes: exchangeInfo, and the listing controls. */
  routes(now: () => number): Array<[method: string, pathname: string, handler: RouteHandler]> {
    const path = this.venue === 'binance-usdm' ? '/fapi/v1/exchangeInfo' : this.venue === 'binance-coinm' ? '/dapi/v1/exchangeInfo' : '/api/v3/exchangeInfo';
    const control = (fn: (symbol: string, url: URL) => boolean): RouteHandler => (_req, res, url) => {
      const symbol = url.searchParams.get('symbol');
      if (symbol === null || symbol === '') return sendJson(res, 400, '{"error":"symbol= is required"}');
      sendJson(res, 200, JSON.stringify({ ok: fn(symbol, url) }));
    };
    return [
      ['GET', path, (_req, res) => sendJson(res, 200, this.body(now()))],
      ['POST', '/_sim/list', control((s, url) => (this.list(s, { status: url.searchParams.get('status') ?? undefined }), true))],
      ['POST', '/_sim/delist', control((s) => this.delist(s))],
    ];
  }
}
