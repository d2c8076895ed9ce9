/**
 * The venue seam: everything feedkeeper needs to know about one exchange venue. Each venue lives in
 * its own folder under src/venues/<venue>/ and exports one object implementing `Venue`; the
 * registry (src/venues/index.ts) lists them. Session, worker, supervisor, router, recorder and
 * ledger only ever talk to a venue through this interface (docs/venues.md, "Adding a venue").
 */
import type { GapCause, Missed } from '../ledger/types.js';

/** A venue's registry name, e.g. `binance-spot`, `bybit-linear`, `okx`. */
export type VenueName = string;

/** How a stream's messages are ordered and whether a skipped ID means a missed message. */
export type SequenceRule =
  /**
   * IDs increase by exactly 1 per message (Binance trade `t`, aggTrade `a`; OKX trades `tradeId`,
   * where one frame covers `count` IDs): a jump is a gap with an exact range and count.
   */
  | { kind: 'contiguous'; field: string }
  /** Each event covers [first;last] and the next first = this last + 1 (Binance spot depth U/u). */
  | { kind: 'range'; field: string }
  /**
   * Each event names the previous event's last ID (`prev`): Binance futures depth `pu`, OKX books
   * `prevSeqId`. IDs step arbitrarily; a broken link is a gap whose count is unknown.
   */
  | { kind: 'linked'; field: string }
  /**
   * Increasing, but jumps are normal (bookTicker `u`, partial depth `lastUpdateId`, event time).
   * `ties`: several messages may carry the same key (Bybit trades share a `T`): among those,
   * duplicates are told by their bytes.
   */
  | { kind: 'ordered'; field: string; ties?: boolean }
  /** No order key (user-data events: two may share one `E`): duplicates are told by their bytes. */
  | { kind: 'none' };

/** `FrameKeys.flags`: the message starts a new sequence epoch (a book snapshot, Bybit `u`=1). */
export const KEY_RESET = 1;

/**
 * Scratch space a venue's reader fills for one frame: no object per message. NaN where absent.
 */
export interface FrameKeys {
  /** Offset of the payload the stream's key reader starts at (Binance: the envelope's `data`). */
  from: number;
  first: number;
  last: number;
  prev: number;
  /** Exchange event time in ms (for the event-lag histogram), NaN when the frame has none. */
  time: number;
  flags: number;
}

/**
 * Reads one frame's sequence keys into `out` (first, last, prev, time, flags) from `out.from`
 * onwards, without JSON.parse. False when a key the stream's rule needs is missing.
 */
export type KeyReader = (frame: Buffer, out: FrameKeys) => boolean;

export interface StreamType {
  /** As written in config, e.g. `trade`, `depth@100ms`, `publicTrade`, `books`. */
  type: string;
  /** Family, e.g. `trade`, `depth`, `depthPartial`, `kline`, `book`, `ticker`. */
  family: string;
  sequence: SequenceRule;
  /** The usual longest silence of an active market's stream, for readiness (0 = unknown). */
  expectedIntervalMs: number;
  /**
   * The path that serves it, appended to endpoints.stream: Binance spot `/stream`; USD-M
   * `/public/stream` or `/market/stream`; Bybit `/v5/public/spot`; OKX `/ws/v5/public`. Streams on
   * different routes never share a connection.
   */
  route: string;
  /** Reads the sequence keys of one of its frames. */
  keys: KeyReader;
}

export interface VenueLimits {
  /** Streams (topics) per connection. */
  streamsPerConnection: number;
  /** Connection attempts per window per IP. */
  connectionAttempts: number;
  connectionAttemptWindowMs: number;
  /** What the client may send on one connection per second (pongs, pings, control messages). */
  messagesPerSecond: number;
  /** Streams named in one subscribe message (Bybit spot: 10 args). */
  streamsPerSubscribe: number;
  /** Subscribe/unsubscribe requests per connection per hour (OKX 480, Bitget 240); 0 = no limit. */
  subscribesPerHour: number;
  /** The server cuts a connection after this (0 = no documented lifetime). */
  maxLifetimeMs: number;
  /**
   * How often something arrives on a healthy connection at the latest: the server's ping interval
   * (Binance), or the client's own ping interval (Bybit, OKX) whose pong comes back. Stale and
   * readiness defaults derive from it.
   */
  serverPingIntervalMs: number;
  /** The server's deadline for an answer to its ping, or for the client's next ping. */
  pongTimeoutMs: number;
}

