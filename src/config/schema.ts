import type convict from 'convict';
import type { Venue, VenueName } from '../venues/index.js';
import type { Config } from './types.js';
import { getFormat, type EnvKind, type FormatName } from './formats.js';

/**
 * The configuration schema: every key, its default and its format. docs/configuration.md documents
 * each key (test/config-docs.test.ts fails when one is missing there).
 *
 * A `null` default means "the venue's figure": loadConfig() resolves it from src/venues (or from
 * the venue's optional members), so a spot config and a USD-M config both get the right limits without
 * spelling them out.
 */

type Nullable<T> = { [K in keyof T]: T[K] | null };

/** The configuration as convict holds it: venue-dependent keys may still be null. */
export interface RawConfig extends Omit<Config, 'endpoints' | 'limits' | 'connection' | 'maintenance' | 'health' | 'feeds' | 'ledger' | 'collector' | 'symbolsFrom'> {
  collector: { id: string | null };
  /** Each feed's own keys (FEED_KEYS), validated by the schema in load.ts. */
  feeds: Array<Record<string, unknown>>;
  endpoints: Nullable<Config['endpoints']>;
  limits: Nullable<Config['limits']>;
  connection: Omit<Config['connection'], 'staleAfterMs' | 'maxLifetimeMs' | 'pingIntervalMs'> &
    Nullable<Pick<Config['connection'], 'staleAfterMs' | 'maxLifetimeMs' | 'pingIntervalMs'>>;
  maintenance: { windows: Config['maintenance']['windows'] | null; statusPollMs: number };
  health: Nullable<Config['health']>;
  ledger: Omit<Config['ledger'], 'statePath'> & { statePath: string | null };
}

/** Margin over the venue's server ping interval before a silent connection counts as dead. */
export const STALE_MARGIN_MS = 10_000;
/** Margin over the venue's server ping interval before a silent connection makes /readyz fail. */
export const SILENT_MARGIN_MS = 5_000;

/** Venue-dependent defaults, for the keys whose schema default is null. */
export function venueDefaults(venue: Venue) {
  return {
    endpoints: { stream: venue.endpoints.stream, rest: venue.endpoints.rest, wsApi: venue.wsApiUrl ?? venue.endpoints.stream },
    limits: {
      streamsPerConnection: venue.limits.streamsPerConnection,
      connectionAttempts: venue.limits.connectionAttempts,
      connectionAttemptWindowMs: venue.limits.connectionAttemptWindowMs,
      messagesPerSecond: venue.limits.messagesPerSecond,
      streamsPerSubscribe: venue.limits.streamsPerSubscribe,
    },
    connection: {
      // The server pings on a fixed interval, so a healthy connection is never silent for longer.
      staleAfterMs: venue.limits.serverPingIntervalMs + STALE_MARGIN_MS,
      maxLifetimeMs: venue.limits.maxLifetimeMs,
      // 0: the server pings (Binance); the client sends no heartbeat of its own.
      pingIntervalMs: venue.clientPing?.everyMs ?? 0,
    },
    maintenance: { windows: (venue.maintenanceWindows ?? []).map((w) => ({ ...w })) },
    health: { silentAfterMs: venue.limits.serverPingIntervalMs + SILENT_MARGIN_MS },
  };
}

interface Leaf<T> extends convict.SchemaObj<T> {
  doc: string;
  format: FormatName;
}

function leaf<T>(format: FormatName, def: T, doc: string, extra: { nullable?: boolean; sensitive?: boolean } = {}): Leaf<T> {
  return { doc, format, default: def, ...extra };
}

function venueLeaf<T>(format: FormatName, doc: string): Leaf<T> {
  return { doc, format, default: null, nullable: true };
}

