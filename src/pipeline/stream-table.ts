/**
 * Stream states keyed by the bytes of their name, looked up where the name sits in a frame: no
 * string per message. With a Map keyed by name, every message made a string of its stream name
 * (latin1Slice) only for Map.get to hash it and drop it: about 5 % of the daemon's time per message
 * and a share of its garbage (docs/performance.md, "The stream name without a string").
 *
 * Open addressing with linear probing over a power-of-two table at most half full; FNV-1a over the
 * name's bytes. A new name goes in its slot (the table doubles when half full); a removal rebuilds
 * it (streams leave rarely: an UNSUBSCRIBE, a delisting), so lookups never meet a tombstone.
 */
export class StreamTable<T> {
  private names: Buffer[] = [];
  private values: T[] = [];
  private mask = 0;
  private readonly entries = new Map<string, T>();

  set(name: string, value: T): void {
    const had = this.entries.has(name);
    this.entries.set(name, value);
    if (had) {
      // A name already in the table keeps its slot, only its value changes (rare: no rebuild).
      const k = Buffer.from(name, 'latin1');
      this.values[this.names.findIndex((n) => n !== undefined && n.equals(k))] = value;
    } else if (this.entries.size * 2 > this.names.length) this.rebuild();
    else this.insert(Buffer.from(name, 'latin1'), value);
  }

  delete(name: string): void {
    if (this.entries.delete(name)) this.rebuild();
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value whose name is exactly buf[start, end), or undefined; `hash`: its hashBytes() if known. */
  get(buf: Buffer, start: number, end: number, hash = -1): T | undefined {
    const len = end - start;
    let i = (hash === -1 ? hashBytes(buf, start, end) : hash) & this.mask;
    const names = this.names;
    for (;;) {
      const k = names[i];
      if (k === undefined) return undefined;
      if (k.length === len) {
        let j = 0;
        while (j < len && k[j] === buf[start + j]) j++;
        if (j === len) return this.values[i];
      }
      i = (i + 1) & this.mask;
    }
  }

  private rebuild(): void {
    let cap = 8;
    while (cap < this.entries.size * 2) cap *= 2;
    this.names = new Array<Buffer>(cap);
    this.values = new Array<T>(cap);
    this.mask = cap - 1;
    for (const [name, value] of this.entries) this.insert(Buffer.from(name, 'latin1'), value);
  }

  private insert(k: Buffer, value: T): void {
    let i = hashBytes(k, 0, k.length) & this.mask;
    while (this.names[i] !== undefined) i = (i + 1) & this.mask;
    this.names[i] = k;
    this.values[i] = value;
  }
}

/** FNV-1a, 32 bits. */
export function hashBytes(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}