/** The client heartbeat of a venue whose server does not ping (Bybit, OKX, KuCoin, Bitget, Gate). */
export interface ClientPing {
  /** Send the ping this often (OKX: when idle this long). */
  everyMs: number;
  /** Only when nothing was received for everyMs (OKX): a busy connection needs no ping. */
  whenIdle: boolean;
  /** The text to send (a fresh one each time: Bybit's carries a req_id). */
  text(): string;
}

/** What a market protocol may do with its socket (implemented by Session). */
export interface ProtocolIO {
  /** Session id, e.g. `c0#3`, for logs. */
  readonly id: string;
  /** Send a text message, paced by the connection's outgoing limiter; `kind` labels the metric. */
  send(text: string, kind: string): void;
  /** A data frame: hand it to the router (the hot path). */
  data(frame: Buffer, now: number): void;
  /** A frame nobody understands: counted and logged by the router, never recorded as data. */
  malformed(frame: Buffer, why: string): void;
  /** The exchange announced this connection will close soon (serverShutdown, OKX 64008). */
  shutdownNotice(detail: string): void;
  /** An unexpected but well-formed control message (debug log). */
  unexpected(frame: Buffer): void;
  /**
   * The venue's connection-wide sequence skipped messages (Coinbase `sequence_num`: one counter for
   * every channel and product of the connection). Which streams the missed messages belonged to is
   * unknowable, so every stream of this connection gets a `sequence` gap carrying `missed` (the
   * connection's numbers and count). Always set by the session; optional so that a test double
   * need not implement it.
   */
  connectionGap?(missed: Missed, detail: string): void;
}

/** The per-connection protocol of a venue's market streams. */
export interface MarketProtocol {
  /** The URL to dial (may fetch a token first). Never logged: it may carry a token. */
  url(): string | Promise<string>;
  /** After the upgrade: subscribe what the URL did not; resolves once the exchange confirmed. */
  subscribe(io: ProtocolIO): Promise<void>;
  /** Every frame the socket delivers: data to io.data(), the rest handled here. */
  onFrame(io: ProtocolIO, frame: Buffer, isBinary: boolean, now: number): void;
  /**
   * Live changes on the open connection (the daemon's one way to change subscriptions: relay
   * clients, the universe). Resolve once the exchange confirmed; absent where not supported yet.
   */
  add?(io: ProtocolIO, streams: readonly string[]): Promise<void>;
  remove?(io: ProtocolIO, streams: readonly string[]): Promise<void>;
  /**
   * The exchange's own list of this connection's subscriptions (Binance LIST_SUBSCRIPTIONS), to
   * reconcile a stream that went silent; absent where the venue cannot list them (then the stream
   * is resubscribed directly).
   */
  list?(io: ProtocolIO): Promise<string[]>;
  /** The connection ended: fail what still waits for a reply. */
  closed(err: Error): void;
  /** Subscribe requests sent on this connection (OKX and Bitget count them per hour). */
  readonly requestsSent: number;
  /**
   * The client ping interval the exchange set for this connection, known once url() resolved
   * (KuCoin's bullet reply `pingInterval`): the session pings at the smaller of it and
   * connection.pingIntervalMs. Absent: connection.pingIntervalMs alone.
   */
  readonly pingIntervalMs?: number;
}

/** What a venue needs to build a connection's protocol. */
export interface ProtocolOptions {
  /** endpoints.stream without a trailing slash. */
  base: string;
  /**
   * endpoints.rest without a trailing slash: KuCoin fetches its connection token there (the
   * supervisor always sets it; a protocol that needs it fails its url() without it).
   */
  rest?: string;
  /** The route (StreamType.route) of the connection's streams. */
  path: string;
  /** Wire names of the connection's streams (Venue.streamName). */
  streams: readonly string[];
  streamsPerSubscribe: number;
  /** A subscribe reply later than this fails the attempt. */
  replyTimeoutMs: number;
  clock: { setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout>; clearTimeout(t: ReturnType<typeof setTimeout> | undefined): void };
}

/**
 * Finds the stream a data frame belongs to, without JSON.parse: returns its canonical id (the one the
 * ledger, metrics and recording use) and sets `out.from`; null when the frame is not a data frame of
 * this venue.
 */
export type StreamReader = (frame: Buffer, out: FrameKeys) => string | null;

/** Where a stream name sits in a frame: bytes [start, end). */
export interface NameSpan {
  start: number;
  end: number;
  /**
   * FNV-1a of the name's bytes (src/pipeline/stream-table.ts hashBytes) when the reader computed it
   * while finding the name's end, else -1: the router's lookup then hashes the bytes itself.
   */
  hash: number;
}

