import { binanceSpot } from './binance-spot.js';
import { binanceUsdm } from './binance-usdm.js';
import type { Venue, VenueName } from './types.js';

export const venues: Record<VenueName, Venue> = {
  'binance-spot': binanceSpot,
  'binance-usdm': binanceUsdm,
};

export function getVenue(name: string): Venue | undefined {
  return Object.hasOwn(venues, name) ? venues[name as VenueName] : undefined;
}

export type { Venue, VenueName, StreamType, SequenceRule, VenueLimits } from './types.js';
