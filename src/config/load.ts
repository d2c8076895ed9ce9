import { basename, dirname, extname } from 'node:path';
import convict from 'convict';
import { ConfigError } from '../errors.js';
import { venues, type Venue } from '../venues/index.js';
import type { Config } from './types.js';
import { FEED_KEYS, getFormat, registerFormats } from './formats.js';
import { readConfigFile, type ConfigFile } from './file.js';
import { readEnv } from './env.js';
import { suggest } from './suggest.js';
import { isUniverseForm, parseUniverseSpec, type UniverseSpec } from '../universe/spec.js';
import { branchKeys, buildSchema, configKeys, venueDefaults, type KeyInfo, type RawConfig } from './schema.js';
import { hostname } from 'node:os';
import { checkConnection, checkCredentials, checkEndpoints, checkLimits, checkRelay, checkScaleOut, checkStreams, checkSymbols, type Finding } from './checks.js';

export interface LoadConfigOptions {
  /** JSON files, applied in order: a later file wins, key by key (a list is replaced, not merged). */
  files: string[];
  /** Defaults to process.env. FEEDKEEPER_* variables win over every file. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Load, validate and freeze the configuration: schema defaults, then each file, then the
 * environment; venue-dependent nulls resolved; every problem a ConfigError naming its key.
 * Validation happens here, once: the rest of the daemon trusts the Config it gets.
 */
export function loadConfig(opts: LoadConfigOptions): Config {
  const env = opts.env ?? process.env;
  registerFormats();
  const keys = configKeys();
  const leaves = new Set(keys.map((k) => k.key));
  const formatsOf = new Map(keys.map((k) => [k.key, k.format]));
  const branches = branchKeys();
  /** key → where its value came from, for the error message. */
  const sources = new Map<string, string>();

  // env: {} and args: [] keep convict from reading process.env/argv itself: we do the environment.
  const cv = convict(buildSchema(), { env: {}, args: [] });

  /** `symbols` as a universe (its object form) from the last file that set symbols, or null. */
  let universe: UniverseSpec | null = null;
  for (const path of opts.files) {
    const read = readConfigFile(path);
    // convict cannot hold an object where the schema's default is a list: the universe form of
    // symbols is taken out of the file here, validated, and kept beside the convict layers.
    const file = isUniverseForm(read.data['symbols']) ? { ...read, data: withoutKey(read.data, 'symbols') } : read;
    if (file !== read) universe = parseUniverseSpec(read.data['symbols'] as Record<string, unknown>, 'symbols', ` (in ${read.path})`);
    else if (Array.isArray(read.data['symbols'])) universe = null;
    checkShape(file, formatsOf, branches);
    checkInlineSecrets(file);
    cv.load(file.data);
    for (const key of leaves) if (hasPath(read.data, key)) sources.set(key, `in ${file.path}`);
  }

  const envLayer = readEnv(env, keys);
  cv.load(envLayer.data);
  for (const [key, name] of envLayer.sources) sources.set(key, `from ${name}`);
  if (envLayer.sources.has('symbols')) universe = null;

  const fail = (key: string, message: string): ConfigError => {
    const source = sources.get(key.replace(/\[.*$/, ''));
    return new ConfigError(key, source ? `${message} (${source})` : message);
  };

  const raw = cv.getProperties() as RawConfig;
  checkValues(raw, keys, fail);

  try {
    cv.validate({ allowed: 'strict', output: () => {} });
  } catch (err) {
    // Our own format checks ran first, so this is a backstop: keep convict's key, drop the value.
    throw fromConvict(err, fail);
  }

  if (raw.feeds.length > 0) {
    // With feeds, the venue keys live in each feed: a top-level one would be silently ignored.
    for (const key of ['venue', 'symbols', 'streams', 'endpoints.stream', 'endpoints.rest']) {
      if (sources.has(key)) throw fail(key, `set it in each feed (feeds[i].${key}) when feeds is used, not at the top level`);
    }
  }
  const feeds =
    raw.feeds.length === 0
      ? [checkedFeed(raw, universe, '', fail, env)]
      : raw.feeds.map((f, i) => {
          const prefix = `feeds[${i}].`;
          const spec = isUniverseForm(f['symbols']) ? parseUniverseSpec(f['symbols'], `${prefix}symbols`, sourceOf(sources, 'feeds')) : null;
          return checkedFeed(feedRaw(raw, spec === null ? f : withoutKey(f, 'symbols'), i, keys, fail), spec, prefix, fail, env);
        });
  const config: Config = { ...feeds[0]!, feeds };
  return deepFreeze(config);
}

/**
 * One feed's raw config: the schema's defaults, the top level's venue-neutral connection settings
 * and status poll, then the feed's own keys, validated like the top level with keys named
 * `feeds[i].<key>`. The shared keys (recorder, ledger, metrics, log, userData) are the top level's.
 */
function feedRaw(top: RawConfig, feed: Record<string, unknown>, i: number, keys: KeyInfo[], fail: (key: string, message: string) => ConfigError): RawConfig {
  const prefix = `feeds[${i}].`;
  const misplaced = objectForValue(feed, new Map(keys.map((k) => [k.key, k.format])));
  if (misplaced !== null) throw fail(`${prefix}${misplaced.key}`, misplaced.message);
  const cv = convict(buildSchema(), { env: {}, args: [] });
  const c = top.connection;
  cv.load({
    connection: { rotateBeforeMs: c.rotateBeforeMs, switchoverTimeoutMs: c.switchoverTimeoutMs, handshakeTimeoutMs: c.handshakeTimeoutMs, probeIntervalMs: c.probeIntervalMs, readThreads: c.readThreads, backoff: { ...c.backoff } },
    maintenance: { statusPollMs: top.maintenance.statusPollMs },
  });
  cv.load(feed);
  const raw = cv.getProperties() as RawConfig;
  const feedKeys = keys.filter((k) => (FEED_KEYS as readonly string[]).includes(k.key.split('.')[0]!));
  checkValues(raw, feedKeys, (key, message) => fail(`${prefix}${key}`, message));
  try {
    cv.validate({ allowed: 'strict', output: () => {} });
  } catch (err) {
    throw fromConvict(err, (key, message) => fail(`${prefix}${key}`, message));
  }
  return { ...raw, recorder: top.recorder, ledger: top.ledger, metrics: top.metrics, universe: top.universe, silence: top.silence, relay: top.relay, log: top.log, userData: top.userData, collector: top.collector, shard: top.shard, sinks: top.sinks, feeds: [] };
}

/** Resolve a feed's venue-dependent nulls and run the checks that need its venue. */
function checkedFeed(raw: RawConfig, universe: UniverseSpec | null, prefix: string, fail: (key: string, message: string) => ConfigError, env: NodeJS.ProcessEnv): Config {
  const venue = venues.get(raw.venue)!;
  const config = resolve(raw, venue, universe);
  if (universe !== null && venue.instruments === undefined) {
    const with_ = [...venues.values()].filter((v) => v.instruments !== undefined).map((v) => v.name);
    throw fail(`${prefix}symbols.from`, `${venue.name} has no instrument list feedkeeper can read yet: give a list of symbols (a universe works on ${with_.join(', ')})`);
  }
  const checks: Array<() => Finding> = [
    () => checkEndpoints(config),
    () => checkSymbols(config, venue),
    () => checkStreams(config, venue),
    () => checkLimits(config, venue),
    () => checkConnection(config, venue),
    () => (prefix === '' || prefix === 'feeds[0].' ? checkCredentials(config, env) : null),
    () => (prefix === '' || prefix === 'feeds[0].' ? checkRelay(config) : null),
    () => (prefix === '' || prefix === 'feeds[0].' ? checkScaleOut(config) : null),
  ];
  for (const check of checks) {
    const finding = check();
    if (finding) throw fail(/^(?:userData|sinks|shard|collector)\./.test(finding[0]) ? finding[0] : `${prefix}${finding[0]}`, finding[1]);
  }
  return config;
}

/**
 * Unknown keys, objects where the schema has a branch, and objects where it has a value, refused
 * file by file so the file is named. (convict would merge an object given for a value into keys
 * that do not exist and keep the default: `"symbols": {"from": "exchangeInfo"}` ran the 6 default
 * symbols.)
 */
function checkShape(file: ConfigFile, leaves: ReadonlyMap<string, string>, branches: Set<string>): void {
  const misplaced = objectForValue(file.data, leaves);
  if (misplaced !== null) throw new ConfigError(misplaced.key, `${misplaced.message} (in ${file.path})`);
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(obj)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      if (leaves.has(key)) continue;
      if (branches.has(key)) {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new ConfigError(key, `must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value} (in ${file.path})`);
        }
        walk(value as Record<string, unknown>, key);
        continue;
      }
      const hint = suggest(key, [...leaves.keys(), ...branches]);
      throw new ConfigError(key, `unknown key (in ${file.path})${hint ? `; did you mean ${hint}?` : ''}`);
    }
  };
  walk(file.data, '');
}

