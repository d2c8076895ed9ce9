import type { SequenceRule, StreamType } from './types.js';

/** Kline intervals Binance accepts (spot and futures; `1s` is spot-only). */
const KLINE_INTERVALS = new Set(['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M']);

const E: SequenceRule = { kind: 'ordered', field: 'E' };

/**
 * Stream types shared by Binance spot and USD-M, with their sequence rules
 * (binance-spot-api-docs web-socket-streams.md; facts sheet "Payloads and sequence fields").
 */
export function binanceStreamType(
  type: string,
  opts: {
    depthLinkedBy: 'U' | 'pu';
    depthSpeeds: string[];
    hasAvgPrice: boolean;
    has1sKline: boolean;
    /** Combined-stream paths: `book` for depth and bookTicker, `market` for the rest. */
    routes: { book: string; market: string };
  },
): StreamType | null {
  const t = streamTypeOf(type, opts);
  if (t === null) return null;
  const book = t.family === 'depth' || t.family === 'depthPartial' || t.family === 'bookTicker';
  return { ...t, route: book ? opts.routes.book : opts.routes.market };
}

function streamTypeOf(
  type: string,
  opts: { depthLinkedBy: 'U' | 'pu'; depthSpeeds: string[]; hasAvgPrice: boolean; has1sKline: boolean },
): Omit<StreamType, 'route'> | null {
  switch (type) {
    case 'trade':
      return { type, family: 'trade', sequence: { kind: 'contiguous', field: 't' }, expectedIntervalMs: 0 };
    case 'aggTrade':
      return { type, family: 'aggTrade', sequence: { kind: 'contiguous', field: 'a' }, expectedIntervalMs: 0 };
    case 'bookTicker':
      // `u` is the book update ID: it jumps between bookTicker events, that is not a gap.
      return { type, family: 'bookTicker', sequence: { kind: 'ordered', field: 'u' }, expectedIntervalMs: 0 };
    case 'miniTicker':
    case 'ticker':
      return { type, family: type, sequence: E, expectedIntervalMs: 1000 };
    case 'avgPrice':
      return opts.hasAvgPrice ? { type, family: type, sequence: E, expectedIntervalMs: 1000 } : null;
  }
  let m = /^depth(?:@(\d+ms))?$/.exec(type);
  if (m) {
    const speed = m[1] ?? '';
    if (speed !== '' && !opts.depthSpeeds.includes(speed)) return null;
    return {
      type,
      family: 'depth',
      sequence: { kind: 'range', field: 'U/u', linkedBy: opts.depthLinkedBy },
      expectedIntervalMs: speed === '100ms' ? 100 : 1000,
    };
  }
  m = /^depth(5|10|20)(?:@(\d+ms))?$/.exec(type);
  if (m) {
    const speed = m[2] ?? '';
    if (speed !== '' && !opts.depthSpeeds.includes(speed)) return null;
    return { type, family: 'depthPartial', sequence: { kind: 'ordered', field: 'lastUpdateId' }, expectedIntervalMs: speed === '100ms' ? 100 : 1000 };
  }
  m = /^kline_(\w+)$/.exec(type);
  if (m && KLINE_INTERVALS.has(m[1]!) && (m[1] !== '1s' || opts.has1sKline)) {
    return { type, family: 'kline', sequence: E, expectedIntervalMs: 2000 };
  }
  return null;
}

export function binanceStreamName(symbol: string, type: string): string {
  return `${symbol.toLowerCase()}@${type}`;
}

export function isBinanceSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{2,20}$/.test(symbol);
}
