import { BitgetExchange } from './bitget.js';
import { BybitExchange } from './bybit.js';
import { CoinbaseExchange, type CoinbaseDialectOptions } from './coinbase.js';
import { GateExchange, type GateDialectOptions } from './gate.js';
import { KucoinExchange } from './kucoin.js';
import { OkxExchange } from './okx.js';
import { resolveVenueOptions, type VenueSimulatorOptions } from './options.js';

export type { VenueDialectName, VenueSimulatorOptions } from './options.js';
export type { VenueViolationRule } from './exchange.js';

/** A Bybit simulator: the Simulator interface plus restartBook(). */
export type BybitSimulator = BybitExchange;
/** An OKX simulator: the Simulator interface plus resetBookSeq(). */
export type OkxSimulator = OkxExchange;
/** A KuCoin simulator: the Simulator interface plus expireTokens() and bulletRequests. */
export type KucoinSimulator = KucoinExchange;
/** A Bitget simulator: the Simulator interface plus corruptChecksum(). */
export type BitgetSimulator = BitgetExchange;
/** A Gate.io simulator: the Simulator interface plus setClockSkew(). */
export type GateSimulator = GateExchange;
/** A Coinbase Advanced Trade simulator: the Simulator interface plus skipSequence(). */
export type CoinbaseSimulator = CoinbaseExchange;

/**
 * Starts a Bybit v5 or OKX v5 public market-data exchange on loopback (docs/simulator.md, "Bybit and OKX
 * dialects"). Resolves once it listens. Throws RangeError on an option out of range.
 */
export function startVenueSimulator(opts: VenueSimulatorOptions & { venue: 'okx' }): Promise<OkxSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions & { venue: 'kucoin-spot' }): Promise<KucoinSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions & { venue: 'bitget-spot' | 'bitget-usdt-futures' }): Promise<BitgetSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions & GateDialectOptions & { venue: 'gate-spot' }): Promise<GateSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions & CoinbaseDialectOptions & { venue: 'coinbase' }): Promise<CoinbaseSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions & { venue: 'bybit-spot' | 'bybit-linear' }): Promise<BybitSimulator>;
export function startVenueSimulator(opts: VenueSimulatorOptions): Promise<BybitSimulator | OkxSimulator | KucoinSimulator | GateSimulator | BitgetSimulator | CoinbaseSimulator>;
export async function startVenueSimulator(opts: VenueSimulatorOptions): Promise<BybitSimulator | OkxSimulator | KucoinSimulator | GateSimulator | BitgetSimulator | CoinbaseSimulator> {
  const settings = resolveVenueOptions(opts);
  const exchange = settings.venue === 'coinbase' ? new CoinbaseExchange(settings, opts as CoinbaseDialectOptions) : settings.venue === 'gate-spot' ? new GateExchange(settings, opts as GateDialectOptions) : settings.venue === 'okx' ? new OkxExchange(settings) : settings.venue === 'kucoin-spot' ? new KucoinExchange(settings) : settings.venue.startsWith('bitget-') ? new BitgetExchange(settings) : new BybitExchange(settings);
  await exchange.listen();
  return exchange;
}
