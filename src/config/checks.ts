import type { Venue } from '../venues/index.js';
import type { Config } from './types.js';

/**
 * Checks that need the venue or more than one key. Each returns the first problem as
 * [key, message], or null. Messages never carry a credential.
 */
export type Finding = [key: string, message: string] | null;

export function checkSymbols(config: Config, venue: Venue): Finding {
  const seen = new Map<string, number>();
  for (const [i, symbol] of config.symbols.entries()) {
    if (!venue.isSymbol(symbol)) return ['symbols', `${JSON.stringify(symbol)} (item ${i + 1}) is not a valid ${venue.name} symbol (e.g. ${venue.symbolExample})`];
    const first = seen.get(symbol);
    if (first !== undefined) return ['symbols', `${symbol} is listed twice (items ${first + 1} and ${i + 1})`];
    seen.set(symbol, i);
  }
  return null;
}

export function checkStreams(config: Config, venue: Venue): Finding {
  const seen = new Set<string>();
  for (const type of config.streams) {
    if (venue.streamType(type) === null) {
      return ['streams', `unknown stream type ${JSON.stringify(type)} for ${venue.name} (see docs/configuration.md#streams)`];
    }
    if (seen.has(type)) return ['streams', `${JSON.stringify(type)} is listed twice`];
    seen.add(type);
  }
  return null;
}

/**
 * Lower figures than the venue's are fine (tests, a shared IP); higher ones are refused: past the
 * documented limits Binance disconnects or bans the IP (facts sheet, "Spot market streams").
 */
export function checkLimits(config: Config, venue: Venue): Finding {
  const l = config.limits;
  const v = venue.limits;
  if (l.streamsPerConnection > v.streamsPerConnection) {
    return ['limits.streamsPerConnection', `must be at most ${v.streamsPerConnection} (${venue.name}'s limit; past it the behaviour is undocumented), got ${l.streamsPerConnection}`];
  }
  if (l.messagesPerSecond > v.messagesPerSecond) {
    return ['limits.messagesPerSecond', `must be at most ${v.messagesPerSecond} (${venue.name} disconnects a connection that sends more), got ${l.messagesPerSecond}`];
  }
  if (l.messagesPerSecond < 2) {
    return ['limits.messagesPerSecond', `must be at least 2 (one message per second is kept for pongs), got ${l.messagesPerSecond}`];
  }
  if (l.streamsPerSubscribe > v.streamsPerSubscribe) {
    return ['limits.streamsPerSubscribe', `must be at most ${v.streamsPerSubscribe} (${venue.name} refuses a subscribe request naming more), got ${l.streamsPerSubscribe}`];
  }
  if (l.connectionAttempts > v.connectionAttempts) {
    return ['limits.connectionAttempts', `must be at most ${v.connectionAttempts} (${venue.name}'s limit per IP), got ${l.connectionAttempts}`];
  }
  // A shorter window with the same count allows bursts the venue's window would count together.
  if (l.connectionAttemptWindowMs < v.connectionAttemptWindowMs) {
    return ['limits.connectionAttemptWindowMs', `must be at least ${v.connectionAttemptWindowMs} (${venue.name}'s window), got ${l.connectionAttemptWindowMs}`];
  }
  return null;
}

export function checkConnection(config: Config, venue: Venue): Finding {
  const c = config.connection;
  if (venue.clientPing === null && c.pingIntervalMs > 0) {
    return ['connection.pingIntervalMs', `${venue.name}'s server pings the client; leave this key unset (null), got ${c.pingIntervalMs}`];
  }
  if (venue.clientPing !== null && c.pingIntervalMs >= venue.limits.pongTimeoutMs) {
    return ['connection.pingIntervalMs', `must be less than ${venue.limits.pongTimeoutMs} (${venue.name} cuts a connection that sends no heartbeat for that long), got ${c.pingIntervalMs}`];
  }
  // 0: the venue documents no lifetime (Bybit, OKX); a configured lifetime then rotates on its own.
  if (venue.limits.maxLifetimeMs > 0 && c.maxLifetimeMs > venue.limits.maxLifetimeMs) {
    return ['connection.maxLifetimeMs', `must be at most ${venue.limits.maxLifetimeMs} (${venue.name} cuts a connection after that), got ${c.maxLifetimeMs}`];
  }
  if (c.maxLifetimeMs === 0) {
    if (c.backoff.maxMs < c.backoff.initialMs) {
      return ['connection.backoff.maxMs', `must be at least connection.backoff.initialMs (${c.backoff.initialMs}), got ${c.backoff.maxMs}`];
    }
    return null;
  }
  if (c.rotateBeforeMs >= c.maxLifetimeMs) {
    return ['connection.rotateBeforeMs', `must be less than connection.maxLifetimeMs (${c.maxLifetimeMs}), got ${c.rotateBeforeMs}`];
  }
  // The replacement must be up and subscribed before the server cuts the old connection.
  const needed = c.handshakeTimeoutMs + c.switchoverTimeoutMs;
  if (c.rotateBeforeMs < needed) {
    return ['connection.rotateBeforeMs', `must leave room for the handshake and the switch-over (handshakeTimeoutMs + switchoverTimeoutMs = ${needed}), got ${c.rotateBeforeMs}`];
  }
  if (c.backoff.maxMs < c.backoff.initialMs) {
    return ['connection.backoff.maxMs', `must be at least connection.backoff.initialMs (${c.backoff.initialMs}), got ${c.backoff.maxMs}`];
  }
  return null;
}

