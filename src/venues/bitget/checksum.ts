/**
 * Bitget's book checksum ([G3] "Depth-Channel", checksum): a signed CRC32 over the local book's top
 * 25 levels as `bid1Px:bid1Sz:ask1Px:ask1Sz:bid2Px:…`, a side that runs out skipped, the prices and
 * sizes as the exchange wrote them ("0.5000", not "0.5"). Whether v2 still sends it is uncertain
 * (one page copy shows `"checksum":0`, others none): it is verified only when present and non-zero.
 */

const TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC32 (IEEE) of the latin1 text, as a signed 32-bit integer (Bitget's `checksum`). */
export function crc32Signed(text: string): number {
  let c = -1;
  for (let i = 0; i < text.length; i++) c = TABLE[(c ^ text.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) | 0;
}

type Level = readonly [price: string, size: string];

/** The checksum text of the best 25 levels a side (bids and asks best first). */
export function checksumText(bids: readonly Level[], asks: readonly Level[]): string {
  const parts: string[] = [];
  for (let i = 0; i < 25; i++) {
    const b = bids[i];
    const a = asks[i];
    if (b !== undefined) parts.push(b[0], b[1]);
    if (a !== undefined) parts.push(a[0], a[1]);
  }
  return parts.join(':');
}

export function bookChecksum(bids: readonly Level[], asks: readonly Level[]): number {
  return crc32Signed(checksumText(bids, asks));
}

/**
 * The local copy of one `books` stream, kept only to verify checksums: the levels by price string,
 * a size "0" removes one. Sorted on demand (a check), not per update.
 */
export class ChecksumBook {
  private readonly bids = new Map<string, string>();
  private readonly asks = new Map<string, string>();

  /** A snapshot replaces the book; an update changes it. */
  apply(snapshot: boolean, bids: readonly Level[], asks: readonly Level[]): void {
    if (snapshot) {
      this.bids.clear();
      this.asks.clear();
    }
    for (const [p, s] of bids) set(this.bids, p, s);
    for (const [p, s] of asks) set(this.asks, p, s);
  }

  checksum(): number {
    const top = (m: Map<string, string>, desc: boolean): Level[] =>
      [...m.entries()].sort((x, y) => (desc ? Number(y[0]) - Number(x[0]) : Number(x[0]) - Number(y[0]))).slice(0, 25);
    return bookChecksum(top(this.bids, true), top(this.asks, false));
  }
}

function set(m: Map<string, string>, price: string, size: string): void {
  if (Number(size) === 0) m.delete(price);
  else m.set(price, size);
}
