const CHUNK = 4096;

/**
 * The IDs a stream generated, 8 bytes each in fixed chunks (IDs exceed 2^32 but stay below 2^53).
 * With a limit, the oldest chunks are dropped so that at least `limit` recent IDs remain.
 */
export class IdLog {
  private readonly chunks: Float64Array[] = [];
  private used = CHUNK; // slots used in the last chunk
  private total = 0;

  constructor(private readonly limit = Number.POSITIVE_INFINITY) {}

  push(id: number): void {
    if (this.limit <= 0) return;
    if (this.used === CHUNK) {
      this.chunks.push(new Float64Array(CHUNK));
      this.used = 0;
    }
    this.chunks[this.chunks.length - 1]![this.used++] = id;
    this.total++;
    while (this.chunks.length > 1 && this.total - CHUNK >= this.limit) {
      this.chunks.shift();
      this.total -= CHUNK;
    }
  }

  get length(): number {
    return this.total;
  }

  toArray(): number[] {
    const out = new Array<number>(this.total);
    let k = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      const n = c === this.chunks.length - 1 ? this.used : CHUNK;
      for (let i = 0; i < n; i++) out[k++] = chunk[i]!;
    }
    return out;
  }
}
