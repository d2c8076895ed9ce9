import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * The relay's URL shapes. Under `/<venue>/` for each venue it serves, and at the root for the first:
 * `/ws` and `/ws/<s1>/<s2>` (raw), `/stream?streams=<s1>/<s2>` (combined; `?streams=` may be
 * empty). USD-M also answers under `/market/...` and `/public/...` (Binance's routes since
 * 2026-04-23). The path rules are copied from the simulator's parseMarketPath
 * (src/simulator/streams.ts), which follows Binance's; the relay keeps its own copy (production
 * code, not a test tool).
 */
export interface RelayPath {
  venue: string;
  combined: boolean;
  /** Stream names as written in the URL, deduplicated, in order. */
  names: string[];
}

/** Null: not a relay endpoint (HTTP 404). */
export function parseRelayPath(venues: readonly string[], url: URL): RelayPath | null {
  let p = url.pathname;
  let venue = venues[0];
  const prefixed = /^\/([^/]+)(\/.*)?$/.exec(p);
  if (prefixed !== null && venues.includes(prefixed[1]!)) {
    venue = prefixed[1]!;
    p = prefixed[2] ?? '';
  }
  if (venue === undefined) return null;
  if (venue === 'binance-usdm') {
    const m = /^\/(?:market|public)(\/.*)$/.exec(p);
    if (m) p = m[1]!;
  }
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/stream') return { venue, combined: true, names: splitNames(url.searchParams.get('streams') ?? '') };
  if (p === '/ws') return { venue, combined: false, names: [] };
  if (p.startsWith('/ws/')) {
    let names: string[];
    try {
      names = splitNames(decodeURIComponent(p.slice(4)));
    } catch {
      return { venue, combined: false, names: [p.slice(4)] }; // undecodable: reported as an invalid stream
    }
    return { venue, combined: false, names };
  }
  return null;
}

function splitNames(s: string): string[] {
  return [...new Set(s.split('/').filter((n) => n !== ''))];
}

/**
 * Who may connect: loopback always, plus the `allow` ranges (`10.0.0.0/8`, `192.168.1.20`,
 * `fd00::/8`). An IPv4 address seen as IPv4-mapped IPv6 (`::ffff:10.1.2.3`, a dual-stack listener)
 * is checked as IPv4.
 */
export class AddressAllowList {
  private readonly list = new BlockList();

  constructor(allow: readonly string[]) {
    this.list.addSubnet('127.0.0.0', 8, 'ipv4');
    this.list.addAddress('::1', 'ipv6');
    for (const range of allow) {
      const [address = '', bits, ...rest] = range.split('/');
      const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
      const max = family === 'ipv4' ? 32 : 128;
      const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (family === null || rest.length > 0 || !(prefix >= 0 && prefix <= max)) {
        throw new Error(`relay.allow: ${JSON.stringify(range)} is not an IPv4 or IPv6 address or range like "10.0.0.0/8"`);
      }
      this.list.addSubnet(address, prefix, family);
    }
  }

  allows(remote: string | undefined): boolean {
    if (remote === undefined) return false;
    let a = remote;
    if (a.toLowerCase().startsWith('::ffff:') && isIPv4(a.slice(7))) a = a.slice(7);
    if (isIPv4(a)) return this.list.check(a, 'ipv4');
    if (isIPv6(a)) return this.list.check(a, 'ipv6');
    return false;
  }
}