/**
 * The first object in `data` where the schema has a value (no value of the schema is an object):
 * its key, and the value's format saying what it should be. Null when there is none.
 */
function objectForValue(data: Record<string, unknown>, formats: ReadonlyMap<string, string>, prefix = ''): { key: string; message: string } | null {
  for (const [name, value] of Object.entries(data)) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const key = prefix === '' ? name : `${prefix}.${name}`;
    const format = formats.get(key);
    if (format === undefined) {
      const inner = objectForValue(value as Record<string, unknown>, formats, key);
      if (inner !== null) return inner;
      continue;
    }
    const p = getFormat(format)?.check(value);
    return { key: p?.at ? `${key}${p.at}` : key, message: p?.message ?? 'must not be an object' };
  }
  return null;
}

/**
 * A credential in a file others can read is a leaked credential: inline keys are accepted only from
 * a file of mode 0600 (or stricter). The environment (FEEDKEEPER_API_KEY / FEEDKEEPER_API_SECRET)
 * or a credentials file (userData.apiKeyFile) is the better place.
 */
function checkInlineSecrets(file: ConfigFile): void {
  const userData = file.data['userData'];
  if (typeof userData !== 'object' || userData === null) return;
  const u = userData as Record<string, unknown>;
  const present = (k: string): boolean => u[k] !== undefined && u[k] !== '';
  const key = present('apiSecret') ? 'userData.apiSecret' : present('apiKey') ? 'userData.apiKey' : null;
  if (key === null || (file.mode & 0o077) === 0) return;
  throw new ConfigError(
    key,
    `inline secrets need a config file of mode 0600 (no group or other access); ${file.path} is mode ${file.mode.toString(8).padStart(4, '0')}: ` +
      `run chmod 600 ${file.path}, or better, pass the credentials as FEEDKEEPER_API_KEY / FEEDKEEPER_API_SECRET`,
  );
}

