import { ConfigError } from '../errors.js';

/**
 * The universe form of `symbols` (docs/configuration.md, "A universe instead of a list"): the
 * venue's instrument list, filtered. Every filter is optional; a symbol passes when it passes all.
 */
export interface UniverseSpec {
  from: 'exchangeInfo';
  /** Quote assets to keep (`USDT`); empty: any. */
  quoteAssets: string[];
  /** The status a symbol must have (default `TRADING`). */
  status: string;
  /** Spot: keep symbols that any of their permission sets grants one of these (`SPOT`); empty: any. */
  permissions: string[];
  /** Futures: contract types to keep (`PERPETUAL`); empty: any. */
  contractTypes: string[];
  /** Always followed while the venue lists them (whatever the filters say; never over max). */
  include: string[];
  /** Never followed. */
  exclude: string[];
  /** At most this many symbols (0: no cap): the ones already followed stay, new ones queue. */
  max: number;
}

const KEYS = ['from', 'quoteAssets', 'status', 'permissions', 'contractTypes', 'include', 'exclude', 'max'] as const;
const WORD = /^[A-Z0-9_]+$/;

/** Is `v` the object form of `symbols` (not a list, not a scalar)? */
export function isUniverseForm(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validate the object form of `symbols` (`key` is where it sits: `symbols` or `feeds[1].symbols`);
 * throws ConfigError naming the key that is wrong, e.g. `symbols.quoteAssets[0]`.
 */
export function parseUniverseSpec(v: Record<string, unknown>, key: string, where: string): UniverseSpec {
  const fail = (k: string, message: string): ConfigError => new ConfigError(`${key}${k}`, `${message}${where}`);
  for (const k of Object.keys(v)) {
    if (!(KEYS as readonly string[]).includes(k)) throw fail(`.${k}`, `unknown key (a universe has ${KEYS.join(', ')})`);
  }
  if (v.from !== 'exchangeInfo') throw fail('.from', `must be "exchangeInfo" (the one instrument source so far), got ${JSON.stringify(v.from)}`);
  const words = (k: string): string[] => {
    const list = v[k];
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw fail(`.${k}`, 'must be a list of upper-case names');
    return list.map((item, i) => {
      if (typeof item !== 'string' || !WORD.test(item)) throw fail(`.${k}[${i}]`, `must be an upper-case name like USDT or BTCUSDT, got ${JSON.stringify(item)}`);
      return item;
    });
  };
  const status = v.status ?? 'TRADING';
  if (typeof status !== 'string' || !WORD.test(status)) throw fail('.status', `must be an upper-case status like TRADING, got ${JSON.stringify(status)}`);
  const max = v.max ?? 0;
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 0) throw fail('.max', `must be an integer >= 0 (0: no cap), got ${JSON.stringify(max)}`);
  const spec: UniverseSpec = {
    from: 'exchangeInfo',
    quoteAssets: words('quoteAssets'),
    status,
    permissions: words('permissions'),
    contractTypes: words('contractTypes'),
    include: words('include'),
    exclude: words('exclude'),
    max,
  };
  const both = spec.include.find((s) => spec.exclude.includes(s));
  if (both !== undefined) throw fail('.exclude', `${both} is in include too`);
  return spec;
}
