import type { Venue } from '../venues/index.js';

/** The USD-M stream of contract events (listings, status changes). */
export const CONTRACT_INFO = '!contractInfo';

/** A stream name the venue accepts, e.g. `btcusdt@depth@100ms`. */
export interface StreamSpec {
  readonly name: string;
  /** Upper case, as it appears in payloads (`"s":"BTCUSDT"`). */
  readonly symbol: string;
  /** The part after the first `@`, e.g. `depth@100ms`, `kline_1m`. */
  readonly type: string;
  /** The venue's family for the type: trade, aggTrade, depth, depthPartial, bookTicker, kline, ... */
  readonly family: string;
}

/** Null when the venue has no such stream. Symbols must be lower case in stream names. */
export function parseStreamName(venue: Venue, name: string): StreamSpec | null {
  // USD-M's contract events: no symbol, nothing generated; pushed on listings (instruments.ts).
  if (name === CONTRACT_INFO && venue.name === 'binance-usdm') return { name, symbol: '', type: name, family: 'contractInfo' };
  const at = name.indexOf('@');
  if (at <= 0) return null;
  const lower = name.slice(0, at);
  if (lower !== lower.toLowerCase()) return null;
  const symbol = lower.toUpperCase();
  if (!venue.isSymbol(symbol)) return null;
  const type = name.slice(at + 1);
  const st = venue.streamType(type);
  if (st === null) return null;
  return { name, symbol, type, family: st.family };
}

export type MarketPath = { combined: boolean; names: string[] };

/**
 * The market endpoints: `/stream?streams=a/b` (combined), `/ws/a/b` and `/ws` (raw). USD-M market
 * streams also answer under `/market` and `/public` (routes introduced 2026-04-23). Null: not a
 * market endpoint.
 */
export function parseMarketPath(venue: Venue, url: URL): MarketPath | null {
  let p = url.pathname;
  if (venue.name === 'binance-usdm') {
    const m = /^\/(?:market|public)(\/.*)$/.exec(p);
    if (m) p = m[1]!;
  }
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === venue.combinedPath) {
    return { combined: true, names: splitNames(url.searchParams.get('streams') ?? '') };
  }
  if (p === '/ws') return { combined: false, names: [] };
  if (p.startsWith('/ws/')) {
    let names: string[];
    try {
      names = splitNames(decodeURIComponent(p.slice(4)));
    } catch {
      return { combined: false, names: [p.slice(4)] }; // undecodable: reported as an invalid stream
    }
    return { combined: false, names };
  }
  return null;
}

function splitNames(s: string): string[] {
  return [...new Set(s.split('/').filter((n) => n !== ''))];
}

/**
 * Does a market connection on `path` deliver this stream? Spot: always. USD-M (since 2026-04-23):
 * `/public/...` carries book data (depth, bookTicker), `/market/...` the rest, and a connection with
 * no routed path only public data. A stream on the wrong route is accepted and then silent, as on
 * Binance ("This fails silently rather than erroring").
 */
export function servesOnPath(venue: Venue, path: string, spec: StreamSpec): boolean {
  if (venue.name !== 'binance-usdm') return true;
  if (spec.family === 'contractInfo') return path.startsWith('/market/');
  const route = venue.streamType(spec.type)?.route ?? '';
  const served = path.startsWith('/market/') ? '/market/' : '/public/';
  return route.startsWith(served);
}
