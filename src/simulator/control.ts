import type { Venue } from '../venues/index.js';
import type { SimConnection } from './connection.js';
import { parseStreamName, servesOnPath, type StreamSpec } from './streams.js';
import type { ViolationRule } from './types.js';

/**
 * The market-stream protocol (binance-spot-api-docs web-socket-streams.md, "Live Subscribing/
 * Unsubscribing to streams"): SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and
 * GET_PROPERTY (`combined`), with the documented error codes: 0 unknown property, 1 invalid value
 * type, 2 invalid request, 3 invalid JSON.
 */

export interface MarketContext {
  readonly venue: Venue;
  readonly streamsPerConnection: number;
  attach(conn: SimConnection, spec: StreamSpec): void;
  detach(conn: SimConnection, name: string): void;
  violation(conn: SimConnection, rule: ViolationRule, detail: string): void;
}

type Id = number | string | null;

const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY'];
const INT64 = 2 ** 63;

export function resultReply(result: unknown, id: Id): string {
  return `{"result":${JSON.stringify(result)},"id":${JSON.stringify(id)}}`;
}

export function errorReply(code: number, msg: string, id: Id): string {
  return `{"error":{"code":${code},"msg":${JSON.stringify(msg)}},"id":${JSON.stringify(id)}}`;
}

/** `id`: a signed 64-bit integer, a string of at most 36 characters, or null (facts sheet). */
function isValidId(id: unknown): id is Id {
  if (id === null) return true;
  if (typeof id === 'string') return id.length <= 36;
  return typeof id === 'number' && Number.isInteger(id) && id >= -INT64 && id < INT64;
}

export class MarketProtocol {
  constructor(private readonly ctx: MarketContext) {}

  /** The streams named in the connection URL, subscribed as the upgrade is accepted. */
  open(conn: SimConnection, specs: StreamSpec[]): void {
    const refused = this.subscribe(conn, specs);
    if (refused > 0) conn.sendText(errorReply(2, this.tooManyText(refused), null));
  }

  message(conn: SimConnection, text: string): void {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch (err) {
      conn.sendText(errorReply(3, `Invalid JSON: ${(err as Error).message}`, null));
      return;
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) {
      conn.sendText(errorReply(2, 'Invalid request: expected a JSON object', null));
      return;
    }
    const r = req as Record<string, unknown>;
    if (!isValidId(r.id)) {
      conn.sendText(errorReply(2, 'Invalid request: request ID must be an integer, a string of at most 36 characters, or null', null));
      return;
    }
    const id = r.id;
    const reply = (s: string): void => conn.sendText(s);
    if (typeof r.method !== 'string') {
      reply(errorReply(2, 'Invalid request: missing field `method`', id));
      return;
    }
    if (!METHODS.includes(r.method)) {
      reply(errorReply(2, `Invalid request: unknown variant \`${r.method}\`, expected one of ${METHODS.map((m) => `\`${m}\``).join(', ')}`, id));
      return;
    }
    switch (r.method) {
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE': {
        const specs = this.streamParams(r.params);
        if (typeof specs === 'string') {
          reply(errorReply(2, specs, id));
        } else if (r.method === 'UNSUBSCRIBE') {
          for (const s of specs) {
            if (conn.streams.delete(s.name)) this.ctx.detach(conn, s.name);
          }
          reply(resultReply(null, id));
        } else {
          const refused = this.subscribe(conn, specs);
          reply(refused > 0 ? errorReply(2, this.tooManyText(refused), id) : resultReply(null, id));
        }
        return;
      }
      case 'LIST_SUBSCRIPTIONS':
        reply(resultReply([...conn.streams], id));
        return;
      case 'SET_PROPERTY':
      case 'GET_PROPERTY': {
        const set = r.method === 'SET_PROPERTY';
        const params = r.params;
        if (!Array.isArray(params) || params.length < (set ? 2 : 1)) {
          reply(errorReply(2, 'Invalid request: missing parameters', id));
        } else if (params.length > (set ? 2 : 1)) {
          reply(errorReply(2, 'Invalid request: too many parameters', id));
        } else if (typeof params[0] !== 'string') {
          reply(errorReply(2, 'Invalid request: property name must be a string', id));
        } else if (params[0] !== 'combined') {
          reply(errorReply(0, 'Unknown property', id));
        } else if (!set) {
          reply(resultReply(conn.combined, id));
        } else if (typeof params[1] !== 'boolean') {
          reply(errorReply(1, 'Invalid value type: expected Boolean', id));
        } else {
          conn.combined = params[1];
          reply(resultReply(null, id));
        }
        return;
      }
    }
  }

  /** Subscribes up to the per-connection limit; returns how many streams were refused. */
  private subscribe(conn: SimConnection, specs: StreamSpec[]): number {
    const limit = this.ctx.streamsPerConnection;
    let refused = 0;
    for (const spec of specs) {
      if (conn.streams.has(spec.name)) continue;
      if (conn.streams.size >= limit) {
        refused++;
        continue;
      }
      conn.streams.add(spec.name);
      // Accepted either way; on the wrong USD-M route it never delivers (servesOnPath).
      if (spec.family !== 'contractInfo' && servesOnPath(this.ctx.venue, conn.path, spec)) this.ctx.attach(conn, spec);
    }
    if (refused > 0) {
      this.ctx.violation(conn, 'streams_per_connection', `${conn.streams.size + refused} streams asked for, at most ${limit} per connection; ${refused} refused`);
    }
    return refused;
  }

  private tooManyText(refused: number): string {
    return `Invalid request: too many streams: at most ${this.ctx.streamsPerConnection} per connection, ${refused} refused`;
  }

  /** The params of SUBSCRIBE/UNSUBSCRIBE as stream specs, or the error message. */
  private streamParams(params: unknown): StreamSpec[] | string {
    if (params === undefined) return 'Invalid request: missing field `params`';
    if (!Array.isArray(params)) return 'Invalid request: params must be an array of stream names';
    const specs: StreamSpec[] = [];
    for (const p of params) {
      if (typeof p !== 'string') return 'Invalid request: params must be an array of stream names';
      const spec = parseStreamName(this.ctx.venue, p);
      if (spec === null) return `Invalid request: unknown stream \`${p}\``;
      specs.push(spec);
    }
    return specs;
  }
}