/**
 * The hot path's alternative to StreamReader: where the stream id's bytes sit in the frame (`span`)
 * and `out.from`, without making a string; false when the frame is not a data frame of this venue.
 * For venues whose frames carry the canonical id verbatim (Binance's combined envelope); the router
 * looks the bytes up in its StreamTable (src/pipeline/stream-table.ts).
 */
export type StreamSpanReader = (frame: Buffer, out: FrameKeys, span: NameSpan) => boolean;

/**
 * How a recorded line holds a frame: `{"recv":N,"venue":V,"stream":S,"data":<payload>}`. A venue
 * whose frame already is `{"stream":S,"data":<payload>}` (Binance's combined envelope) keeps it and
 * only gains `recv` and `venue` (`envelope`); the others get the whole frame under `data` (`wrap`).
 */
export type RecordingShape = 'envelope' | 'wrap';

/** One tradable instrument as the venue's instrument list describes it (src/universe/). */
export interface Instrument {
  symbol: string;
  /** The venue's status word, upper-case: `TRADING`, `BREAK`, `HALT`, `PENDING_TRADING`, `SETTLING`... */
  status: string;
  quoteAsset: string;
  /** Spot: the permissions any of its permission sets grants (`SPOT`, `MARGIN`...); futures: none. */
  permissions: string[];
  /** Futures: `PERPETUAL`, `CURRENT_QUARTER`...; spot: null. */
  contractType: string | null;
}

/** Where a venue lists its instruments, for a universe (`symbols: {"from": "exchangeInfo"}`). */
export interface InstrumentSource {
  /** REST path, appended to endpoints.rest (Binance spot `/api/v3/exchangeInfo`). */
  path: string;
  /** The request's weight against the venue's REST budget (spot 20, futures 1). */
  weight: number;
  /** The body's instruments; throws an Error saying what is wrong with a body it does not understand. */
  parse(body: unknown): Instrument[];
  /**
   * A stream that announces instrument changes (USD-M `!contractInfo`: listings, status changes,
   * delivery): while a universe runs it is subscribed, and each of its messages brings the next
   * refresh forward.
   */
  events?: { stream: string; type: StreamType };
}

export interface Venue {
  name: VenueName;
  /** The venue's instrument list (universe); absent where a universe is not supported yet. */
  instruments?: InstrumentSource;
  /** Production base URLs; each venue appends its own paths (StreamType.route). */
  endpoints: { stream: string; rest: string };
  limits: VenueLimits;
  /** Path of the endpoint when one serves all streams (see StreamType.route). */
  combinedPath: string;
  /** REST path of the maintenance status, or null where the venue has none. */
  systemStatusPath: string | null;
  /**
   * Reads the status endpoint's body: 1 while the venue is in maintenance, 0 when normal, null
   * for a body it does not understand. Required where systemStatusPath is set.
   */
  parseSystemStatus?(body: string): { status: 0 | 1; msg: string } | null;
  /** Announced maintenance windows (the default of maintenance.windows); none when absent. */
  maintenanceWindows?: ReadonlyArray<{ start: string; end: string; reason: string }>;
  /** The WebSocket API URL for user data (Binance), when the venue has one. */
  wsApiUrl?: string;
  /** Parse a configured stream type; null when the venue has no such stream. */
  streamType(type: string): StreamType | null;
  /**
   * The canonical stream id for a symbol and a stream type: Binance `btcusdt@trade`, the others
   * `<channel>:<SYMBOL>` (`publicTrade:BTCUSDT`, `trades:BTC-USDT`).
   */
  streamName(symbol: string, type: string): string;
  /** The stream type of a canonical stream id (the inverse of streamName). */
  typeOf(stream: string): string;
  /** Is this a well-formed symbol for the venue? */
  isSymbol(symbol: string): boolean;
  /** Example of a well-formed symbol, for error messages. */
  symbolExample: string;
  /** Reads a data frame's stream id (hot path). */
  readStream: StreamReader;
  /** Optional: readStream without the string (same answers), where the venue can give one. */
  readStreamSpan?: StreamSpanReader;
  recordingShape: RecordingShape;
  /** The client heartbeat, or null when the server pings (Binance). */
  clientPing: ClientPing | null;
  /** A connection's market protocol: URL, subscribe, replies, heartbeat replies, notices. */
  protocol(opts: ProtocolOptions): MarketProtocol;
  /** A close code the server sent → the gap cause. */
  closeCause(code: number): GapCause;
}
