import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { VenueName } from '../venues/index.js';
import type { RouteHandler } from './types.js';

export function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answers a WebSocket upgrade request with an HTTP error instead of 101, then closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, body: string, retryAfterS: number | null): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json;charset=UTF-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  if (retryAfterS !== null) head.push(`Retry-After: ${retryAfterS}`);
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

export function errorBody(code: number, msg: string): string {
  return JSON.stringify({ code, msg });
}

/**
 * The REST endpoints every rehearsal needs (weight 1 each, no key): ping, server time and, on spot,
 * the maintenance status (`GET /sapi/v1/system/status`, facts sheet "Spot market streams").
 */
export function builtinRoutes(
  venue: VenueName,
  state: { inMaintenance(): boolean; now(): number },
): Array<[method: string, pathname: string, handler: RouteHandler]> {
  const ping: RouteHandler = (_req, res) => sendJson(res, 200, '{}');
  const time: RouteHandler = (_req, res) => sendJson(res, 200, `{"serverTime":${state.now()}}`);
  if (venue === 'binance-usdm' || venue === 'binance-coinm') {
    const api = venue === 'binance-usdm' ? '/fapi/v1' : '/dapi/v1';
    return [
      ['GET', `${api}/ping`, ping],
      ['GET', `${api}/time`, time],
    ];
  }
  return [
    ['GET', '/api/v3/ping', ping],
    ['GET', '/api/v3/time', time],
    [
      'GET',
      '/sapi/v1/system/status',
      (_req, res) =>
        sendJson(res, 200, state.inMaintenance() ? '{"status":1,"msg":"system_maintenance"}' : '{"status":0,"msg":"normal"}'),
    ],
  ];
}
