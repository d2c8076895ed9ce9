import { getVenue } from '../venues/index.js';
import { systemClock } from '../clock.js';
import { Exchange, type ExchangeSettings } from './exchange.js';
import { SimTime } from './time.js';
import { startVenueSimulator } from './venues/index.js';
import type { Simulator, SimulatorOptions } from './types.js';

/** The Binance exchange (binance-spot, -usdm, -coinm): the Simulator plus REST weight controls. */
export type { Exchange as BinanceSimulator } from './exchange.js';
export type { RestAnswer } from './rest-weights.js';
export type {
  ConnectionFilter,
  ConnectionInfo,
  ConnectionState,
  DropOptions,
  Note,
  RouteHandler,
  Simulator,
  SimulatorLimits,
  SimulatorOptions,
  UpgradeAttempt,
  Violation,
  ViolationRule,
  WsRouteHandler,
} from './types.js';

/** Every venue the simulator speaks: Binance's own exchange, and the dialects of src/simulator/venues. */
export const SIMULATED_VENUES: readonly string[] = ['binance-spot', 'binance-usdm', 'binance-coinm', 'bybit-spot', 'bybit-linear', 'okx', 'kucoin-spot', 'gate-spot', 'coinbase', 'bitget-spot', 'bitget-usdt-futures'];

/**
 * Starts an exchange on loopback speaking the venue's protocol (docs/simulator.md): Binance's
 * venues on the Binance exchange, Bybit and OKX on their dialects. Resolves once it listens.
 * Throws RangeError on an option out of range.
 */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const venue = opts.venue ?? 'binance-spot';
  if (venue === 'bybit-spot' || venue === 'bybit-linear' || venue === 'okx' || venue === 'kucoin-spot' || venue === 'gate-spot' || venue === 'coinbase' || venue === 'bitget-spot' || venue === 'bitget-usdt-futures') return startVenueSimulator({ ...opts, venue });
  const exchange = new Exchange(resolveOptions(opts));
  await exchange.listen();
  return exchange;
}

function resolveOptions(opts: SimulatorOptions): ExchangeSettings {
  const venueName = opts.venue ?? 'binance-spot';
  const venue = getVenue(venueName);
  if (venue === undefined) throw new RangeError(`venue: unknown venue ${String(venueName)}`);
  const l = venue.limits;
  const s: ExchangeSettings = {
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    venue,
    eventsPerSecond: opts.eventsPerSecond ?? 2,
    tickMs: opts.tickMs ?? 100,
    streamsPerConnection: opts.limits?.streamsPerConnection ?? l.streamsPerConnection,
    messagesPerSecond: opts.limits?.messagesPerSecond ?? l.messagesPerSecond,
    connectionAttempts: opts.limits?.connectionAttempts ?? l.connectionAttempts,
    connectionAttemptWindowMs: opts.limits?.connectionAttemptWindowMs ?? l.connectionAttemptWindowMs,
    pingIntervalMs: opts.pingIntervalMs ?? l.serverPingIntervalMs,
    pongTimeoutMs: opts.pongTimeoutMs ?? l.pongTimeoutMs,
    maxLifetimeMs: opts.maxLifetimeMs ?? l.maxLifetimeMs,
    clock: opts.clock ?? systemClock.now,
    time: new SimTime(),
    shutdownGraceMs: opts.shutdownGraceMs ?? 2000,
    maxBufferedBytes: opts.maxBufferedBytes ?? 8 * 1024 * 1024,
    idHistoryLimit: opts.idHistoryLimit ?? Number.POSITIVE_INFINITY,
    advanceWhileIdle: opts.advanceWhileIdle ?? true,
    listings: opts.listings ?? 20,
    onViolation: opts.onViolation,
    rest: {
      weightLimit: opts.rest?.weightLimit ?? (venueName === 'binance-spot' ? 6000 : 2400),
      windowMs: opts.rest?.windowMs ?? 60_000,
      banMs: opts.rest?.banMs ?? 120_000,
      banAfterIgnored: opts.rest?.banAfterIgnored ?? 3,
    },
    tradeHistory: { maxRecords: opts.tradeHistory?.maxRecords ?? 1_000_000, maxAgeMs: opts.tradeHistory?.maxAgeMs ?? Number.POSITIVE_INFINITY },
  };
  const atLeast = (key: string, v: number, min: number): void => {
    if (!(v >= min)) throw new RangeError(`${key}: must be at least ${min}, got ${v}`);
  };
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65_535) throw new RangeError(`port: not a port number: ${s.port}`);
  atLeast('eventsPerSecond', s.eventsPerSecond, 0);
  atLeast('tickMs', s.tickMs, 1);
  atLeast('limits.streamsPerConnection', s.streamsPerConnection, 1);
  atLeast('limits.messagesPerSecond', s.messagesPerSecond, 1);
  atLeast('limits.connectionAttempts', s.connectionAttempts, 1);
  atLeast('limits.connectionAttemptWindowMs', s.connectionAttemptWindowMs, 1);
  atLeast('pingIntervalMs', s.pingIntervalMs, 1);
  atLeast('pongTimeoutMs', s.pongTimeoutMs, 1);
  atLeast('maxLifetimeMs', s.maxLifetimeMs, 1);
  atLeast('shutdownGraceMs', s.shutdownGraceMs, 0);
  atLeast('maxBufferedBytes', s.maxBufferedBytes, 1);
  atLeast('idHistoryLimit', s.idHistoryLimit, 0);
  atLeast('rest.weightLimit', s.rest.weightLimit, 1);
  atLeast('rest.windowMs', s.rest.windowMs, 1);
  atLeast('rest.banMs', s.rest.banMs, 1);
  atLeast('rest.banAfterIgnored', s.rest.banAfterIgnored, 1);
  atLeast('tradeHistory.maxRecords', s.tradeHistory.maxRecords, 0);
  atLeast('tradeHistory.maxAgeMs', s.tradeHistory.maxAgeMs, 0);
  // Node timers cap at 2^31-1 ms (~24.8 days).
  if (s.maxLifetimeMs > 2 ** 31 - 1) throw new RangeError(`maxLifetimeMs: at most ${2 ** 31 - 1}`);
  return s;
}
