/**
 * The market-stream control protocol a relay client speaks (binance-spot-api-docs
 * web-socket-streams.md, "Live Subscribing/Unsubscribing to streams"): SUBSCRIBE, UNSUBSCRIBE,
 * LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY, with Binance's reply shapes and error codes
 * (0 unknown property, 1 invalid value type, 2 invalid request, 3 invalid JSON). Ours on top: the
 * `gaps` property (docs/relay.md, "Gap notices").
 *
 * The checks, their order and the messages are copied from the simulator's
 * src/simulator/control.ts (MarketProtocol.message), which follows Binance's replies; the relay is
 * production code and keeps its own copy rather than depending on a test tool. Pure: parseControl
 * never throws, whatever the text (test/relay-fuzz.test.ts).
 */

export type Id = number | string | null;

export const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY'] as const;
export type Method = (typeof METHODS)[number];

/** The properties a client may set: Binance's `combined`, and our `gaps` (gap notices). */
export const PROPERTIES = ['combined', 'gaps'] as const;
export type Property = (typeof PROPERTIES)[number];

/** `method` label of feedkeeper_relay_control_requests_total: a method, or `invalid` (no valid method). */
export type MethodLabel = Method | 'invalid';

export type ControlRequest =
  | { method: 'SUBSCRIBE' | 'UNSUBSCRIBE'; id: Id; streams: string[] }
  | { method: 'LIST_SUBSCRIPTIONS'; id: Id }
  | { method: 'SET_PROPERTY'; id: Id; property: Property; value: boolean }
  | { method: 'GET_PROPERTY'; id: Id; property: Property };

export type Parsed = { ok: true; request: ControlRequest } | { ok: false; method: MethodLabel; reply: string };

const INT64 = 2 ** 63;

export function resultReply(result: unknown, id: Id): string {
  return `{"result":${JSON.stringify(result)},"id":${JSON.stringify(id)}}`;
}

export function errorReply(code: number, msg: string, id: Id): string {
  return `{"error":{"code":${code},"msg":${JSON.stringify(msg)}},"id":${JSON.stringify(id)}}`;
}

/** `id`: a signed 64-bit integer, a string of at most 36 characters, or null (facts sheet). */
export function isValidId(id: unknown): id is Id {
  if (id === null) return true;
  if (typeof id === 'string') return id.length <= 36;
  return typeof id === 'number' && Number.isInteger(id) && id >= -INT64 && id < INT64;
}

/** At most this much of a client's text goes back into an error message. */
const ECHO = 100;

function echo(s: string): string {
  return s.length > ECHO ? `${s.slice(0, ECHO)}…` : s;
}

/**
 * Reads one client message. `valid` says whether a stream name is one the venue has.
 * SUBSCRIBE/UNSUBSCRIBE params come back deduplicated, in order.
 */
export function parseControl(text: string, valid: (stream: string) => boolean): Parsed {
  let req: unknown;
  try {
    req = JSON.parse(text);
  } catch (err) {
    return { ok: false, method: 'invalid', reply: errorReply(3, `Invalid JSON: ${echo((err as Error).message)}`, null) };
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req)) {
    return { ok: false, method: 'invalid', reply: errorReply(2, 'Invalid request: expected a JSON object', null) };
  }
  const r = req as Record<string, unknown>;
  // A missing id is an invalid one too (Binance: "`id` parameter was missing or an unsupported type").
  const rawId = Object.hasOwn(r, 'id') ? r.id : undefined;
  if (!isValidId(rawId)) {
    return {
      ok: false,
      method: 'invalid',
      reply: errorReply(2, 'Invalid request: request ID must be an integer, a string of at most 36 characters, or null', null),
    };
  }
  const id = rawId;
  const method = Object.hasOwn(r, 'method') ? r.method : undefined;
  if (typeof method !== 'string') return { ok: false, method: 'invalid', reply: errorReply(2, 'Invalid request: missing field `method`', id) };
  if (!(METHODS as readonly string[]).includes(method)) {
    return {
      ok: false,
      method: 'invalid',
      reply: errorReply(2, `Invalid request: unknown variant \`${echo(method)}\`, expected one of ${METHODS.map((m) => `\`${m}\``).join(', ')}`, id),
    };
  }
  const m = method as Method;
  const params = Object.hasOwn(r, 'params') ? r.params : undefined;
  const fail = (code: number, msg: string): Parsed => ({ ok: false, method: m, reply: errorReply(code, msg, id) });
  switch (m) {
    case 'SUBSCRIBE':
    case 'UNSUBSCRIBE': {
      if (params === undefined) return fail(2, 'Invalid request: missing field `params`');
      if (!Array.isArray(params)) return fail(2, 'Invalid request: params must be an array of stream names');
      const streams = new Set<string>();
      for (const p of params as unknown[]) {
        if (typeof p !== 'string') return fail(2, 'Invalid request: params must be an array of stream names');
        if (!valid(p)) return fail(2, `Invalid request: unknown stream \`${echo(p)}\``);
        streams.add(p);
      }
      return { ok: true, request: { method: m, id, streams: [...streams] } };
    }
    case 'LIST_SUBSCRIPTIONS':
      return { ok: true, request: { method: m, id } };
    case 'SET_PROPERTY':
    case 'GET_PROPERTY': {
      const set = m === 'SET_PROPERTY';
      if (!Array.isArray(params) || params.length < (set ? 2 : 1)) return fail(2, 'Invalid request: missing parameters');
      if (params.length > (set ? 2 : 1)) return fail(2, 'Invalid request: too many parameters');
      const name: unknown = params[0];
      if (typeof name !== 'string') return fail(2, 'Invalid request: property name must be a string');
      if (!(PROPERTIES as readonly string[]).includes(name)) return fail(0, 'Unknown property');
      const property = name as Property;
      if (!set) return { ok: true, request: { method: m, id, property } };
      const value: unknown = params[1];
      if (typeof value !== 'boolean') return fail(1, 'Invalid value type: expected Boolean');
      return { ok: true, request: { method: m, id, property, value } };
    }
  }
}
