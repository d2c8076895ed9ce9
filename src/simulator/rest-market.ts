import type { VenueName } from '../venues/index.js';
import type { SimBook } from './book.js';
import { aggTradeJson, historicalTradeJson, type TradeHistory } from './history.js';
import type { Tape } from './payloads.js';
import { errorBody, sendJson } from './rest.js';
import type { RouteHandler } from './types.js';

/**
 * Market-data REST served from what the streams generated (src/simulator/history.ts):
 * `aggTrades` and `historicalTrades` with `symbol`, `fromId`, `limit` (≤ 1000, default 500), and
 * their request weights (facts sheet: spot aggTrades 4, historicalTrades 25; USD-M/COIN-M aggTrades
 * 20). Futures `historicalTrades` needs a MARKET_DATA API key on Binance: answered 401 without
 * `X-MBX-APIKEY`.
 */

export interface HistorySource {
  history(stream: string): { history: TradeHistory; priceDp: number } | null;
  depthBook(stream: string): { book: SimBook; tape: Tape } | null;
}

/** The diff-depth stream whose book REST depth serves: `@depth@100ms`, else `@depth`. */
export function bookOf(source: HistorySource, symbol: string): { book: SimBook; tape: Tape } | null {
  const s = symbol.toLowerCase();
  return source.depthBook(`${s}@depth@100ms`) ?? source.depthBook(`${s}@depth`);
}

/** Spot depth weight by limit (facts sheet): 5 up to 100, 25 to 500, 50 to 1000, 250 to 5000. */
export function spotDepthWeight(limit: number): number {
  return limit <= 100 ? 5 : limit <= 500 ? 25 : limit <= 1000 ? 50 : 250;
}

/** USD-M/COIN-M depth weight by limit: 2 up to 50, 5 at 100, 10 at 500, 20 at 1000. */
export function futuresDepthWeight(limit: number): number {
  return limit <= 50 ? 2 : limit <= 100 ? 5 : limit <= 500 ? 10 : 20;
}

const FUTURES_DEPTH_LIMITS = [5, 10, 20, 50, 100, 500, 1000];

export interface MarketRoute {
  method: string;
  path: string;
  weight: number | ((url: URL) => number);
  handler: RouteHandler;
}

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 500;

function parseQuery(url: URL): { symbol: string; fromId: number | null; limit: number } | string {
  const symbol = url.searchParams.get('symbol');
  if (symbol === null || symbol === '') return "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.";
  const rawLimit = url.searchParams.get('limit');
  const limit = rawLimit === null ? DEFAULT_LIMIT : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) return `Illegal characters found in parameter 'limit'; legal range is '1'..'${MAX_LIMIT}'.`;
  const rawFrom = url.searchParams.get('fromId');
  const fromId = rawFrom === null ? null : Number(rawFrom);
  if (fromId !== null && (!Number.isSafeInteger(fromId) || fromId < 0)) return "Illegal characters found in parameter 'fromId'.";
  return { symbol, fromId, limit };
}

export function marketRoutes(venue: VenueName, source: HistorySource): MarketRoute[] {
  const spot = venue === 'binance-spot';
  const api = spot ? '/api/v3' : venue === 'binance-usdm' ? '/fapi/v1' : '/dapi/v1';
  const serve =
    (type: 'aggTrade' | 'trade'): RouteHandler =>
    (req, res, url) => {
      const q = parseQuery(url);
      if (typeof q === 'string') {
        sendJson(res, 400, errorBody(-1100, q));
        return;
      }
      if (type === 'trade' && !spot && req.headers['x-mbx-apikey'] === undefined) {
        sendJson(res, 401, errorBody(-2014, 'API-key format invalid.'));
        return;
      }
      const h = source.history(`${q.symbol.toLowerCase()}@${type}`);
      if (h === null) {
        sendJson(res, 200, '[]');
        return;
      }
      const rows = h.history.from(q.fromId, q.limit);
      const body = rows.map((r) => (type === 'aggTrade' ? aggTradeJson(r, spot) : historicalTradeJson(r, h.priceDp))).join(',');
      sendJson(res, 200, `[${body}]`);
    };
  const depth: RouteHandler = (_req, res, url) => {
    const symbol = url.searchParams.get('symbol');
    if (symbol === null || symbol === '') {
      sendJson(res, 400, errorBody(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."));
      return;
    }
    const raw = url.searchParams.get('limit');
    const limit = raw === null ? (spot ? 100 : 500) : Number(raw);
    const ok = spot ? Number.isInteger(limit) && limit >= 1 && limit <= 5000 : FUTURES_DEPTH_LIMITS.includes(limit);
    if (!ok) {
      sendJson(res, 400, errorBody(-1100, `Illegal characters found in parameter 'limit'.`));
      return;
    }
    const b = bookOf(source, symbol);
    if (b === null) {
      sendJson(res, 400, errorBody(-1121, 'Invalid symbol.'));
      return;
    }
    const snap = b.book.snapshot(b.tape.seq, limit, b.tape);
    const body = spot ? JSON.stringify(snap) : JSON.stringify({ lastUpdateId: snap.lastUpdateId, E: b.tape.E, T: b.tape.T, bids: snap.bids, asks: snap.asks });
    sendJson(res, 200, body);
  };
  return [
    { method: 'GET', path: `${api}/depth`, weight: (url) => (spot ? spotDepthWeight : futuresDepthWeight)(Number(url.searchParams.get('limit') ?? (spot ? 100 : 500)) || 100), handler: depth },
    { method: 'GET', path: `${api}/aggTrades`, weight: spot ? 4 : 20, handler: serve('aggTrade') },
    { method: 'GET', path: `${api}/historicalTrades`, weight: spot ? 25 : 20, handler: serve('trade') },
  ];
}
