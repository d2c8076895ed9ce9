import type { Config } from '../config/types.js';
import { ConfigError, PlanOverBudgetError } from '../errors.js';
import type { Venue } from '../venues/index.js';
import { shardSymbols } from './shard.js';
import type { UniverseSpec } from '../universe/spec.js';

export interface PlannedConnection {
  /** 'c0', 'c1', ...: the same config gives the same ids. */
  id: string;
  /** The combined-stream path it dials (StreamType.route): `/stream`, or on USD-M `/public/stream` or `/market/stream`. */
  path: string;
  symbols: string[];
  /** Wire names, e.g. btcusdt@trade (venue.streamName), a symbol's streams next to each other. */
  streams: string[];
}

export interface PlanUsage {
  streamsPerConnection: {
    limit: number;
    max: number;
    mean: number;
    /** max / limit × 100. */
    maxPercent: number;
    meanPercent: number;
  };
  /** Connections against the attempt budget: what a drop of every connection at once would cost. */
  connectionAttempts: {
    connections: number;
    budget: number;
    windowMs: number;
    percent: number;
  };
  subscribe: {
    streamsPerSubscribe: number;
    /** SUBSCRIBE messages the fullest connection needs: ceil(streams / streamsPerSubscribe). */
    messagesPerConnection: number;
    /** SUBSCRIBE messages over all connections. */
    messagesTotal: number;
    /** messagesPerSecond - 1: one slot per second stays free for pongs. */
    sendRatePerSecond: number;
    /** Seconds the fullest connection takes to send its SUBSCRIBE messages at sendRatePerSecond. */
    secondsPerConnection: number;
    /** The venue's subscribe requests per connection per hour (OKX 480); 0 = no such limit. */
    perHourLimit: number;
    /** messagesPerConnection / perHourLimit × 100 (0 without a limit). */
    perHourPercent: number;
  };
}

export interface Plan {
  venue: Venue;
  /** This daemon's part of the configured symbols (shard.index of shard.count; src/plan/shard.ts). */
  shard: { index: number; count: number; symbols: number; totalSymbols: number };
  connections: PlannedConnection[];
  totalStreams: number;
  /** Symbols on the fullest connection (the others have the same or one fewer). */
  symbolsPerConnection: number;
  usage: PlanUsage;
  /** Where `symbols` is a universe: its filters, and the REST call that refreshes it. */
  universe: { spec: UniverseSpec; path: string; weight: number; refreshMs: number } | null;
}

/**
 * Split the configured symbols × stream types into connections.
 *
 * - As few connections as limits.streamsPerConnection allows: each one costs an attempt from the
 *   per-IP budget when it (re)connects, and every one of them reconnects after a maintenance drop.
 * - A symbol's streams stay on one connection, so a dropped connection leaves a symbol either whole
 *   or absent, never half-recorded.
 * - Symbols spread evenly over that minimum number of connections (625 symbols at 4 streams and
 *   1024 per connection → 209/208/208, not 256/256/113), so no connection sits at the limit
 *   while another is a third full.
 *
 * Throws ConfigError('streams') when one symbol's streams alone exceed the per-connection limit,
 * and PlanOverBudgetError when the connections exceed limits.connectionAttempts: a mass drop could
 * not reconnect them all inside one attempt window from one IP.
 */
