import type { Venue } from '../venues/types.js';

/**
 * Which REST endpoint gives back a stream's missed messages (facts sheet, "REST"): spot
 * `aggTrades` (weight 4) and `historicalTrades` (25, no key since 2023-07); USD-M/COIN-M `aggTrades`
 * (20). Futures `historicalTrades` needs a MARKET_DATA API key and is not used; other venues have no
 * ID-addressed trade history: their gaps stay as the ledger says (docs/recovery.md).
 */
export interface BackfillEndpoint {
  path: string;
  weight: number;
  /** The ID field of the REST object (`a` for aggTrades, `id` for historicalTrades). */
  idField: 'a' | 'id';
  symbol: string;
}

/** REQUEST_WEIGHT per minute per IP (facts sheet; read the live figure from exchangeInfo.rateLimits). */
export function restWeightLimit(venue: string): number {
  return venue === 'binance-spot' ? 6000 : 2400;
}

export const PAGE_LIMIT = 1000;

export function backfillEndpoint(venue: Pick<Venue, 'name' | 'typeOf'>, stream: string): BackfillEndpoint | null {
  const type = venue.typeOf(stream);
  const at = stream.indexOf('@');
  if (at <= 0) return null;
  const symbol = stream.slice(0, at).toUpperCase();
  switch (venue.name) {
    case 'binance-spot':
      if (type === 'aggTrade') return { path: '/api/v3/aggTrades', weight: 4, idField: 'a', symbol };
      if (type === 'trade') return { path: '/api/v3/historicalTrades', weight: 25, idField: 'id', symbol };
      return null;
    case 'binance-usdm':
      return type === 'aggTrade' ? { path: '/fapi/v1/aggTrades', weight: 20, idField: 'a', symbol } : null;
    case 'binance-coinm':
      return type === 'aggTrade' ? { path: '/dapi/v1/aggTrades', weight: 20, idField: 'a', symbol } : null;
    default:
      return null;
  }
}
