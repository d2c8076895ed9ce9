import { isUtf8 } from 'node:buffer';

/**
 * The reading half of a WebSocket client (RFC 6455 §5), for the market-data hot path: frames are
 * parsed where they sit in the socket's chunk, and a message that lies whole in one chunk is handed
 * on as a view of it (one Buffer object per message, no copy). Only a frame that spans chunks is
 * copied, once, with just the bytes it needs from the next chunk. No stream machinery, no event
 * emitter: one handler call per message.
 *
 * What it checks, as `ws` does: no RSV bits (no extension is negotiated), no mask from a server,
 * known opcodes, control frames unfragmented and at most 125 bytes, continuation frames only inside
 * a fragmented message, the size limit (1009), text messages valid UTF-8 (1007), close codes.
 * A violation calls `onError` with the close code to send, and the reader stops for good.
 */

export interface FrameHandlers {
  /** A whole message (fragments joined): a view of the socket's bytes, valid until the next one. */
  onMessage(data: Buffer, isBinary: boolean): void;
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** The peer's close frame: code 1005 when it carried none. */
  onClose(code: number, reason: Buffer): void;
  /** A protocol violation: the close code to answer with, and why. */
  onError(closeCode: number, message: string): void;
}

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const EMPTY = Buffer.alloc(0);

/**
 * A Buffer view of a message's bytes made the way Node makes its own (FastBuffer: a Uint8Array
 * subclass whose prototype is Buffer.prototype), without Buffer#subarray's argument handling:
 * about 13 instead of 38 ns a message (docs/performance.md). `Buffer.isBuffer` and every Buffer
 * method work on it as on any Buffer.
 */
export class MessageView extends Uint8Array {}
Object.setPrototypeOf(MessageView.prototype, Buffer.prototype);

/**
 * [from, to) of a chunk as a Buffer over the same memory: `ab` and `base` are the chunk's `buffer`
 * and `byteOffset`, read once per chunk (reading `buffer` is a call into C++, about 90 instructions).
 */
function view(ab: ArrayBuffer, base: number, from: number, to: number): Buffer {
  return new MessageView(ab, base + from, to - from) as unknown as Buffer;
}

