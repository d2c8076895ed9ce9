/**
 * The frames a stream with ties (rule `ordered`, `ties: true`) accepted at its current key, to tell
 * a repeat from a new event with the same key by their bytes. Frames reach the router as views of
 * the socket's chunk (frame-reader.ts): keeping the view would keep the whole chunk (64 KiB) alive,
 * per stream with ties, and would break as soon as a chunk's memory is reused. So each is kept as
 * a copy, into slots reused from one key to the next: a running stream allocates nothing here (a
 * slot grows only for a frame longer than any before it).
 */

/** Smallest slot: room for any trade or ticker frame of the venues we read. */
const SLOT_BYTES = 1024;
/** Slots kept across keys; a key with more ties than this gets more, dropped at the next key. */
const KEPT_SLOTS = 8;

export class TieFrames {
  private readonly slots: Buffer[] = [];
  private readonly lengths: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Forget the frames of the last key. */
  clear(): void {
    this.count = 0;
    if (this.slots.length > KEPT_SLOTS) {
      this.slots.length = KEPT_SLOTS;
      this.lengths.length = KEPT_SLOTS;
    }
  }

  /** Keep a copy of `frame`. */
  add(frame: Buffer): void {
    const i = this.count++;
    let slot = this.slots[i];
    if (slot === undefined || slot.length < frame.length) {
      slot = Buffer.allocUnsafe(Math.max(SLOT_BYTES, frame.length));
      this.slots[i] = slot;
    }
    frame.copy(slot, 0);
    this.lengths[i] = frame.length;
  }

  /** One of the kept frames has exactly these bytes. */
  has(frame: Buffer): boolean {
    const n = frame.length;
    for (let i = 0; i < this.count; i++) {
      if (this.lengths[i] === n && this.slots[i]!.compare(frame, 0, n, 0, n) === 0) return true;
    }
    return false;
  }
}
