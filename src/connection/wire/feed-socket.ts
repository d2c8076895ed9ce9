import { randomBytes, randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { systemClock, type Clock, type Timer } from '../../clock.js';
import { FrameReader } from './frame-reader.js';
import { headEnd, MAX_RESPONSE_HEAD, parseResponseHead, upgradeProblem, upgradeRequest } from './upgrade.js';

/** `code` of the error a handshake that did not finish within handshakeTimeoutMs ends with. */
export const HANDSHAKE_TIMEOUT = 'EHANDSHAKETIMEOUT';

/**
 * A WebSocket client for one exchange connection (RFC 6455), built for the market-data hot path:
 * the socket reads into one buffer that every socket of the thread reuses (net `onread`, no new
 * memory per read), the opening handshake is done here on that socket (upgrade.ts), frames are
 * read by FrameReader (a message handed on as a view of the read buffer, one handler call per
 * message, valid only during the call), client frames masked as the RFC requires. The subset of `ws`'s client the session uses, with the same meanings: readyState,
 * send, ping, pong, close (the closing handshake) and terminate, pause and resume; handlers given
 * once instead of events. `ws` stays the server side everywhere (simulator, relay) and the bench's
 * bare client, so the two interoperate in every test.
 *
 * Not supported, on purpose (no venue needs them): extensions (permessage-deflate), subprotocols,
 * redirects, proxies.
 */

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;

/** What the session reads of a refused upgrade: the response's status and headers (its body is not read). */
export interface UpgradeResponse {
  statusCode?: number;
  headers: IncomingHttpHeaders;
  /** Read and discard the body, then drop the connection. */
  resume(): unknown;
  destroy(): unknown;
}

/**
 * A socket as the session uses it: FeedSocket on the main thread, or ThreadedFeedSocket
 * (threaded-socket.ts) whose FeedSocket runs on a read thread.
 */
export interface WireSocket {
  readonly readyState: number;
  readonly isPaused: boolean;
  send(text: string): void;
  ping(data?: Buffer): void;
  pong(data: Buffer): void;
  close(code: number, reason: string): void;
  terminate(): void;
  pause(): void;
  /** Read nothing after the current socket read until resume() (the burst yield: session.ts). */
  yieldReads(): void;
  resume(): void;
}

export interface FeedSocketHandlers {
  open(): void;
  /** The server answered the upgrade with another status (429, 418, 403, 503...). */
  unexpectedResponse(res: UpgradeResponse): void;
  /** A network error, a failed handshake or a protocol violation; `close` follows. */
  error(err: Error): void;
  /** The connection is closed: the peer's close code, or 1006 when none came. */
  close(code: number, reason: Buffer): void;
  ping(data: Buffer): void;
  pong(data: Buffer): void;
  /**
   * A whole message, valid only during the call: its bytes are in the reused read buffer (a
   * handler that keeps them copies them). Ping, pong and close payloads are copies. `at` is the clock's time when the socket chunk it came in began to be read
   * (every message of one chunk arrived together): one clock read per chunk, not per message.
   */
  message(data: Buffer, isBinary: boolean, at: number): void;
}

export interface FeedSocketOptions {
  handshakeTimeoutMs: number;
  maxPayload: number;
  /** The daemon's clock, for the handshake timer. */
  clock?: Clock;
  /** wss: the certificates to trust instead of Node's (tests: a loopback server's own). */
  ca?: string | Buffer;
}

const EMPTY = Buffer.alloc(0);
const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Bytes of the reused read buffer: a socket read takes at most this much. */
export const READ_BUFFER_BYTES = 256 * 1024;
let sharedReadBuffer: Buffer | null = null;

/**
 * The read buffer of this thread (the main thread and each read thread have their own). One
 * buffer for every socket is safe because a read's callback runs to its end before the next read
 * into the buffer: reads come only from the event loop, never from inside a call of ours, and
 * FrameReader copies whatever it keeps (a cut frame, fragments, what a pause holds back). Reused,
 * it stays in the CPU's cache and costs V8 nothing: a new 64 KiB buffer per read made external
 * memory that V8 collected with mark-compacts (docs/performance.md "One reused read buffer").
 */
function readBuffer(): Buffer {
  return (sharedReadBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES));
}

/** The error a connection that ended before the upgrade response ends with, as node:http names it. */
function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

