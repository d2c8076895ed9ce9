import type { Instrument, InstrumentSource } from '../types.js';
import { keyReader } from './streams.js';

/**
 * Binance's exchangeInfo (spot `GET /api/v3/exchangeInfo`, weight 20; USD-M `/fapi/v1/exchangeInfo`
 * and COIN-M `/dapi/v1/exchangeInfo`, weight 1). Spot symbols carry `status` and `permissionSets`
 * (lists of permissions, any one set grants trading; the older flat `permissions` list is read too);
 * futures symbols carry `contractType` and `status` (COIN-M: `contractStatus`).
 */
export function binanceInstruments(path: string, weight: number, events?: InstrumentSource['events']): InstrumentSource {
  return events === undefined ? { path, weight, parse: parseExchangeInfo } : { path, weight, parse: parseExchangeInfo, events };
}

/**
 * USD-M `!contractInfo` (market route): `{"e":"contractInfo","E":..,"s":"BTCUSDT","ps":..,"ct":"PERPETUAL",
 * "dt":..,"ot":..,"cs":"TRADING",...}`, pushed when a contract is listed, changes status or settles.
 * Ordered by `E`; no cadence (it is silent for days).
 */
export const CONTRACT_INFO: NonNullable<InstrumentSource['events']> = {
  stream: '!contractInfo',
  type: { type: '!contractInfo', family: 'contractInfo', sequence: { kind: 'ordered', field: 'E' }, expectedIntervalMs: 0, route: '/market/stream', keys: keyReader({ kind: 'ordered', field: 'E' }) },
};

function parseExchangeInfo(body: unknown): Instrument[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { symbols?: unknown }).symbols)) {
    throw new Error('exchangeInfo: no "symbols" list in the reply');
  }
  const out: Instrument[] = [];
  for (const [i, raw] of ((body as { symbols: unknown[] }).symbols).entries()) {
    if (typeof raw !== 'object' || raw === null) throw new Error(`exchangeInfo: symbols[${i}] is not an object`);
    const s = raw as Record<string, unknown>;
    const status = typeof s.status === 'string' ? s.status : s.contractStatus;
    if (typeof s.symbol !== 'string' || typeof status !== 'string') throw new Error(`exchangeInfo: symbols[${i}] has no symbol or status`);
    const permissions = new Set<string>();
    if (Array.isArray(s.permissions)) for (const p of s.permissions) if (typeof p === 'string') permissions.add(p);
    if (Array.isArray(s.permissionSets)) {
      for (const set of s.permissionSets) if (Array.isArray(set)) for (const p of set) if (typeof p === 'string') permissions.add(p);
    }
    out.push({
      symbol: s.symbol,
      status,
      quoteAsset: typeof s.quoteAsset === 'string' ? s.quoteAsset : '',
      permissions: [...permissions],
      contractType: typeof s.contractType === 'string' && s.contractType !== '' ? s.contractType : null,
    });
  }
  return out;
}