function checkValues(raw: RawConfig, keys: KeyInfo[], fail: (key: string, message: string) => ConfigError): void {
  for (const info of keys) {
    const value = getPath(raw, info.key);
    if (value === null && info.nullable) continue;
    const format = getFormat(info.format);
    const p = format?.check(value);
    if (p) throw fail(p.at ? `${info.key}${p.at.startsWith('[') ? '' : '.'}${p.at}` : info.key, p.message);
  }
}

function fromConvict(err: unknown, fail: (key: string, message: string) => ConfigError): ConfigError {
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  let m = /^configuration param '([^']+)' not declared in the schema/.exec(first);
  if (m) return fail(m[1]!, 'unknown key');
  m = /^configuration param '([^']+)' missing from config/.exec(first);
  if (m) return fail(m[1]!, 'missing: did a file set its parent to something other than an object?');
  m = /^([\w.[\]]+): (.*?)(?:: value was .*)?$/.exec(first);
  if (m) return fail(m[1]!, m[2]!);
  return new ConfigError('config', first);
}

function resolve(raw: RawConfig, venue: Venue, universe: UniverseSpec | null): Config {
  const d = venueDefaults(venue);
  // endpoints.stream and .rest are bases that paths are appended to.
  const base = (u: string): string => u.replace(/\/+$/, '');
  return {
    venue: raw.venue,
    feeds: [],
    endpoints: {
      stream: base(raw.endpoints.stream ?? d.endpoints.stream),
      rest: base(raw.endpoints.rest ?? d.endpoints.rest),
      wsApi: raw.endpoints.wsApi ?? d.endpoints.wsApi,
    },
    symbols: universe === null ? raw.symbols.map((s) => s.toUpperCase()) : [],
    symbolsFrom: universe,
    streams: [...raw.streams],
    limits: {
      streamsPerConnection: raw.limits.streamsPerConnection ?? d.limits.streamsPerConnection,
      connectionAttempts: raw.limits.connectionAttempts ?? d.limits.connectionAttempts,
      connectionAttemptWindowMs: raw.limits.connectionAttemptWindowMs ?? d.limits.connectionAttemptWindowMs,
      messagesPerSecond: raw.limits.messagesPerSecond ?? d.limits.messagesPerSecond,
      streamsPerSubscribe: raw.limits.streamsPerSubscribe ?? d.limits.streamsPerSubscribe,
    },
    connection: {
      staleAfterMs: raw.connection.staleAfterMs ?? d.connection.staleAfterMs,
      maxLifetimeMs: raw.connection.maxLifetimeMs ?? d.connection.maxLifetimeMs,
      pingIntervalMs: raw.connection.pingIntervalMs ?? d.connection.pingIntervalMs,
      rotateBeforeMs: raw.connection.rotateBeforeMs,
      switchoverTimeoutMs: raw.connection.switchoverTimeoutMs,
      handshakeTimeoutMs: raw.connection.handshakeTimeoutMs,
      probeIntervalMs: raw.connection.probeIntervalMs,
      readThreads: raw.connection.readThreads,
      backoff: { ...raw.connection.backoff },
    },
    recorder: { ...raw.recorder },
    // Beside the ledger by default, so two daemons with their own ledgers never share a checkpoint.
    ledger: { path: raw.ledger.path, statePath: raw.ledger.statePath ?? defaultStatePath(raw.ledger.path) },
    maintenance: {
      windows: (raw.maintenance.windows ?? d.maintenance.windows).map((w) => ({
        start: w.start,
        end: w.end,
        reason: w.reason ?? '',
      })),
      statusPollMs: raw.maintenance.statusPollMs,
    },
    health: { silentAfterMs: raw.health.silentAfterMs ?? d.health.silentAfterMs },
    metrics: { ...raw.metrics, reloadAllow: [...raw.metrics.reloadAllow] },
    universe: { ...raw.universe },
    silence: { ...raw.silence },
    backfill: { ...raw.backfill, streams: [...raw.backfill.streams] },
    books: { ...raw.books, symbols: raw.books.symbols.map((s) => s.toUpperCase()) },
    relay: { ...raw.relay, allow: [...raw.relay.allow] },
    log: { ...raw.log },
    userData: { ...raw.userData, events: [...raw.userData.events] },
    collector: { id: raw.collector.id ?? defaultCollectorId() },
    shard: { ...raw.shard },
    sinks: { nats: { ...raw.sinks.nats, servers: [...raw.sinks.nats.servers] } },
  };
}

/** collector.id when unset: the host name, cut to the characters a collector id may hold. */
export function defaultCollectorId(): string {
  return hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'feedkeeper';
}

/** `./data/ledger.ndjson` → `./data/ledger.state.json`. */
export function defaultStatePath(ledgerPath: string): string {
  const ext = extname(ledgerPath);
  return `${dirname(ledgerPath)}/${basename(ledgerPath, ext)}.state.json`;
}

function withoutKey(data: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...data };
  delete copy[key];
  return copy;
}

function sourceOf(sources: ReadonlyMap<string, string>, key: string): string {
  const s = sources.get(key);
  return s === undefined ? '' : ` (${s})`;
}

function getPath(obj: unknown, key: string): unknown {
  let node = obj;
  for (const p of key.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, p)) return undefined;
    node = (node as Record<string, unknown>)[p];
  }
  return node;
}

function hasPath(obj: unknown, key: string): boolean {
  let node = obj;
  for (const p of key.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, p)) return false;
    node = (node as Record<string, unknown>)[p];
  }
  return true;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
