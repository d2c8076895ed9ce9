import { createHash } from 'node:crypto';

/**
 * Shards (docs/scale-out.md, "Shards"): rendezvous (highest random weight) hashing of the symbol.
 * Each symbol goes to the shard whose SHA-256 of `<symbol>#<shard>` is highest, so:
 *  - the same symbol always lands on the same shard, whatever else is configured;
 *  - adding or removing a symbol moves no other symbol;
 *  - going from N to N+1 shards moves only the symbols the new shard wins (about 1/(N+1)).
 * The shards of one count are disjoint and together hold every symbol.
 */
export interface ShardSpec {
  index: number;
  count: number;
}

function weight(symbol: string, shard: number): number {
  // 48 bits of the digest: an exact integer, ties practically impossible (then the lower shard).
  return createHash('sha256').update(`${symbol}#${shard}`).digest().readUIntBE(0, 6);
}

/** The shard `symbol` belongs to among `count`. */
export function shardOf(symbol: string, count: number): number {
  if (count <= 1) return 0;
  let best = 0;
  let bestWeight = -1;
  for (let s = 0; s < count; s++) {
    const w = weight(symbol, s);
    if (w > bestWeight) {
      best = s;
      bestWeight = w;
    }
  }
  return best;
}

/** The symbols of `shard`, in config order. */
export function shardSymbols(symbols: readonly string[], shard: ShardSpec): string[] {
  if (shard.count <= 1) return [...symbols];
  return symbols.filter((s) => shardOf(s, shard.count) === shard.index);
}