/** A fresh schema object (convict keeps references into it). */
export function buildSchema(): convict.Schema<RawConfig> {
  return {
    venue: leaf('fk-venue', 'binance-spot' as VenueName, 'Exchange venue of the single feed (see docs/venues.md); with `feeds`, each feed names its own.'),
    feeds: leaf('fk-feeds', [] as Array<Record<string, unknown>>, 'Several venues in one daemon: a list of {venue, symbols, streams, endpoints, limits, connection, maintenance, health}.'),
    endpoints: {
      stream: venueLeaf('fk-ws-url', 'Base WebSocket URL of the market streams (null: the venue production URL).'),
      rest: venueLeaf('fk-http-url', 'Base REST URL (null: the venue production URL).'),
      wsApi: venueLeaf('fk-ws-url', 'WebSocket API URL for spot user data (null: the venue production URL).'),
    },
    symbols: leaf('fk-symbols', ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT', 'DOGEUSDT'], 'Symbols to follow: a list, or a universe {"from": "exchangeInfo", "quoteAssets", "status", "permissions", "contractTypes", "include", "exclude", "max"}.'),
    streams: leaf('fk-streams', ['trade', 'bookTicker'], 'Stream types subscribed for every symbol.'),
    limits: {
      streamsPerConnection: venueLeaf('fk-positive-int', 'Streams per connection (null: the venue limit).'),
      connectionAttempts: venueLeaf('fk-positive-int', 'Connection attempts allowed per window per IP (null: the venue limit).'),
      connectionAttemptWindowMs: venueLeaf('fk-positive-int', 'The attempt window (null: the venue window).'),
      messagesPerSecond: venueLeaf('fk-positive-int', 'Messages the client may send per connection per second (null: the venue limit).'),
      streamsPerSubscribe: venueLeaf('fk-positive-int', 'Streams named in one subscribe message (null: the venue figure; Bybit spot allows 10).'),
    },
    connection: {
      staleAfterMs: venueLeaf('fk-positive-int', 'Silence after which a connection counts as dead (null: server ping interval + 10 s).'),
      maxLifetimeMs: venueLeaf('fk-positive-int', 'Lifetime after which the server cuts a connection (null: the venue figure).'),
      pingIntervalMs: venueLeaf('fk-positive-int', 'Client heartbeat interval on venues whose server does not ping (null: the venue figure: Bybit 20 s, OKX 20 s idle).'),
      rotateBeforeMs: leaf('fk-positive-int', 300_000, 'Open the replacement this long before maxLifetimeMs.'),
      switchoverTimeoutMs: leaf('fk-positive-int', 10_000, 'Longest a switch-over may take before the old connection is closed anyway.'),
      handshakeTimeoutMs: leaf('fk-positive-int', 10_000, 'Time allowed for the WebSocket handshake.'),
      readThreads: leaf('fk-read-threads', 0, 'Threads that read the sockets, shared by all connections (0: the main thread reads them).'),
      probeIntervalMs: leaf('fk-positive-int', 1000, 'While upgrades are refused with 503 (maintenance), one connection probes this often and the others wait for it.'),
      backoff: {
        initialMs: leaf('fk-positive-int', 1000, 'First reconnect delay.'),
        maxMs: leaf('fk-positive-int', 60_000, 'Longest reconnect delay.'),
        multiplier: leaf('fk-multiplier', 2, 'Growth of the delay per failed attempt.'),
      },
    },
    recorder: {
      enabled: leaf('fk-boolean', true, 'Record every message.'),
      dir: leaf('fk-non-empty-string', './data/recordings', 'Directory of the recordings.'),
      maxBufferBytes: leaf('fk-positive-int', 67_108_864, 'Bytes held in memory while the disk is slow.'),
      flushIntervalMs: leaf('fk-positive-int', 100, 'Write the buffer this often.'),
      fsyncIntervalMs: leaf('fk-positive-int', 1000, 'fsync the recording this often.'),
      holdReadsMs: leaf('fk-hold-reads-ms', 2000, 'With the buffer half full, stop reading the sockets for at most this long while the disk catches up (0: never; drop when full).'),
      rotateEveryMs: leaf('fk-rotate-every-ms', 3_600_000, 'Period of one recording file (divides a day; default one UTC hour).'),
      compress: leaf('fk-compress', 'gzip' as 'gzip' | 'none', 'Compress closed files in the background: gzip or none.'),
      compressLevel: leaf('fk-compress-level', 6, 'gzip level, 1 (fastest) to 9 (smallest).'),
    },
    ledger: {
      path: leaf('fk-non-empty-string', './data/ledger.ndjson', 'The gap ledger (NDJSON).'),
      statePath: { doc: 'Checkpoint of last-seen IDs (null: beside ledger.path, <ledger>.state.json).', format: 'fk-non-empty-string', default: null, nullable: true } as Leaf<string | null>,
    },
    maintenance: {
      windows: venueLeaf('fk-windows', 'Announced maintenance windows (null: the venue calendar).'),
      statusPollMs: leaf('fk-nat', 60_000, 'Poll the system status endpoint this often (0 = never).'),
    },
    health: {
      silentAfterMs: venueLeaf('fk-positive-int', 'Silence after which /readyz fails (null: server ping interval + 5 s).'),
    },
    metrics: {
      enabled: leaf('fk-boolean', true, 'Serve Prometheus metrics.'),
      host: leaf('fk-non-empty-string', '127.0.0.1', 'Metrics listen address.'),
      port: leaf('fk-port', 9464, 'Metrics listen port.'),
      reload: leaf('fk-boolean', true, 'Serve POST /admin/reload (re-read the config files, as SIGHUP does).'),
      reloadAllow: leaf('fk-cidrs', [] as string[], 'Address ranges besides loopback allowed to POST /admin/reload.'),
    },
    universe: {
      refreshMs: leaf('fk-positive-int', 600_000, 'Fetch the instrument list this often where symbols is a universe ({"from": "exchangeInfo"}).'),
    },
    silence: {
      afterMs: leaf('fk-positive-int', 15_000, 'A stream with a fixed cadence silent this long (and at least silence.cadences of its cadence) while its connection delivers others is reconciled and resubscribed.'),
      cadences: leaf('fk-positive-int', 10, 'The silence threshold is at least this many of the stream type\'s cadence (Bybit orderbook.1: 3 s, so 30 s).'),
    },
    backfill: {
      enabled: leaf('fk-boolean', false, 'Fetch the exact missed ranges of trade/aggTrade gaps over REST into the recording (docs/recovery.md).'),
      streams: leaf('fk-streams', ['trade', 'aggTrade'], 'Stream types backfilled (where the venue serves them over REST).'),
      maxWeightPerMinute: leaf('fk-positive-int', 1200, "Request weight per minute the backfill may spend (of the IP's REQUEST_WEIGHT, 6000 on spot)."),
      maxAgeMs: leaf('fk-positive-int', 86_400_000, 'At start, ranges of gaps that ended longer ago than this are not backfilled.'),
    },
    books: {
      enabled: leaf('fk-boolean', false, 'Keep local order books from the diff-depth streams, resynced per symbol (docs/recovery.md).'),
      symbols: leaf('fk-symbols', ['*'], 'Symbols with a local book (["*"]: every symbol with a diff-depth stream).'),
      snapshotLimit: leaf('fk-positive-int', 1000, 'Levels a side of the REST depth snapshot a book starts from.'),
      snapshotEveryMs: leaf('fk-nat', 60_000, 'Write every synced book to the recording this often ("src":"book"; 0: never).'),
    },
    relay: {
      enabled: leaf('fk-boolean', false, 'Serve the Binance-compatible local relay (docs/relay.md).'),
      host: leaf('fk-non-empty-string', '127.0.0.1', 'Relay listen address (beyond loopback only with relay.allow).'),
      port: leaf('fk-port', 9443, 'Relay listen port (0: any free port).'),
      maxClients: leaf('fk-positive-int', 256, 'Relay clients at once.'),
      clientBufferBytes: leaf('fk-positive-int', 4_194_304, 'Bytes waiting to be sent to one client before it is closed (1008) as too slow.'),
      maxPayloadBytes: leaf('fk-positive-int', 65_536, 'Largest message a client may send.'),
      messagesPerSecond: leaf('fk-positive-int', 5, "Messages a client may send per second (Binance's 5): past it the client is closed (1008)."),
      pingIntervalMs: leaf('fk-positive-int', 20_000, 'The relay pings its clients this often.'),
      pongTimeoutMs: leaf('fk-positive-int', 60_000, 'A client that does not answer a ping within this is closed.'),
      lingerMs: leaf('fk-nat', 60_000, 'A stream subscribed for relay clients is unsubscribed upstream this long after its last client left.'),
      maxExtraStreams: leaf('fk-nat', 200, 'Streams beyond the config the relay may subscribe upstream, per venue.'),
      allow: leaf('fk-cidrs', [] as string[], 'Address ranges besides loopback allowed to connect to the relay.'),
    },
    log: {
      level: leaf('fk-log-level', 'info' as Config['log']['level'], 'Log level.'),
    },
    collector: {
      id: { doc: 'This collector in a redundant deployment: the Feedkeeper-Collector header (null: the host name).', format: 'fk-collector-id', default: null, nullable: true } as Leaf<string | null>,
    },
    shard: {
      index: leaf('fk-nat', 0, 'This daemon\'s shard of the symbols (0 .. shard.count - 1).'),
      count: leaf('fk-positive-int', 1, 'Shards the symbols are split into (one daemon, one IP each).'),
    },
    sinks: {
      nats: {
        enabled: leaf('fk-boolean', false, 'Publish every message and ledger entry to NATS JetStream (docs/scale-out.md).'),
        servers: leaf('fk-nats-urls', ['nats://127.0.0.1:4222'], 'NATS server URLs (no credentials in them).'),
        stream: leaf('fk-nats-name', 'FEEDKEEPER', 'The JetStream stream.'),
        subjectPrefix: leaf('fk-nats-prefix', 'md', 'First subject token(s): <prefix>.<venue>.<stream type>.<SYMBOL>.'),
        duplicateWindowMs: leaf('fk-positive-int', 120_000, 'The stream\'s Nats-Msg-Id de-duplication window.'),
        createStream: leaf('fk-boolean', true, 'Create the stream (file storage, duplicateWindowMs) or check and update its window.'),
        maxAgeMs: leaf('fk-nat', 0, 'Retention of a stream createStream creates (0: no age limit).'),
        maxBufferBytes: leaf('fk-positive-int', 67_108_864, 'Bytes not yet acknowledged by the broker; past this, messages are dropped (sink_dropped).'),
        maxInflight: leaf('fk-positive-int', 4096, 'Publishes awaiting their ack at once.'),
        ackTimeoutMs: leaf('fk-positive-int', 5000, 'A publish not acknowledged within this is sent again.'),
        reconnectWaitMs: leaf('fk-positive-int', 1000, 'Pause between reconnect attempts to the broker.'),
        drainTimeoutMs: leaf('fk-nat', 2000, 'At shutdown, wait at most this long for the buffer to be acknowledged.'),
        credsFile: leaf('fk-string', '', 'NATS .creds file (JWT and NKey seed); or FEEDKEEPER_NATS_TOKEN, FEEDKEEPER_NATS_USER/FEEDKEEPER_NATS_PASSWORD.'),
        requiredForReady: leaf('fk-boolean', false, '/readyz fails while the broker is unreachable.'),
      },
    },
    userData: {
      enabled: leaf('fk-boolean', false, 'Follow the account user data stream.'),
      keepaliveCron: leaf('fk-cron', '0 */30 * * * *', 'node-cron schedule of the listen key keepalive.'),
      apiKeyFile: leaf('fk-string', '', 'File holding the API key.'),
      apiSecretFile: leaf('fk-string', '', 'File holding the API secret.'),
      apiKey: leaf('fk-secret', '', 'Inline API key (config file must be mode 0600).', { sensitive: true }),
      apiSecret: leaf('fk-secret', '', 'Inline API secret (config file must be mode 0600).', { sensitive: true }),
      events: leaf('fk-events', ['ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE'], 'Futures private stream events.'),
    },
  };
}

/** `limits.streamsPerConnection` → `FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION`. */
export function envName(key: string): string {
  return `FEEDKEEPER_${key
    .split('.')
    .map((seg) => seg.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('_')}`;
}

/**
 * Environment variables feedkeeper reads that are not config keys: the recommended source of the
 * API credentials, read by src/userdata (they never enter Config).
 */
export const NON_CONFIG_ENV = ['FEEDKEEPER_API_KEY', 'FEEDKEEPER_API_SECRET', 'FEEDKEEPER_NATS_TOKEN', 'FEEDKEEPER_NATS_USER', 'FEEDKEEPER_NATS_PASSWORD'] as const;

export interface KeyInfo {
  /** Dotted path, e.g. `limits.streamsPerConnection`. */
  key: string;
  env: string;
  format: FormatName;
  envKind: EnvKind;
  /** null: the venue's figure. */
  default: unknown;
  doc: string;
  nullable: boolean;
  sensitive: boolean;
}

function isLeaf(node: unknown): node is Leaf<unknown> {
  return typeof node === 'object' && node !== null && 'default' in node;
}

/** Every leaf key of the schema, in schema order. */
export function configKeys(): KeyInfo[] {
  const out: KeyInfo[] = [];
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const [name, child] of Object.entries(node)) {
      const key = prefix === '' ? name : `${prefix}.${name}`;
      if (isLeaf(child)) {
        const format = getFormat(child.format);
        if (!format) throw new Error(`schema key ${key} has unknown format ${child.format}`);
        out.push({
          key,
          env: envName(key),
          format: child.format,
          envKind: format.envKind,
          default: child.default,
          doc: child.doc,
          nullable: child.nullable === true,
          sensitive: child.sensitive === true,
        });
      } else {
        walk(child as Record<string, unknown>, key);
      }
    }
  };
  walk(buildSchema() as unknown as Record<string, unknown>, '');
  return out;
}

/** The branch keys (objects) of the schema, e.g. `limits`, `connection.backoff`. */
export function branchKeys(): Set<string> {
  const out = new Set<string>();
  for (const { key } of configKeys()) {
    const parts = key.split('.');
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join('.'));
  }
  return out;
}