export function plan(whole: Config, venue: Venue): Plan {
  const shard = whole.shard ?? { index: 0, count: 1 };
  if (whole.symbols.length > 0 && whole.streams.length > 0 && shard.count > 1) {
    // A shard plans its part of the symbols; the whole plan (for the suggestion below) is count 1.
    const mine = shardSymbols(whole.symbols, shard);
    if (mine.length === 0) {
      throw new ConfigError('shard.count', `shard ${shard.index} of ${shard.count} gets none of the ${whole.symbols.length} ${venue.name} symbols: use fewer shards or more symbols`);
    }
    const part = plan({ ...whole, symbols: mine, shard: { index: 0, count: 1 } }, venue);
    return { ...part, shard: { index: shard.index, count: shard.count, symbols: mine.length, totalSymbols: whole.symbols.length } };
  }
  const config = whole;
  const { limits } = config;
  const perSymbol = config.streams.length;
  const symbolCount = config.symbols.length;
  if (perSymbol === 0 || symbolCount === 0) {
    throw new ConfigError(perSymbol === 0 ? 'streams' : 'symbols', 'nothing to subscribe: the list is empty');
  }
  if (perSymbol > limits.streamsPerConnection) {
    throw new ConfigError(
      'streams',
      `${perSymbol} stream types per symbol exceed limits.streamsPerConnection (${limits.streamsPerConnection}); a symbol's streams must share one connection`,
    );
  }

  // Streams served on different routes (USD-M /public and /market) never share a connection.
  const groups = new Map<string, string[]>();
  for (const type of config.streams) {
    const route = venue.streamType(type)?.route ?? venue.combinedPath;
    groups.set(route, [...(groups.get(route) ?? []), type]);
  }
  const layout = [...groups].map(([route, types]) => {
    const capacity = Math.floor(limits.streamsPerConnection / types.length);
    return { route, types, capacity, count: Math.ceil(symbolCount / capacity) };
  });
  const count = layout.reduce((n, g) => n + g.count, 0);

  if (venue.limits.subscribesPerHour > 0 && Math.ceil(Math.max(...layout.map((g) => Math.min(g.capacity, symbolCount) * g.types.length)) / limits.streamsPerSubscribe) > venue.limits.subscribesPerHour) {
    throw new ConfigError('limits.streamsPerSubscribe', `one connection would need more subscribe requests than ${venue.name} allows per hour (${venue.limits.subscribesPerHour}): raise limits.streamsPerSubscribe or lower limits.streamsPerConnection`);
  }
  if (count > limits.connectionAttempts) {
    const hosts = Math.ceil(count / limits.connectionAttempts);
    throw new PlanOverBudgetError(
      `the plan needs ${count} connections (${symbolCount} symbols × ${perSymbol} streams at ${limits.streamsPerConnection} per connection), ` +
        `but one IP may make only ${limits.connectionAttempts} connection attempts per ${formatSeconds(limits.connectionAttemptWindowMs)} (limits.connectionAttempts): ` +
        `after a drop of every connection (maintenance) they could not all reconnect within one window. ` +
        `Split the symbols across ${hosts} hosts (IPs), at most ${Math.floor(symbolCount / hosts)} symbols each` +
        (shard.count > 1 || suggesting ? '' : `: shards do it (shard.count ${shardsNeeded(config, venue, hosts)}, each host its own shard.index; docs/scale-out.md)`),
      count,
      hosts,
    );
  }

  const connections: PlannedConnection[] = [];
  for (const g of layout) {
    const base = Math.floor(symbolCount / g.count);
    const extra = symbolCount % g.count;
    let next = 0;
    for (let i = 0; i < g.count; i++) {
      const size = base + (i < extra ? 1 : 0);
      const symbols = config.symbols.slice(next, next + size);
      next += size;
      const streams = symbols.flatMap((s) => g.types.map((type) => venue.streamName(s, type)));
      connections.push({ id: `c${connections.length}`, path: g.route, symbols, streams });
    }
  }

  const totalStreams = symbolCount * perSymbol;
  const maxStreams = Math.max(...connections.map((c) => c.streams.length));
  const meanStreams = totalStreams / count;
  const messagesPerConnection = Math.ceil(maxStreams / limits.streamsPerSubscribe);
  const sendRate = Math.max(1, limits.messagesPerSecond - 1);

  return {
    venue,
    shard: { index: 0, count: 1, symbols: symbolCount, totalSymbols: symbolCount },
    connections,
    totalStreams,
    symbolsPerConnection: Math.max(...connections.map((c) => c.symbols.length)),
    universe:
      whole.symbolsFrom === null || venue.instruments === undefined
        ? null
        : { spec: whole.symbolsFrom, path: venue.instruments.path, weight: venue.instruments.weight, refreshMs: whole.universe.refreshMs },
    usage: {
      streamsPerConnection: {
        limit: limits.streamsPerConnection,
        max: maxStreams,
        mean: meanStreams,
        maxPercent: percent(maxStreams, limits.streamsPerConnection),
        meanPercent: percent(meanStreams, limits.streamsPerConnection),
      },
      connectionAttempts: {
        connections: count,
        budget: limits.connectionAttempts,
        windowMs: limits.connectionAttemptWindowMs,
        percent: percent(count, limits.connectionAttempts),
      },
      subscribe: {
        streamsPerSubscribe: limits.streamsPerSubscribe,
        messagesPerConnection,
        messagesTotal: connections.reduce((n, c) => n + Math.ceil(c.streams.length / limits.streamsPerSubscribe), 0),
        sendRatePerSecond: sendRate,
        secondsPerConnection: messagesPerConnection / sendRate,
        perHourLimit: venue.limits.subscribesPerHour,
        perHourPercent: venue.limits.subscribesPerHour > 0 ? percent(messagesPerConnection, venue.limits.subscribesPerHour) : 0,
      },
    },
  };
}

/**
 * The shard count at which every shard's plan fits the attempt budget: hashing does not split
 * evenly, so from the even split upwards until the fullest shard fits.
 */
function shardsNeeded(config: Config, venue: Venue, from: number): number {
  suggesting = true;
  try {
    return firstFitting(config, venue, from);
  } finally {
    suggesting = false;
  }
}

/** True while shardsNeeded() plans shards: their errors need no suggestion of their own. */
let suggesting = false;

function firstFitting(config: Config, venue: Venue, from: number): number {
  for (let n = Math.max(2, from); n <= Math.max(2, from) + 64; n++) {
    let fits = true;
    for (let i = 0; i < n && fits; i++) {
      const mine = shardSymbols(config.symbols, { index: i, count: n });
      if (mine.length === 0) continue;
      try {
        plan({ ...config, symbols: mine, shard: { index: 0, count: 1 } }, venue);
      } catch (err) {
        if (err instanceof PlanOverBudgetError) fits = false;
        else throw err;
      }
    }
    if (fits) return n;
  }
  return from;
}

function percent(part: number, whole: number): number {
  return Math.round((part / whole) * 1000) / 10;
}

function formatSeconds(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}
