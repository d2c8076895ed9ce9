import { binanceCoinm, binanceSpot, binanceUsdm } from './binance/index.js';
import { bitgetSpot, bitgetUsdtFutures } from './bitget/index.js';
import { bybitLinear, bybitSpot } from './bybit/index.js';
import { coinbase } from './coinbase/index.js';
import { gateSpot } from './gate/index.js';
import { kucoinSpot } from './kucoin/index.js';
import { okx } from './okx/index.js';
import type { Venue, VenueName } from './types.js';

/**
 * The venue registry: one line per venue. Everything else about a venue lives in its folder
 * (docs/venues.md, "Adding a venue").
 */
const registry: Venue[] = [binanceSpot, binanceUsdm, binanceCoinm, bybitSpot, bybitLinear, okx, kucoinSpot, gateSpot, coinbase, bitgetSpot, bitgetUsdtFutures];

export const venues: ReadonlyMap<VenueName, Venue> = new Map(registry.map((v) => [v.name, v]));

export function getVenue(name: string): Venue | undefined {
  return venues.get(name);
}

/** Binance venues share the market-stream protocol (the relay and user data rely on it). */
export function isBinanceVenue(name: string): boolean {
  return name.startsWith('binance-');
}

export type { Venue, VenueName, StreamType, SequenceRule, VenueLimits } from './types.js';
