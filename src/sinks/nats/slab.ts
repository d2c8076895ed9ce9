/**
 * Where the NATS sink writes the payloads it keeps until they are acknowledged: views of large
 * chunks, one view a message, rather than Buffer.allocUnsafe() per message (an 8 KiB pool, so a
 * new ArrayBuffer every 30 messages) and a second view to drop the line's newline. A chunk lives
 * as long as one of its views is pending: the buffer holds at most a chunk more than it counts.
 */
export class Slab {
  private chunk: Buffer;
  private pos = 0;

  constructor(private readonly chunkBytes = 256 * 1024) {
    this.chunk = Buffer.allocUnsafeSlow(chunkBytes);
  }

  /** The chunk with `size` bytes free at `at`; commit() then keeps what of them is the message. */
  reserve(size: number): Buffer {
    if (this.pos + size > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, size));
      this.pos = 0;
    }
    return this.chunk;
  }

  /** Where the next reservation writes. */
  get at(): number {
    return this.pos;
  }

  /** Keeps `n` bytes at `at` (what was written there) and returns a view of them. */
  commit(n: number): Buffer {
    const view = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }
}