/** Close codes a peer may send (RFC 6455 §7.4, as `ws` accepts them). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

export class FrameReader {
  /** Bytes of a frame begun in an earlier chunk, and how many the whole frame has (0: not known yet). */
  private partial: Buffer[] = [];
  private partialLength = 0;
  private partialNeed = 0;
  /** A fragmented message in progress: its opcode and its fragments. */
  private fragmentOp = -1;
  private fragments: Buffer[] = [];
  private fragmentsLength = 0;
  /** Paused by a handler: the rest of the chunk being parsed, and chunks that came after it. */
  private paused = false;
  private held: Buffer | null = null;
  private readonly queued: Buffer[] = [];
  private failed = false;
  constructor(
    private readonly handlers: FrameHandlers,
    private readonly maxPayload: number,
  ) {}

  /** Stop handing on messages after the current one; push() keeps what arrives meanwhile. */
  pause(): void {
    this.paused = true;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Go on with what was held back at the pause (may pause again). */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = null;
    if (held !== null) this.parse(held, 0);
    while (!this.paused && !this.failed && this.queued.length > 0) this.push(this.queued.shift()!);
  }

  /** A chunk from the socket. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    if (this.paused) {
      this.queued.push(chunk);
      return;
    }
    let p = 0;
    if (this.partialLength > 0) {
      p = this.completePartial(chunk);
      if (p < 0) return;
    }
    this.parse(chunk, p);
  }

  /**
   * Complete the frame begun in an earlier chunk with the bytes of `chunk` it needs, and handle it;
   * returns where the rest of `chunk` starts, or -1 when `chunk` went whole into the partial frame.
   */
  private completePartial(chunk: Buffer): number {
    if (this.partialNeed === 0) {
      // The header itself was cut: it is at most 14 bytes, so join just enough to read it.
      const head = Buffer.concat([...this.partial, chunk.subarray(0, 14)]);
      this.partialNeed = frameLength(head, 0, head.length);
      if (this.partialNeed === 0) {
        this.partial.push(chunk);
        this.partialLength += chunk.length;
        return -1;
      }
      if (this.partialNeed < 0) {
        this.fail(1009, 'message too big');
        return -1;
      }
      if (this.partialNeed - 14 > this.maxPayload) return this.failTooBig();
    }
    const take = this.partialNeed - this.partialLength;
    if (chunk.length < take) {
      this.partial.push(chunk);
      this.partialLength += chunk.length;
      return -1;
    }
    this.partial.push(take === chunk.length ? chunk : chunk.subarray(0, take));
    const frame = Buffer.concat(this.partial, this.partialNeed);
    this.partial = [];
    this.partialLength = 0;
    this.partialNeed = 0;
    this.parse(frame, 0);
    if (this.paused || this.failed) {
      // The frame's own handler paused: keep the rest of this chunk for resume().
      if (take < chunk.length && !this.failed) this.queued.unshift(chunk.subarray(take));
      return -1;
    }
    return take;
  }

  private parse(buf: Buffer, start: number): void {
    const n = buf.length;
    const ab = buf.buffer as ArrayBuffer;
    const base = buf.byteOffset;
    let p = start;
    while (p < n) {
      if (this.paused) {
        this.held = buf.subarray(p);
        return;
      }
      const avail = n - p;
      if (avail < 2) return this.keepPartial(buf, p, 0);
      const b0 = buf[p]!;
      const b1 = buf[p + 1]!;
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (avail < 4) return this.keepPartial(buf, p, 0);
        len = (buf[p + 2]! << 8) | buf[p + 3]!;
        hdr = 4;
      } else if (len === 127) {
        if (avail < 10) return this.keepPartial(buf, p, 0);
        const high = buf.readUInt32BE(p + 2);
        // Above 2^53 - 1 a length cannot be a JavaScript integer: far past any limit anyway.
        if (high > 0x1fffff) return void this.failTooBig();
        len = high * 0x100000000 + buf.readUInt32BE(p + 6);
        hdr = 10;
      }
      if ((b1 & 0x80) !== 0) return void this.fail(1002, 'a server must not mask its frames');
      if (len > this.maxPayload) return void this.failTooBig();
      if (avail < hdr + len) return this.keepPartial(buf, p, hdr + len);
      const from = p + hdr;
      p = from + len;
      if (!this.frame(b0, buf, ab, base, from, p)) return;
    }
  }

  private keepPartial(buf: Buffer, p: number, need: number): void {
    const rest = buf.subarray(p);
    this.partial = [rest];
    this.partialLength = rest.length;
    this.partialNeed = need;
  }

  /** One whole frame: payload is buf[from, to) (`ab`, `base`: buf's memory). False when the reader failed. */
  private frame(b0: number, buf: Buffer, ab: ArrayBuffer, base: number, from: number, to: number): boolean {
    if ((b0 & 0x70) !== 0) return this.fail(1002, 'RSV bits set without a negotiated extension');
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    if (op === OP_TEXT || op === OP_BINARY) {
      if (this.fragmentOp !== -1) return this.fail(1002, 'a new message inside a fragmented one');
      if (fin) return this.message(view(ab, base, from, to), op);
      this.fragmentOp = op;
      this.fragments = [buf.subarray(from, to)];
      this.fragmentsLength = to - from;
      return true;
    }
    if (op === OP_CONTINUATION) {
      if (this.fragmentOp === -1) return this.fail(1002, 'a continuation frame outside a fragmented message');
      this.fragmentsLength += to - from;
      if (this.fragmentsLength > this.maxPayload) return this.fail(1009, `a message over ${this.maxPayload} bytes`);
      // The fragments are views of chunks that the socket does not reuse: they stay valid.
      this.fragments.push(buf.subarray(from, to));
      if (!fin) return true;
      const data = Buffer.concat(this.fragments, this.fragmentsLength);
      const kind = this.fragmentOp;
      this.fragmentOp = -1;
      this.fragments = [];
      this.fragmentsLength = 0;
      return this.message(data, kind);
    }
    if (op !== OP_CLOSE && op !== OP_PING && op !== OP_PONG) return this.fail(1002, `unknown opcode ${op}`);
    if (!fin) return this.fail(1002, 'a fragmented control frame');
    if (to - from > 125) return this.fail(1002, 'a control frame over 125 bytes');
    const data = to > from ? buf.subarray(from, to) : EMPTY;
    if (op === OP_PING) this.handlers.onPing(data);
    else if (op === OP_PONG) this.handlers.onPong(data);
    else return this.close(data);
    return true;
  }

  private message(data: Buffer, op: number): boolean {
    if (op === OP_TEXT && !isUtf8(data)) return this.fail(1007, 'a text message that is not valid UTF-8');
    this.handlers.onMessage(data, op === OP_BINARY);
    return true;
  }

  private close(data: Buffer): boolean {
    if (data.length === 0) {
      this.handlers.onClose(1005, EMPTY);
      return true;
    }
    if (data.length === 1) return this.fail(1002, 'a close frame with a 1-byte payload');
    const code = data.readUInt16BE(0);
    if (!isValidCloseCode(code)) return this.fail(1002, `invalid close code ${code}`);
    const reason = data.subarray(2);
    if (!isUtf8(reason)) return this.fail(1007, 'a close reason that is not valid UTF-8');
    this.handlers.onClose(code, reason);
    return true;
  }

  private failTooBig(): -1 {
    this.fail(1009, `a message over ${this.maxPayload} bytes`);
    return -1;
  }

  private fail(code: number, message: string): false {
    if (this.failed) return false;
    this.failed = true;
    this.partial = [];
    this.partialLength = 0;
    this.fragments = [];
    this.held = null;
    this.queued.length = 0;
    this.handlers.onError(code, message);
    return false;
  }
}

/** Total bytes of the frame starting at `p` (header + payload), 0 when the header is incomplete, -1 past 2^53. */
function frameLength(buf: Buffer, p: number, n: number): number {
  const avail = n - p;
  if (avail < 2) return 0;
  const len = buf[p + 1]! & 0x7f;
  if (len < 126) return 2 + len;
  if (len === 126) return avail < 4 ? 0 : 4 + ((buf[p + 2]! << 8) | buf[p + 3]!);
  if (avail < 10) return 0;
  const high = buf.readUInt32BE(p + 2);
  if (high > 0x1fffff) return -1;
  return 10 + high * 0x100000000 + buf.readUInt32BE(p + 6);
}
