import { FEED_KEYS } from './config/formats.js';
import type { Config } from './config/types.js';

/** The keys a reload applies live; every other key needs a restart (docs/operations.md, "Reload"). */
const LIVE_KEYS = new Set(['symbols', 'symbolsFrom', 'streams']);

/**
 * The keys whose value differs between the running config and a reloaded one, other than the live
 * ones (each feed's symbols and streams), as config keys (`endpoints.stream`, `feeds[1].limits`...).
 * A different number of feeds, or a feed of another venue, is `feeds`.
 */
export function restartKeys(running: Config, next: Config): string[] {
  const out: string[] = [];
  const single = running.feeds.length === 1 && next.feeds.length === 1;
  if (running.feeds.length !== next.feeds.length || running.feeds.some((f, i) => f.venue !== next.feeds[i]!.venue)) out.push('feeds');
  else {
    for (const [i, f] of running.feeds.entries()) diff(f, next.feeds[i]!, single ? '' : `feeds[${i}].`, out, true);
  }
  // The shared keys (recorder, ledger, metrics, relay, sinks...) are in every feed: compare them once.
  return [...new Set(out)];
}

function diff(a: unknown, b: unknown, prefix: string, out: string[], top: boolean): void {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null || Array.isArray(a) || Array.isArray(b)) {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(prefix.replace(/\.$/, ''));
    return;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if (top && (LIVE_KEYS.has(k) || k === 'feeds')) continue;
    // A shared key (recorder, ledger, metrics...) is named as it is written, without feeds[i].
    const p = top && !(FEED_KEYS as readonly string[]).includes(k) ? '' : prefix;
    diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${p}${k}.`, out, false);
  }
}
