import type { Venue } from '../../venues/types.js';

/**
 * Subject design (docs/scale-out.md, "Subjects"): one subject per stream,
 * `<prefix>.<venue>.<stream type>.<SYMBOL>` (`md.binance-spot.trade.BTCUSDT`,
 * `md.okx.books.BTC-USDT`), and `<prefix>.<venue>._gaps` for the ledger entries. A consumer picks
 * what it wants with wildcards: `md.*.trade.BTCUSDT`, `md.binance-spot.>`, `md.*._gaps`.
 */

/** Characters a subject token cannot hold (`.` separates tokens, `*` and `>` are wildcards): `_`. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must go
const UNSAFE = /[.*>\s\u0000-\u001f\u007f]/g;

/** One subject token from any text: never empty, no `.`, `*`, `>` or whitespace. */
export function token(text: string): string {
  const t = text.replace(UNSAFE, '_');
  return t === '' ? '_' : t;
}

/**
 * The symbol of a canonical stream id: Binance `btcusdt@depth@100ms` → `BTCUSDT`; the others
 * `<channel>:<SYMBOL>` (`trades:BTC-USDT`) → `BTC-USDT`; a stream of no symbol (user data) → `_`.
 */
export function streamSymbol(name: string): string {
  const at = name.indexOf('@');
  if (at > 0) return name.slice(0, at).toUpperCase();
  const colon = name.lastIndexOf(':');
  if (colon >= 0) return name.slice(colon + 1);
  return '_';
}

export function messageSubject(prefix: string, venue: Pick<Venue, 'name' | 'typeOf'>, name: string): string {
  return `${prefix}.${token(venue.name)}.${token(venue.typeOf(name))}.${token(streamSymbol(name))}`;
}

/** Where a venue's ledger entries go. `_gaps` cannot clash with a stream type token. */
export function gapSubject(prefix: string, venue: string): string {
  return `${prefix}.${token(venue)}._gaps`;
}
