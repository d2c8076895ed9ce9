import type { UniverseSpec } from '../universe/spec.js';
import type { VenueName } from '../venues/types.js';

/**
 * The validated, frozen configuration. Produced once at start by loadConfig() (src/config/load.ts);
 * every key is documented in docs/configuration.md. Venue-dependent defaults (limits) are already
 * resolved here: a `null` in the file means "the venue's figure".
 */
export interface Config {
  venue: VenueName;
  /**
   * Every feed (venue) the daemon runs, each a whole Config of its own venue with the shared keys
   * (recorder, ledger, metrics, log, userData) of the top level. Always at least one: the top-level
   * form is the single feed. A feed's own `feeds` is empty. The top-level venue keys are feeds[0]'s.
   */
  feeds: Config[];
  endpoints: {
    /** Base WebSocket URL, e.g. wss://stream.binance.com:9443 (the combined path is appended). */
    stream: string;
    /** Base REST URL, e.g. https://api.binance.com */
    rest: string;
    /** WebSocket API URL for spot user data, e.g. wss://ws-api.binance.com:443/ws-api/v3 */
    wsApi: string;
  };
  /** Upper-case symbols, e.g. BTCUSDT. Empty until resolved where symbolsFrom is set (src/universe/resolve.ts). */
  symbols: string[];
  /** `symbols` given as a universe (its object form), or null for a list. */
  symbolsFrom: UniverseSpec | null;
  /** Stream types applied to every symbol, e.g. trade, bookTicker, depth@100ms, kline_1m. */
  streams: string[];
  limits: {
    streamsPerConnection: number;
    connectionAttempts: number;
    connectionAttemptWindowMs: number;
    messagesPerSecond: number;
    /** Streams named in one SUBSCRIBE message. */
    streamsPerSubscribe: number;
  };
  connection: {
    /** No frame of any kind (data, ping, pong) for this long = dead: terminate and replace. */
    staleAfterMs: number;
    maxLifetimeMs: number;
    /** The client heartbeat's interval (Venue.clientPing); 0 on venues whose server pings. */
    pingIntervalMs: number;
    /** Open the replacement this long before maxLifetimeMs. */
    rotateBeforeMs: number;
    /** How long a replacement may take to take over every stream before the old one is closed anyway. */
    switchoverTimeoutMs: number;
    /** Time allowed for the WebSocket handshake. */
    handshakeTimeoutMs: number;
    /** While upgrades are refused with 503, one connection probes this often; the others wait for it. */
    probeIntervalMs: number;
    /** Threads reading the sockets, shared by all connections; 0: the main thread reads them. */
    readThreads: number;
    backoff: {
      initialMs: number;
      maxMs: number;
      multiplier: number;
    };
  };
  recorder: {
    enabled: boolean;
    dir: string;
    /** Bytes of recorded lines held in memory while the disk is slow; past this, messages are dropped and counted. */
    maxBufferBytes: number;
    flushIntervalMs: number;
    fsyncIntervalMs: number;
    /** With the buffer half full, the sockets stop reading for at most this long (0: never). */
    holdReadsMs: number;
    /** Period of one file (divides a day): default one UTC hour. */
    rotateEveryMs: number;
    /** Closed files compressed in the background (docs/recording.md, "Compression"). */
    compress: 'gzip' | 'none';
    /** zlib level 1-9. */
    compressLevel: number;
  };
  ledger: {
    path: string;
    /** Where last-seen IDs are checkpointed for daemon_down gaps. */
    statePath: string;
  };
  maintenance: {
    windows: Array<{ start: string; end: string; reason: string }>;
    /** Poll GET /sapi/v1/system/status this often (0 = never). */
    statusPollMs: number;
  };
  health: {
    /** /readyz fails when an open connection has had no frame for this long (default 25 s: just over Binance's 20 s ping). */
    silentAfterMs: number;
  };
  metrics: {
    enabled: boolean;
    host: string;
    port: number;
    /** Serve POST /admin/reload (loopback and reloadAllow only). */
    reload: boolean;
    reloadAllow: string[];
  };
  /** Where `symbols` is a universe (symbolsFrom): how often the instrument list is fetched again. */
  universe: {
    refreshMs: number;
  };
  /** Per-stream silence on a live connection (src/connection/silence-watch.ts). */
  silence: {
    afterMs: number;
    /** The threshold is at least this many cadences (StreamType.expectedIntervalMs). */
    cadences: number;
  };
  /** REST backfill of missed trade/aggTrade ranges (docs/recovery.md). */
  backfill: {
    enabled: boolean;
    /** Stream types: trade, aggTrade. */
    streams: string[];
    /** Request weight per minute the backfill may spend. */
    maxWeightPerMinute: number;
    /** At start, gaps that ended longer ago than this are left alone. */
    maxAgeMs: number;
  };
  /** Local order books from the diff-depth streams (docs/recovery.md). */
  books: {
    enabled: boolean;
    /** Upper-case symbols; ["*"]: every symbol with a diff-depth stream. */
    symbols: string[];
    snapshotLimit: number;
    /** 0: no book snapshots in the recording. */
    snapshotEveryMs: number;
  };
  /** The Binance-compatible local relay (docs/relay.md): bots share the daemon's connections. */
  relay: {
    enabled: boolean;
    host: string;
    port: number;
    maxClients: number;
    clientBufferBytes: number;
    maxPayloadBytes: number;
    messagesPerSecond: number;
    pingIntervalMs: number;
    pongTimeoutMs: number;
    lingerMs: number;
    maxExtraStreams: number;
    allow: string[];
  };
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  };
  /** This daemon among several publishing into one stream (docs/scale-out.md). */
  collector: {
    /** `Feedkeeper-Collector` header and gap Msg-Ids; null in the file: the host name. */
    id: string;
  };
  /** This daemon's part of the symbols: shard.index of shard.count (rendezvous hashing, src/plan/shard.ts). */
  shard: {
    index: number;
    count: number;
  };
  /** Secondary outputs beside the recording (src/sinks). */
  sinks: {
    /** NATS JetStream (docs/scale-out.md). */
    nats: {
      enabled: boolean;
      servers: string[];
      stream: string;
      subjectPrefix: string;
      duplicateWindowMs: number;
      createStream: boolean;
      /** Stream retention when createStream creates it (0: no age limit). */
      maxAgeMs: number;
      /** Bytes of messages not yet acknowledged (in flight and waiting); past this, messages are dropped. */
      maxBufferBytes: number;
      /** Publishes awaiting their ack at once. */
      maxInflight: number;
      ackTimeoutMs: number;
      reconnectWaitMs: number;
      /** At shutdown, wait this long at most for the buffer to be acknowledged. */
      drainTimeoutMs: number;
      /** A NATS .creds file (JWT and NKey seed); never logged. */
      credsFile: string;
      /** /readyz fails while the broker is unreachable. */
      requiredForReady: boolean;
    };
  };
  userData: {
    enabled: boolean;
    /** node-cron expression (five or six fields) for the listen key keepalive. */
    keepaliveCron: string;
    /** Files holding the API key and secret (systemd LoadCredential, Docker secrets). */
    apiKeyFile: string;
    apiSecretFile: string;
    /** Inline credentials: refused unless the config file is mode 0600. */
    apiKey: string;
    apiSecret: string;
    /** Futures private stream events, e.g. ORDER_TRADE_UPDATE/ACCOUNT_UPDATE. */
    events: string[];
  };
}