/**
 * With user data on, a key must come from somewhere, and spot (signed WebSocket API requests) also
 * needs the secret. Checked here so a missing credential fails at start, not at first use. Only
 * presence: src/userdata/secrets.ts reads the sources (a relative key file lives in systemd's
 * $CREDENTIALS_DIRECTORY) and reports an unreadable one.
 */
/** The venues whose user data stream the daemon keeps (src/userdata/user-stream.ts). */
const USER_DATA_VENUES: readonly string[] = ['binance-spot', 'binance-usdm', 'binance-coinm'];

export function checkCredentials(config: Config, env: NodeJS.ProcessEnv): Finding {
  const u = config.userData;
  if (!u.enabled) return null;
  if (!USER_DATA_VENUES.includes(config.venue)) {
    return ['userData.enabled', `user data is supported on ${USER_DATA_VENUES.join(', ')}; ${config.venue} has none here (docs/user-data.md)`];
  }
  if (u.apiKey === '' && u.apiKeyFile === '' && !env['FEEDKEEPER_API_KEY']) {
    return ['userData.apiKey', 'userData.enabled is true but no API key is configured: set FEEDKEEPER_API_KEY (recommended) or userData.apiKeyFile'];
  }
  if (config.venue === 'binance-spot' && u.apiSecret === '' && u.apiSecretFile === '' && !env['FEEDKEEPER_API_SECRET']) {
    return ['userData.apiSecret', 'userData.enabled is true on binance-spot, whose user data requests are signed, but no API secret is configured: set FEEDKEEPER_API_SECRET (recommended) or userData.apiSecretFile'];
  }
  return null;
}

export function checkEndpoints(config: Config): Finding {
  // The combined path (/stream?streams=...) is appended to endpoints.stream.
  const u = new URL(config.endpoints.stream);
  if (u.search !== '') return ['endpoints.stream', `must not have a query string (the combined-stream path and query are appended), got ${JSON.stringify(config.endpoints.stream)}`];
  return null;
}

const LOOPBACK = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/**
 * The relay is a server other programs talk to: on loopback by default; listening beyond it needs
 * relay.allow (docs/relay.md, "Who may connect"), and it must not share the metrics port.
 */
export function checkRelay(config: Config): Finding {
  const r = config.relay;
  if (!r.enabled) return null;
  if (!LOOPBACK.test(r.host) && r.allow.length === 0) {
    return ['relay.allow', `relay.host ${r.host} listens beyond loopback: list the address ranges allowed to connect (e.g. ["10.0.0.0/8"]), or keep relay.host on 127.0.0.1`];
  }
  if (config.metrics.enabled && r.port !== 0 && r.port === config.metrics.port) return ['relay.port', `must differ from metrics.port (${config.metrics.port})`];
  if (r.pingIntervalMs >= r.pongTimeoutMs) return ['relay.pongTimeoutMs', `must be more than relay.pingIntervalMs (${r.pingIntervalMs}), got ${r.pongTimeoutMs}`];
  return null;
}

/**
 * Scale-out (docs/scale-out.md): the shard must exist, and the NATS sink's shutdown drain must fit
 * in the daemon's 5 s shutdown.
 */
export function checkScaleOut(config: Config): Finding {
  const s = config.shard;
  if (s.index >= s.count) return ['shard.index', `must be less than shard.count (${s.count}), got ${s.index}`];
  const n = config.sinks.nats;
  if (!n.enabled) return null;
  if (n.drainTimeoutMs > 3000) return ['sinks.nats.drainTimeoutMs', `must be at most 3000 (the whole shutdown has 5 s), got ${n.drainTimeoutMs}`];
  if (n.duplicateWindowMs < 1000) return ['sinks.nats.duplicateWindowMs', `must be at least 1000 (a reconnect republishes what was in flight), got ${n.duplicateWindowMs}`];
  return null;
}
