import type { Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { StreamRef } from '../pipeline/stream-ref.js';

/** What the relay needs of the daemon. */
export interface RelayUpstream {
  /** Is `stream` (Binance spelling, e.g. btcusdt@trade) a stream this Binance venue has? (syntax + catalogue, venue.streamType) */
  valid(venue: string, stream: string): boolean;
  /**
   * A client asked for `stream`. Resolves when the daemon delivers it (already carried, or subscribed
   * upstream now); rejects with a RelayRefusal when it cannot (limit, not allowed). Called once per
   * stream while at least one client wants it.
   */
  want(venue: string, stream: string): Promise<void>;
  /** No client wants `stream` any more (the daemon may unsubscribe it after its linger time). */
  release(venue: string, stream: string): void;
}

export class RelayRefusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RelayRefusal';
  }
}

/**
 * A refusal as the relay reads it: a RelayRefusal, or any error with a numeric `code` (the daemon's
 * LiveStreamRefusal has the same shape), so that the code reaches the client as Binance's `error.code`.
 */
export function refusalOf(err: unknown): { code: number; message: string } | null {
  if (typeof err !== 'object' || err === null) return null;
  const { code, message } = err as { code?: unknown; message?: unknown };
  return typeof code === 'number' && Number.isInteger(code) && typeof message === 'string' ? { code, message } : null;
}

export interface RelayServerOptions {
  host: string;
  port: number;
  /** Binance venue names the daemon carries; the first also answers at the root (`/ws`, `/stream`). */
  venues: string[];
  /** Clients at once (pending upgrades included); one more is refused with HTTP 503. */
  maxClients: number;
  /** Bytes waiting to be sent to one client (ws.bufferedAmount); past it the client is closed with 1008. */
  clientBufferBytes: number;
  /** Largest message a client may send; a larger one closes it with 1009. */
  maxPayloadBytes: number;
  /** Frames (messages, pings, pongs) a client may send per second, like Binance's 5/s; past it: close 1008. */
  messagesPerSecond: number;
  pingIntervalMs: number;
  /** A client that has not answered a ping this long after it was sent is terminated. */
  pongTimeoutMs: number;
  /** CIDR ranges (or single addresses) allowed besides loopback; anyone else gets HTTP 403. */
  allow: string[];
  upstream: RelayUpstream;
  logger: Logger;
  registry: Registry;
  clock?: Clock;
  /** Streams one client may hold (Binance: 1024 per connection). Default 1024. */
  streamsPerClient?: number;
  /** A connection must have sent its whole upgrade request within this (headersTimeout, requestTimeout). Default 10 000. */
  handshakeTimeoutMs?: number;
  /** After a close frame, how long a client has to answer before its socket is destroyed. Default 5000. */
  closeTimeoutMs?: number;
}

/** One client, as stats() reports it. */
export interface RelayClientStats {
  id: number;
  venue: string;
  remote: string;
  /** The URL it connected to (path and query, clipped to 200 characters). */
  path: string;
  combined: boolean;
  gaps: boolean;
  streams: string[];
  /** ws.bufferedAmount now: bytes waiting to be sent to it. */
  bufferedBytes: number;
  /** The most it ever had waiting (just before a send). */
  maxBufferedBytes: number;
  state: 'open' | 'closing' | 'closed';
}

export interface RelayStats {
  clients: number;
  /** Streams at least one client is subscribed to, as `venue stream`. */
  streams: string[];
  perClient: RelayClientStats[];
}

/** The sink the daemon writes to (src/pipeline/sinks.ts `Sink`), as the relay implements it. */
export interface RelaySink {
  readonly name: string;
  write(frame: Buffer, recvMs: number, stream: StreamRef): boolean;
  gap(entry: { venue: string | null; stream: string; [k: string]: unknown }, line: string): void;
  healthy(): boolean;
}
