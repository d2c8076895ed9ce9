import { BybitExchange } from './bybit.js';
import { OkxExchange } from './okx.js';
import { resolveVenueOptions, type VenueSimulatorOptions } from './options.js';

export type { VenueDialectName, VenueSimulatorOptions } from './options.js';
export type { VenueViolationRule } from './exchange.js';

/** A Bybit simulator: the Simulator interface plus restartBook(). */
export type BybitSimulator = BybitExchange;
/** An OKX simulator: the Simulator interface plus resetBookSeq(). */
export type OkxSimulator = OkxExchange;

/**
 * Starts a Bybit v5 or OKX v5 public market-data exchange on loopback (docs/simulator.md, "Bybit and OKX
 * dialects"). Resolves once it listens. Throws RangeError on an option out of range.
 */
export function startVenueSimulator(opts: VenueSimulatorOptions & { venue: 'okx' }): Promise<OkxSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions & { venue: 'bybit-spot' | 'bybit-linear' }): Promise<BybitSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions): Promise<BybitSimulator | OkxSimulator>;
export async function startVenueSimulator(opts: VenueSimulatorOptions): Promise<BybitSimulator | OkxSimulator> {
  const settings = resolveVenueOptions(opts);
  const exchange = settings.venue === 'okx' ? new OkxExchange(settings) : new BybitExchange(settings);
  await exchange.listen();
  return exchange;
}
