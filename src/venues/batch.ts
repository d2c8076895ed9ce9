/**
 * Groups items into requests of at most `maxCount` items and `maxBytes` bytes each: `envelope` is
 * a request's size without items, `sizeOf` one item's share (its JSON and separator). An item
 * larger than `maxBytes` alone still gets a request of its own. Shared by the venues whose
 * subscribe requests carry a list of args under count and size caps (OKX, Bitget).
 */
export function batchBySize<T>(items: readonly T[], maxCount: number, maxBytes: number, envelope: number, sizeOf: (item: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = envelope;
  for (const item of items) {
    const size = sizeOf(item);
    if (cur.length > 0 && (cur.length >= maxCount || bytes + size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = envelope;
    }
    cur.push(item);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
