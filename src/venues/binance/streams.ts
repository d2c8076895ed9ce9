import { keyPattern, keyScan, readInt, scanKeys } from '../bytes.js';
import type { KeyReader, SequenceRule, StreamType } from '../types.js';

/** Kline intervals Binance accepts (spot and futures; `1s` is spot-only). */
const KLINE_INTERVALS = new Set(['1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M']);

const E: SequenceRule = { kind: 'ordered', field: 'E' };

export interface BinanceStreamOptions {
  /** Spot depth: next U = previous u + 1 (`range`). Futures depth: next pu = previous u (`linked`). */
  depthLinkedBy: 'U' | 'pu';
  depthSpeeds: string[];
  hasAvgPrice: boolean;
  has1sKline: boolean;
  /**
   * Does bookTicker carry `E`? Futures' does (last key); spot's never does (binance-spot-api-docs:
   * `{"u","s","b","B","a","A"}`), so its key reader does not scan the payload for one. Default true.
   */
  bookTickerTime?: boolean;
  /** Combined-stream paths: `book` for depth and bookTicker, `market` for the rest. */
  routes: { book: string; market: string };
}

/**
 * Stream types shared by Binance spot, USD-M and COIN-M, with their sequence rules
 * (binance-spot-api-docs web-socket-streams.md; facts sheet "Payloads and sequence fields").
 */
export function binanceStreamType(type: string, opts: BinanceStreamOptions): StreamType | null {
  const t = streamTypeOf(type, opts);
  if (t === null) return null;
  const book = t.family === 'depth' || t.family === 'depthPartial' || t.family === 'bookTicker';
  const time = t.family !== 'bookTicker' || opts.bookTickerTime !== false;
  return { ...t, route: book ? opts.routes.book : opts.routes.market, keys: keyReader(t.sequence, time) };
}

function streamTypeOf(type: string, opts: BinanceStreamOptions): Omit<StreamType, 'route' | 'keys'> | null {
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
      sequence: opts.depthLinkedBy === 'pu' ? { kind: 'linked', field: 'U/u' } : { kind: 'range', field: 'U/u' },
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

/**
 * The key reader of a Binance stream: the rule's fields read from the payload after `out.from`.
 * Diff depth reads U and u (and futures' pu); partial depth reads lastUpdateId, or futures' `u`.
 * `time`: read `E` too (false only where the payload has none).
 */
export function keyReader(rule: SequenceRule, time = true): KeyReader {
  // One pass over the payload for every one-character key (scanKeys, src/venues/bytes.ts) instead
  // of a scan from the payload's start per key: the keys a rule reads plus `E`, the event time.
  const v = new Float64Array(3);
  switch (rule.kind) {
    case 'none': {
      const scan = keyScan(['E']);
      return (frame, out) => {
        scanKeys(frame, out.from, scan, v);
        out.first = out.last = out.prev = NaN;
        out.time = v[0]!;
        out.flags = 0;
        return true;
      };
    }
    case 'range':
    case 'linked': {
      const scan = keyScan(['U', 'u', 'E']);
      const pu = rule.kind === 'linked' ? keyPattern('pu') : null;
      return (frame, out) => {
        const from = out.from;
        scanKeys(frame, from, scan, v);
        out.first = v[0]!;
        out.last = v[1]!;
        out.prev = pu === null ? NaN : readInt(frame, pu, from);
        out.time = v[2]!;
        out.flags = 0;
        return out.last === out.last && out.first === out.first;
      };
    }
    case 'contiguous':
    case 'ordered': {
      if (rule.field === 'E') {
        const scan = keyScan(['E']);
        return (frame, out) => {
          scanKeys(frame, out.from, scan, v);
          const e = v[0]!;
          out.first = out.last = out.time = e;
          out.prev = NaN;
          out.flags = 0;
          return e === e;
        };
      }
      if (rule.field.length === 1 && !time) {
        // No `E` in this payload (spot bookTicker): the scan stops at the key.
        const scan = keyScan([rule.field]);
        return (frame, out) => {
          scanKeys(frame, out.from, scan, v);
          const k = v[0]!;
          out.first = out.last = k;
          out.prev = NaN;
          out.time = NaN;
          out.flags = 0;
          return k === k;
        };
      }
      if (rule.field.length === 1) {
        const scan = keyScan([rule.field, 'E']);
        return (frame, out) => {
          scanKeys(frame, out.from, scan, v);
          const k = v[0]!;
          out.first = out.last = k;
          out.prev = NaN;
          out.time = v[1]!;
          out.flags = 0;
          return k === k;
        };
      }
      const key = keyPattern(rule.field);
      // Futures partial depth carries `u` where spot carries lastUpdateId.
      const fallback = rule.field === 'lastUpdateId';
      const scan = keyScan(fallback ? ['u', 'E'] : ['E']);
      return (frame, out) => {
        const from = out.from;
        scanKeys(frame, from, scan, v);
        let k = readInt(frame, key, from);
        if (k !== k && fallback) k = v[0]!;
        out.first = out.last = k;
        out.prev = NaN;
        out.time = fallback ? v[1]! : v[0]!;
        out.flags = 0;
        return k === k;
      };
    }
  }
}

export function binanceStreamName(symbol: string, type: string): string {
  return `${symbol.toLowerCase()}@${type}`;
}

export function binanceTypeOf(stream: string): string {
  return stream.slice(stream.indexOf('@') + 1);
}

export function isBinanceSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{2,20}$/.test(symbol);
}

/** COIN-M contracts: `BTCUSD_PERP`, `BTCUSD_200626` (facts sheet, "Binance COIN-M futures"). */
export function isCoinmSymbol(symbol: string): boolean {
  return /^[A-Z0-9]{2,16}_(?:PERP|\d{6})$/.test(symbol);
}
