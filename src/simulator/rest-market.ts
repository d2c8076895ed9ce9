import type { VenueName } from '../venues/index.js';
import { aggTradeJson, historicalTradeJson, type TradeHistory } from './history.js';
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
}

export interface MarketRoute {
  method: string;
  path: string;
  weight: number;
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
  return [
    { method: 'GET', path: `${api}/aggTrades`, weight: spot ? 4 : 20, handler: serve('aggTrade') },
    { method: 'GET', path: `${api}/historicalTrades`, weight: spot ? 25 : 20, handler: serve('trade') },
  ];
}
