import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The client's half of the WebSocket opening handshake (RFC 6455 §4.1) as bytes: the GET it sends
 * and the reading of the server's response head. FeedSocket does the handshake itself, over the
 * TCP (or TLS) socket it then reads frames from, because node:http's client reads through 'data'
 * events, which a socket read into one reused buffer (net `onread`, docs/performance.md) does not
 * emit.
 */

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Most bytes a response head may have (node:http's default limit is 16 KiB as well). */
export const MAX_RESPONSE_HEAD = 16 * 1024;

/** The upgrade request for `url` (ws: or wss:) with the client's key. */
export function upgradeRequest(url: URL, key: string): string {
  return (
    `GET ${url.pathname}${url.search} HTTP/1.1\r\n` +
    `Host: ${url.host}\r\n` +
    'Connection: Upgrade\r\n' +
    'Upgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n\r\n`
  );
}

/** The Sec-WebSocket-Accept a server must answer `key` with. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export interface ResponseHead {
  statusCode: number;
  /** Names lowercased; a header sent more than once has its values joined with ', ' (as node:http does). */
  headers: IncomingHttpHeaders;
}

/**
 * Where the response head in `bytes` ends (the index after its blank line), or -1 while it is not
 * whole yet.
 */
export function headEnd(bytes: Buffer): number {
  const i = bytes.indexOf('\r\n\r\n', 0, 'latin1');
  return i < 0 ? -1 : i + 4;
}

/** Parse a response head (status line and header lines, without the blank line); an Error when it is not HTTP/1.x. */
export function parseResponseHead(text: string): ResponseHead | Error {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (status === null) return new Error(`not an HTTP response to the upgrade: ${JSON.stringify((lines[0] ?? '').slice(0, 64))}`);
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return new Error(`a malformed header line in the upgrade response: ${JSON.stringify(line.slice(0, 64))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { statusCode: Number(status[1]), headers };
}

/** Why a 101 response does not complete the handshake for `key`, or null when it does. */
export function upgradeProblem(headers: IncomingHttpHeaders, key: string): string | null {
  if (String(headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'Invalid Upgrade header';
  if (headers['sec-websocket-accept'] !== acceptFor(key)) return 'Invalid Sec-WebSocket-Accept header';
  if (headers['sec-websocket-extensions'] !== undefined) return 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
  if (headers['sec-websocket-protocol'] !== undefined) return 'Server sent a subprotocol but none was requested';
  return null;
}