export class FeedSocket implements WireSocket {
  readyState = CONNECTING;
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private readonly key: string;
  /** The response head read so far (a copy: the read buffer is reused); null once the handshake is over. */
  private response: Buffer | null = EMPTY;
  private opened = false;
  /** The peer's close code (or the one sent for a protocol violation); 1006: none. */
  private closeCode = 1006;
  private closeReason: Buffer = EMPTY;
  private closeSent = false;
  private errored = false;
  private closedEmitted = false;
  private readonly clock: Clock;
  /** When the chunk being read came in (or reading resumed): the time of its messages. */
  private chunkAt = 0;
  private handshakeTimer: Timer | undefined;

  constructor(
    url: string,
    opts: FeedSocketOptions,
    private readonly handlers: FeedSocketHandlers,
  ) {
    const u = new URL(url);
    const secure = u.protocol === 'wss:';
    if (!secure && u.protocol !== 'ws:') throw new TypeError(`not a WebSocket URL: ${u.protocol}`);
    this.key = randomBytes(16).toString('base64');
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const port = u.port !== '' ? Number(u.port) : secure ? 443 : 80;
    this.reader = new FrameReader(
      {
        onMessage: (data, isBinary) => this.handlers.message(data, isBinary, this.chunkAt),
        onPing: (data) => this.handlers.ping(data),
        onPong: (data) => this.handlers.pong(data),
        onClose: (code, reason) => this.onPeerClose(code, reason),
        onError: (code, message) => this.protocolError(code, message),
      },
      opts.maxPayload,
    );
    this.clock = opts.clock ?? systemClock;
    // Every read of every socket of this thread lands in the same buffer, handled before the next
    // read can reuse it (module doc: readBuffer).
    const onread = { buffer: readBuffer(), callback: (n: number, buf: Uint8Array): boolean => this.onRead(n, buf as Buffer) };
    // tls.connect takes onread too (Node's docs; its typings do not list it).
    this.socket = secure
      ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ca: opts.ca, onread } as ConnectionOptions)
      : netConnect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.handshakeTimer = this.clock.setTimeout(() => this.abortHandshake(Object.assign(new Error('Opening handshake has timed out'), { code: HANDSHAKE_TIMEOUT })), opts.handshakeTimeoutMs);
    this.socket.on('error', (err) => (this.opened ? this.fail(err) : this.abortHandshake(err)));
    this.socket.on('close', () => (this.opened ? this.socketClosed() : this.abortHandshake(hangUp())));
    this.socket.on('end', () => {
      // The server ended its side: after a closing handshake that is the normal end.
      if (this.readyState === OPEN) this.readyState = CLOSING;
      this.socket.end();
    });
    // Written before the connection is up: the socket sends it once it is (after TLS's handshake).
    this.socket.write(upgradeRequest(u, this.key));
  }

  get isPaused(): boolean {
    return this.reader.isPaused;
  }

  send(text: string): void {
    this.write(OP_TEXT, Buffer.from(text, 'utf8'));
  }

  ping(data: Buffer = EMPTY): void {
    this.write(OP_PING, data);
  }

  pong(data: Buffer): void {
    this.write(OP_PONG, data);
  }

  /** Start the closing handshake; the socket ends when the server answers with its close frame. */
  close(code: number, reason: string): void {
    if (this.readyState === CONNECTING) return this.terminate();
    if (this.readyState !== OPEN) return;
    this.readyState = CLOSING;
    this.sendClose(code, reason);
  }

  /** Cut the connection at once, without a closing handshake. */
  terminate(): void {
    if (this.readyState === CLOSED) return;
    if (!this.opened) {
      this.clock.clearTimeout(this.handshakeTimer);
      this.readyState = CLOSING;
      this.socket.destroy();
      this.emitClose();
      return;
    }
    this.readyState = CLOSING;
    this.socket.destroy();
  }

  /** Stop reading: messages already parsed from the current chunk wait too. */
  pause(): void {
    this.reader.pause();
    if (this.opened) this.socket.pause();
  }

  /**
   * Read nothing after the current socket read until resume(); the rest of this read's messages are
   * still handed on (so nothing of the reused read buffer has to be copied aside, as pause() must).
   */
  yieldReads(): void {
    if (this.opened) this.socket.pause();
  }

  resume(): void {
    // What was held back is read now: its messages get the time they are handed on.
    this.chunkAt = this.clock.now();
    this.reader.resume();
    if (!this.reader.isPaused && this.opened) this.socket.resume();
  }

  // ---------------------------------------------------------------------------------------------

  /** A socket read: `buf[0, n)` is valid only during this call (the buffer is reused). */
  private onRead(n: number, buf: Buffer): boolean {
    if (this.response !== null) this.readResponse(buf.subarray(0, n));
    else {
      this.chunkAt = this.clock.now();
      this.reader.push(buf.subarray(0, n));
    }
    // true: go on reading (a pause is pause()'s, which stops the socket itself).
    return true;
  }

  /** Bytes of the upgrade response: once its head is whole, the handshake is decided. */
  private readResponse(bytes: Buffer): void {
    if (this.closedEmitted) return;
    const so = this.response!;
    const all = so.length === 0 ? Buffer.from(bytes) : Buffer.concat([so, bytes]);
    const end = headEnd(all);
    if (end < 0) {
      if (all.length > MAX_RESPONSE_HEAD) return this.abortHandshake(new Error(`upgrade response head over ${MAX_RESPONSE_HEAD} bytes`));
      this.response = all;
      return;
    }
    this.response = null;
    this.clock.clearTimeout(this.handshakeTimer);
    const head = parseResponseHead(all.toString('latin1', 0, end - 4));
    if (head instanceof Error) return this.abortHandshake(head);
    if (head.statusCode !== 101) {
      // Refused (429, 418, 403, 503...): the session reads the status and headers; the body is not read.
      this.readyState = CLOSED;
      this.closedEmitted = true;
      const socket = this.socket;
      this.handlers.unexpectedResponse({ statusCode: head.statusCode, headers: head.headers, resume: () => undefined, destroy: () => socket.destroy() });
      socket.destroy();
      return;
    }
    const problem = upgradeProblem(head.headers, this.key);
    this.opened = true;
    if (problem !== null) {
      this.fail(new Error(problem));
      this.socket.destroy();
      return;
    }
    this.readyState = OPEN;
    this.handlers.open();
    if (end < all.length && this.readyState === OPEN) {
      // Frames that came with the response.
      this.chunkAt = this.clock.now();
      this.reader.push(all.subarray(end));
    }
  }

  private abortHandshake(err: Error): void {
    if (this.opened || this.closedEmitted) return;
    this.response = null;
    this.clock.clearTimeout(this.handshakeTimer);
    this.readyState = CLOSING;
    this.socket.destroy();
    this.fail(err);
    this.emitClose();
  }

  private onPeerClose(code: number, reason: Buffer): void {
    this.closeCode = code;
    this.closeReason = reason;
    if (this.readyState === OPEN) this.readyState = CLOSING;
    // Answer with the same code (RFC 6455 §5.5.1), then end our side; the server closes the TCP.
    if (!this.closeSent) this.sendClose(code === 1005 ? -1 : code, '');
    this.socket.end();
  }

  private protocolError(code: number, message: string): void {
    if (this.readyState === OPEN) this.readyState = CLOSING;
    // As ws does: the close event then carries the code sent for the violation.
    this.closeCode = code;
    this.sendClose(code, '');
    this.fail(new Error(message));
    this.socket.destroy();
  }

  private fail(err: Error): void {
    if (this.errored) return;
    this.errored = true;
    this.handlers.error(err);
  }

  private socketClosed(): void {
    this.readyState = CLOSED;
    this.emitClose();
  }

  private emitClose(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    this.readyState = CLOSED;
    this.handlers.close(this.closeCode, this.closeReason);
  }

  /** A close frame; code -1: one without a status code. */
  private sendClose(code: number, reason: string): void {
    if (this.closeSent) return;
    this.closeSent = true;
    let payload = EMPTY;
    if (code >= 0) {
      const r = Buffer.from(reason, 'utf8').subarray(0, 123);
      payload = Buffer.allocUnsafe(2 + r.length);
      payload.writeUInt16BE(code, 0);
      r.copy(payload, 2);
    }
    this.writeFrame(OP_CLOSE, payload);
  }

  private write(op: number, payload: Buffer): void {
    if (this.readyState !== OPEN) return;
    this.writeFrame(op, payload);
  }

  private writeFrame(op: number, payload: Buffer): void {
    const socket = this.socket;
    if (!this.opened || socket.destroyed || !socket.writable) return;
    socket.write(encodeClientFrame(op, payload));
  }
}

/** One unfragmented client frame: FIN, the opcode, the length, a fresh mask, the masked payload. */
export function encodeClientFrame(op: number, payload: Buffer): Buffer {
  const n = payload.length;
  const hdr = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + n);
  out[0] = 0x80 | op;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 0x10000) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(n / 0x100000000), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  const mask = out.subarray(hdr, hdr + 4);
  randomFillSync(mask);
  for (let i = 0; i < n; i++) out[hdr + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}
