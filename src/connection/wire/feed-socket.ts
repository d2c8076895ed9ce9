import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type ClientRequestArgs, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { systemClock, type Clock, type Timer } from '../../clock.js';
import { FrameReader } from './frame-reader.js';

/** `code` of the error a handshake that did not finish within handshakeTimeoutMs ends with. */
export const HANDSHAKE_TIMEOUT = 'EHANDSHAKETIMEOUT';

/**
 * A WebSocket client for one exchange connection (RFC 6455), built for the market-data hot path:
 * the opening handshake over node:http's upgrade, frames read by FrameReader (a message handed on
 * as a view of the socket's chunk, one handler call per message), client frames masked as the RFC
 * requires. The subset of `ws`'s client the session uses, with the same meanings: readyState,
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

/** What the session reads of a refused upgrade: node:http's IncomingMessage, or its copy from a read thread. */
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
   * A whole message. `at` is the clock's time when the socket chunk it came in began to be read
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

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export class FeedSocket implements WireSocket {
  readyState = CONNECTING;
  private socket: Socket | null = null;
  private readonly req: ClientRequest;
  private readonly reader: FrameReader;
  /** The peer's close code (or the one sent for a protocol violation); 1006: none. */
  private closeCode = 1006;
  private closeReason: Buffer = Buffer.alloc(0);
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
    const key = randomBytes(16).toString('base64');
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
    const request = secure ? httpsRequest : httpRequest;
    this.req = request({
      host,
      port,
      path: `${u.pathname}${u.search}`,
      headers: {
        Host: u.host,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': key,
      },
      createConnection: secure ? (o: ClientRequestArgs) => secureConnect(o, opts.ca) : plainConnect,
    });
    this.clock = opts.clock ?? systemClock;
    this.handshakeTimer = this.clock.setTimeout(() => this.abortHandshake(Object.assign(new Error('Opening handshake has timed out'), { code: HANDSHAKE_TIMEOUT })), opts.handshakeTimeoutMs);
    this.req.on('error', (err) => this.abortHandshake(err));
    this.req.on('response', (res) => {
      this.clock.clearTimeout(this.handshakeTimer);
      this.readyState = CLOSED;
      this.closedEmitted = true;
      this.handlers.unexpectedResponse(res);
    });
    this.req.on('upgrade', (res, socket, head) => this.upgraded(res, socket as Socket, head, key));
    this.req.end();
  }

  get isPaused(): boolean {
    return this.reader.isPaused;
  }

  send(text: string): void {
    this.write(OP_TEXT, Buffer.from(text, 'utf8'));
  }

  ping(data: Buffer = Buffer.alloc(0)): void {
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
    if (this.socket === null) {
      this.clock.clearTimeout(this.handshakeTimer);
      this.readyState = CLOSING;
      this.req.destroy();
      this.emitClose();
      return;
    }
    this.readyState = CLOSING;
    this.socket.destroy();
  }

  /** Stop reading: messages already parsed from the current chunk wait too. */
  pause(): void {
    this.reader.pause();
    this.socket?.pause();
  }

  resume(): void {
    // What was held back is read now: its messages get the time they are handed on.
    this.chunkAt = this.clock.now();
    this.reader.resume();
    if (!this.reader.isPaused) this.socket?.resume();
  }

  // ---------------------------------------------------------------------------------------------

  private upgraded(res: IncomingMessage, socket: Socket, head: Buffer, key: string): void {
    this.clock.clearTimeout(this.handshakeTimer);
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    let problem: string | null = null;
    if (String(res.headers.upgrade ?? '').toLowerCase() !== 'websocket') problem = 'Invalid Upgrade header';
    else if (res.headers['sec-websocket-accept'] !== accept) problem = 'Invalid Sec-WebSocket-Accept header';
    else if (res.headers['sec-websocket-extensions'] !== undefined) problem = 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
    else if (res.headers['sec-websocket-protocol'] !== undefined) problem = 'Server sent a subprotocol but none was requested';
    this.socket = socket;
    socket.on('close', () => this.socketClosed());
    socket.on('error', (err) => this.fail(err));
    if (problem !== null) {
      this.fail(new Error(problem));
      socket.destroy();
      return;
    }
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.chunkAt = this.clock.now();
      this.reader.push(chunk);
    });
    socket.on('end', () => {
      // The server ended its side: after a closing handshake that is the normal end.
      if (this.readyState === OPEN) this.readyState = CLOSING;
      socket.end();
    });
    this.readyState = OPEN;
    this.handlers.open();
    if (head.length > 0 && this.readyState === OPEN) {
      this.chunkAt = this.clock.now();
      this.reader.push(head);
    }
  }

  private abortHandshake(err: Error): void {
    if (this.socket !== null || this.closedEmitted) return;
    this.clock.clearTimeout(this.handshakeTimer);
    this.readyState = CLOSING;
    this.req.destroy();
    this.fail(err);
    this.emitClose();
  }

  private onPeerClose(code: number, reason: Buffer): void {
    this.closeCode = code;
    this.closeReason = reason;
    if (this.readyState === OPEN) this.readyState = CLOSING;
    // Answer with the same code (RFC 6455 §5.5.1), then end our side; the server closes the TCP.
    if (!this.closeSent) this.sendClose(code === 1005 ? -1 : code, '');
    this.socket?.end();
  }

  private protocolError(code: number, message: string): void {
    if (this.readyState === OPEN) this.readyState = CLOSING;
    // As ws does: the close event then carries the code sent for the violation.
    this.closeCode = code;
    this.sendClose(code, '');
    this.fail(new Error(message));
    this.socket?.destroy();
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
    let payload = Buffer.alloc(0);
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
    if (socket === null || socket.destroyed || !socket.writable) return;
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

function plainConnect(options: ClientRequestArgs): Socket {
  return netConnect({ host: options.host ?? undefined, port: Number(options.port) });
}

function secureConnect(options: ClientRequestArgs, ca: string | Buffer | undefined): Socket {
  const host = options.host ?? '';
  return tlsConnect({ host, port: Number(options.port), servername: isIP(host) ? undefined : host, ca });
}
