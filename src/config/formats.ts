import { isIPv4, isIPv6 } from 'node:net';
import convict from 'convict';
import { validate as isValidCron } from 'node-cron';
import { periodProblem } from '../recorder/files.js';
import { venues } from '../venues/index.js';

/**
 * The value formats of the config schema. Each is a pure check returning what is wrong (or null),
 * registered with convict under an `fk-` name. Named formats, rather than inline functions, also keep
 * convict from "helpfully" coercing strings in a file ("5" → 5, "no" → true): a JSON file must carry
 * the right JSON type, and environment strings are parsed by us (see env.ts), by `envKind`.
 */

/** How the text of an environment variable becomes a value. */
export type EnvKind = 'string' | 'number' | 'boolean' | 'list' | 'json';

export interface Problem {
  /** Appended to the key, e.g. `[1].end` for maintenance.windows. */
  at?: string;
  message: string;
}

export interface Format {
  envKind: EnvKind;
  /** Never put the value into the message when `sensitive`. */
  check(value: unknown): Problem | null;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A value as it may appear in an error message: short, JSON-ish. */
export function show(value: unknown): string {
  let s: string;
  if (typeof value === 'number') s = String(value);
  else if (value === undefined) s = 'nothing';
  else s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

const problem = (message: string, at?: string): Problem => (at === undefined ? { message } : { at, message });

function integer(min: number, max: number, what: string): Format {
  return {
    envKind: 'number',
    check: (v) =>
      typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? null : problem(`must be ${what}, got ${show(v)}`),
  };
}

function url(protocols: string[]): Format {
  const want = protocols.map((p) => `${p}//`).join(' or ');
  return {
    envKind: 'string',
    check: (v) => {
      if (typeof v !== 'string') return problem(`must be a ${want} URL, got ${show(v)}`);
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        return problem(`must be a ${want} URL, got ${show(v)}`);
      }
      // Credentials in a URL would end up in logs and in this very message: refuse without echoing.
      if (u.username !== '' || u.password !== '') return problem('must not carry credentials (user:password@)');
      if (!protocols.includes(u.protocol)) return problem(`must be a ${want} URL, got ${show(v)}`);
      if (u.hash !== '') return problem(`must not have a #fragment, got ${show(v)}`);
      return null;
    },
  };
}

function stringList(what: string, itemRule?: { re: RegExp; hint: string }): Format {
  return {
    envKind: 'list',
    check: (v) => {
      if (!Array.isArray(v)) return problem(`must be a list of ${what}, got ${typeName(v)}`);
      if (v.length === 0) return problem(`must list at least one ${what.replace(/s$/, '')}`);
      for (const [i, item] of v.entries()) {
        if (typeof item !== 'string' || item === '') return problem(`must be a non-empty string, got ${show(item)}`, `[${i}]`);
        if (itemRule && !itemRule.re.test(item)) return problem(`${itemRule.hint}, got ${show(item)}`, `[${i}]`);
      }
      return null;
    },
  };
}

/** ISO 8601 with a time zone: a bare "2026-07-09 07:00" would silently be read as local time. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

export function parseInstant(v: unknown): number | null {
  if (typeof v !== 'string' || !ISO_WITH_ZONE.test(v)) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

const windows: Format = {
  envKind: 'json',
  check: (v) => {
    if (!Array.isArray(v)) return problem(`must be a list of {start, end, reason}, got ${typeName(v)}`);
    for (const [i, w] of v.entries()) {
      const at = `[${i}]`;
      if (typeof w !== 'object' || w === null || Array.isArray(w)) return problem(`must be an object {start, end, reason}, got ${typeName(w)}`, at);
      const rec = w as Record<string, unknown>;
      for (const k of Object.keys(rec)) {
        if (k !== 'start' && k !== 'end' && k !== 'reason') return problem('unknown key (a window has start, end, reason)', `${at}.${k}`);
      }
      const start = parseInstant(rec['start']);
      if (start === null) return problem(`must be an ISO 8601 date with a time zone, e.g. "2026-07-09T07:00:00Z", got ${show(rec['start'])}`, `${at}.start`);
      const end = parseInstant(rec['end']);
      if (end === null) return problem(`must be an ISO 8601 date with a time zone, e.g. "2026-07-09T08:00:00Z", got ${show(rec['end'])}`, `${at}.end`);
      if (end <= start) return problem(`must be after start (${String(rec['start'])}), got ${show(rec['end'])}`, `${at}.end`);
      if (rec['reason'] !== undefined && typeof rec['reason'] !== 'string') return problem(`must be a string, got ${show(rec['reason'])}`, `${at}.reason`);
    }
    return null;
  },
};

/** `relay.allow`: address ranges (CIDR, or one address) allowed to connect besides loopback. */
const cidrs: Format = {
  envKind: 'list',
  check: (v) => {
    if (!Array.isArray(v)) return problem(`must be a list of address ranges like "10.0.0.0/8", got ${typeName(v)}`);
    for (const [i, item] of v.entries()) {
      if (typeof item !== 'string' || parseCidr(item) === null) return problem(`must be an IPv4 or IPv6 address or range like "10.0.0.0/8", got ${show(item)}`, `[${i}]`);
    }
    return null;
  },
};

/** `10.0.0.0/8`, `192.168.1.5` (a /32), `fd00::/8`: the network, its prefix and family; null when not one. */
export function parseCidr(s: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', bits, ...rest] = s.split('/');
  if (rest.length > 0) return null;
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
  if (family === null) return null;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { address, prefix, family };
}

/** `sinks.nats.servers`: nats:// or tls:// URLs (host:port alone is nats://), never with credentials in them. */
const natsUrls: Format = {
  envKind: 'list',
  check: (v) => {
    if (!Array.isArray(v) || v.length === 0) return problem(`must be a list of at least one NATS URL like "nats://127.0.0.1:4222", got ${show(v)}`);
    for (const [i, item] of v.entries()) {
      if (typeof item !== 'string') return problem(`must be a NATS URL like "nats://127.0.0.1:4222", got ${show(item)}`, `[${i}]`);
      let u: URL;
      try {
        u = new URL(/^[a-z]+:\/\//.test(item) ? item : `nats://${item}`);
      } catch {
        return problem(`must be a NATS URL like "nats://127.0.0.1:4222", got ${show(item)}`, `[${i}]`);
      }
      // Never echo a credential: the value is not repeated.
      if (u.username !== '' || u.password !== '') return problem('must not carry credentials (use sinks.nats.credsFile or FEEDKEEPER_NATS_TOKEN / FEEDKEEPER_NATS_USER / FEEDKEEPER_NATS_PASSWORD)', `[${i}]`);
      if (u.protocol !== 'nats:' && u.protocol !== 'tls:') return problem(`must be a nats:// or tls:// URL, got ${show(item)}`, `[${i}]`);
    }
    return null;
  },
};

/** The keys a feed may set; everything else is shared by all feeds (docs/configuration.md#feeds). */
export const FEED_KEYS = ['venue', 'symbols', 'streams', 'endpoints', 'limits', 'connection', 'maintenance', 'health'] as const;

/** The outer shape of `feeds`; each feed's values are checked by the schema itself (load.ts). */
const feeds: Format = {
  envKind: 'json',
  check: (v) => {
    if (!Array.isArray(v)) return problem(`must be a list of feeds {venue, symbols, streams, ...}, got ${typeName(v)}`);
    const seen = new Map<string, number>();
    for (const [i, f] of v.entries()) {
      const at = `[${i}]`;
      if (typeof f !== 'object' || f === null || Array.isArray(f)) return problem(`must be an object {venue, symbols, streams, ...}, got ${typeName(f)}`, at);
      const rec = f as Record<string, unknown>;
      for (const k of Object.keys(rec)) {
        if (!(FEED_KEYS as readonly string[]).includes(k)) return problem(`unknown key (a feed has ${FEED_KEYS.join(', ')}; the rest is shared by all feeds)`, `${at}.${k}`);
      }
      const venue = rec['venue'];
      if (typeof venue !== 'string' || !venues.has(venue)) return problem(`must be one of ${[...venues.keys()].join(', ')}, got ${show(venue)}`, `${at}.venue`);
      // One feed per venue: recordings, checkpoints and metrics are per venue.
      const first = seen.get(venue);
      if (first !== undefined) return problem(`${venue} is already feeds[${first}]: give each venue one feed (list all its symbols there)`, `${at}.venue`);
      seen.set(venue, i);
    }
    return null;
  },
};

export const formats = {
  'fk-venue': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' && venues.has(v) ? null : problem(`must be one of ${[...venues.keys()].join(', ')}, got ${show(v)}`)),
  },
  'fk-ws-url': url(['ws:', 'wss:']),
  'fk-http-url': url(['http:', 'https:']),
  'fk-symbols': stringList('symbols'),
  'fk-streams': stringList('stream types'),
  'fk-events': stringList('event names', { re: /^[A-Z][A-Z0-9_]*$/, hint: 'must be an upper-case event name like ORDER_TRADE_UPDATE' }),
  'fk-positive-int': integer(1, Number.MAX_SAFE_INTEGER, 'a positive integer'),
  'fk-nat': integer(0, Number.MAX_SAFE_INTEGER, 'an integer >= 0'),
  'fk-port': integer(0, 65535, 'a port number 0-65535'),
  'fk-multiplier': {
    envKind: 'number',
    check: (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 1 ? null : problem(`must be a number >= 1, got ${show(v)}`)),
  },
  'fk-boolean': {
    envKind: 'boolean',
    check: (v) => (typeof v === 'boolean' ? null : problem(`must be true or false, got ${show(v)}`)),
  },
  'fk-string': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' ? null : problem(`must be a string, got ${show(v)}`)),
  },
  'fk-non-empty-string': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' && v !== '' ? null : problem(`must be a non-empty string, got ${show(v)}`)),
  },
  // Never echo a credential, not even a wrongly typed one.
  'fk-secret': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' ? null : problem(`must be a string, got ${typeName(v)}`)),
  },
  'fk-log-level': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v) ? null : problem(`must be one of ${LOG_LEVELS.join(', ')}, got ${show(v)}`)),
  },
  'fk-cron': {
    envKind: 'string',
    check: (v) =>
      typeof v === 'string' && isValidCron(v)
        ? null
        : problem(`must be a node-cron expression (5 or 6 fields, e.g. "0 */30 * * * *"), got ${show(v)}`),
  },
  'fk-compress': {
    envKind: 'string',
    check: (v) => (v === 'gzip' || v === 'none' ? null : problem(`must be "gzip" or "none", got ${show(v)}`)),
  },
  'fk-compress-level': integer(1, 9, 'an integer from 1 (fastest) to 9 (smallest)'),
  'fk-read-threads': integer(0, 16, 'an integer from 0 (read on the main thread) to 16'),
  'fk-hold-reads-ms': integer(0, 10_000, 'an integer from 0 (never hold reads) to 10000 ms'),
  'fk-rotate-every-ms': {
    envKind: 'number',
    check: (v) => {
      const p = typeof v === 'number' ? periodProblem(v) : `must be a number of milliseconds, got ${show(v)}`;
      return p === null ? null : problem(p);
    },
  },
  'fk-windows': windows,
  'fk-feeds': feeds,
  'fk-cidrs': cidrs,
  'fk-nats-urls': natsUrls,
  'fk-nats-name': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v) ? null : problem(`must be a JetStream stream name (letters, digits, _ and -), got ${show(v)}`)),
  },
  'fk-nats-prefix': {
    envKind: 'string',
    check: (v) =>
      typeof v === 'string' && /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/.test(v) ? null : problem(`must be subject tokens of letters, digits, _ and - joined by dots (no *, >, spaces), got ${show(v)}`),
  },
  'fk-collector-id': {
    envKind: 'string',
    check: (v) => (typeof v === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(v) ? null : problem(`must be 1-64 letters, digits, _, . and -, got ${show(v)}`)),
  },
} satisfies Record<string, Format>;

export type FormatName = keyof typeof formats;

export function getFormat(name: string): Format | undefined {
  return Object.hasOwn(formats, name) ? formats[name as FormatName] : undefined;
}

let registered = false;

/** Register the formats with convict (global to convict; idempotent). */
export function registerFormats(): void {
  if (registered) return;
  for (const [name, f] of Object.entries(formats)) {
    convict.addFormat({
      name,
      validate: (value: unknown) => {
        const p = f.check(value);
        if (p) throw new Error(p.at ? `${p.at}: ${p.message}` : p.message);
      },
    });
  }
  registered = true;
}
