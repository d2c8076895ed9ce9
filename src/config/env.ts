import { ConfigError } from '../errors.js';
import { suggest } from './suggest.js';
import { NON_CONFIG_ENV, type KeyInfo } from './schema.js';
import type { EnvKind } from './formats.js';

export const ENV_PREFIX = 'FEEDKEEPER_';

export interface EnvLayer {
  /** Nested object to load over the files, like one more config file. */
  data: Record<string, unknown>;
  /** key → the variable that set it. */
  sources: Map<string, string>;
}

/**
 * Read every FEEDKEEPER_* variable. Each config key `a.bC` is set by FEEDKEEPER_A_B_C. A
 * FEEDKEEPER_* variable that maps to no key is refused like an unknown key in a file: a typo must
 * not silently leave the default in force.
 */
export function readEnv(env: NodeJS.ProcessEnv, keys: KeyInfo[]): EnvLayer {
  const byEnv = new Map(keys.map((k) => [k.env, k]));
  const data: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX)) continue;
    const text = env[name];
    if (text === undefined) continue;
    if ((NON_CONFIG_ENV as readonly string[]).includes(name)) continue;
    const info = byEnv.get(name);
    if (!info) {
      const hint = suggest(name, [...byEnv.keys(), ...NON_CONFIG_ENV]);
      throw new ConfigError(name, `unknown environment variable: no config key maps to it${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    setPath(data, info.key, parseEnvValue(text, info.envKind, info.key, name));
    sources.set(info.key, name);
  }
  return { data, sources };
}

/**
 * Text → value. Text that does not parse as the wanted type is passed through as a string, so the
 * format check reports it with the key ("must be a positive integer, got \"abc\"").
 */
export function parseEnvValue(text: string, kind: EnvKind, key: string, name: string): unknown {
  switch (kind) {
    case 'string':
      return text;
    case 'number':
      return /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : text;
    case 'boolean':
      if (/^\s*true\s*$/i.test(text)) return true;
      if (/^\s*false\s*$/i.test(text)) return false;
      return text;
    case 'list': {
      const t = text.trim();
      if (t.startsWith('[')) return parseJson(t, key, name, 'a JSON array');
      return t
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    }
    case 'json':
      return parseJson(text, key, name, 'JSON');
  }
}

function parseJson(text: string, key: string, name: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // The parser's message quotes the input; not needed here, the value is the user's own.
    throw new ConfigError(key, `${name} is not valid ${what}`);
  }
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (typeof next === 'object' && next !== null) node = next as Record<string, unknown>;
    else node = node[p] = {};
  }
  node[parts[parts.length - 1]!] = value;
}
