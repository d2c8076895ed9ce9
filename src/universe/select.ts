import type { Instrument } from '../venues/types.js';
import type { UniverseSpec } from './spec.js';

/**
 * The symbols a universe follows, from the venue's instrument list: every listed symbol that
 * passes the filters (status, quote asset, permission, contract type, not excluded) or is in
 * `include`, and is a well-formed symbol of the venue. With `max`, membership is sticky: `include`
 * first, then the symbols followed now (`current`) that still pass, then new ones in the venue's
 * order, so a new listing never pushes out a symbol already recorded. Sorted.
 */
export function selectUniverse(instruments: readonly Instrument[], spec: UniverseSpec, isSymbol: (s: string) => boolean, current: readonly string[] = []): string[] {
  const listed = new Map(instruments.filter((i) => isSymbol(i.symbol)).map((i) => [i.symbol, i]));
  const passes = (i: Instrument): boolean =>
    i.status === spec.status &&
    (spec.quoteAssets.length === 0 || spec.quoteAssets.includes(i.quoteAsset)) &&
    (spec.permissions.length === 0 || i.permissions.some((p) => spec.permissions.includes(p))) &&
    (spec.contractTypes.length === 0 || (i.contractType !== null && spec.contractTypes.includes(i.contractType)));
  const chosen = new Set<string>();
  const cap = spec.max === 0 ? Infinity : spec.max;
  const take = (symbol: string): void => {
    if (chosen.size < cap && !spec.exclude.includes(symbol)) chosen.add(symbol);
  };
  for (const s of spec.include) if (listed.has(s)) take(s);
  for (const s of current) {
    const i = listed.get(s);
    if (i !== undefined && passes(i)) take(s);
  }
  for (const i of listed.values()) if (passes(i)) take(i.symbol);
  return [...chosen].sort();
}

/** What changed between two symbol sets: added and removed, each sorted. */
export function diffSymbols(before: readonly string[], after: readonly string[]): { added: string[]; removed: string[] } {
  const b = new Set(before);
  const a = new Set(after);
  return { added: after.filter((s) => !b.has(s)).sort(), removed: before.filter((s) => !a.has(s)).sort() };
}
