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
class MessageView extends Uint8Array {}
Object.setPrototypeOf(MessageView.prototype, Buffer.prototype);

/** buf[from, to) as a Buffer over the same memory. */
function view(buf: Buffer, from: number, to: number): Buffer {
  return new MessageView(buf.buffer as ArrayBuffer, buf.byteOffset + from, to - from) as unknown as Buffer;
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
  /**
   * The text payloads of buf[.., validEnd) (validBuf: the buffer being parsed) are known to be
   * valid UTF-8: checked in one isUtf8 call for a run of whole text frames (validateRun).
   */
  private validBuf: Buffer | null = null;
  private validEnd = 0;
  /** validateRun's scratch: where each frame header of the run starts, and its bytes. */
  private runHeads = new Int32Array(256);
  private runBytes = new Uint8Array(1024);

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
    let p = start;
    if (this.fragmentOp === -1) this.validateRun(buf, start);
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
      if (!this.frame(b0, buf, from, p)) return;
    }
  }

  /**
   * UTF-8 once per run instead of once per message: the whole unfragmented text frames (FIN, text,
   * no RSV, no mask, 7- or 16-bit length, within maxPayload) that follow each other from `p` in
   * `buf` are checked in one isUtf8 call over the span from the first payload to the end of the last,
   * with the header bytes between the payloads set to ASCII spaces for the call and put back right
   * after. An ASCII byte can neither sit inside a multi-byte character nor end one early, so the
   * span is valid exactly when every payload is (a character cut between two frames is invalid both
   * ways). When valid, frame() skips the per-message check for the run; when not, nothing is
   * skipped and the per-message check fails the right message, after handing on the ones before.
   */
  private validateRun(buf: Buffer, p: number): void {
    this.validBuf = null;
    const n = buf.length;
    const max = this.maxPayload;
    let heads = this.runHeads;
    let count = 0;
    let firstFrom = -1;
    let end = p;
    while (n - p >= 2) {
      if (buf[p] !== 0x81) break;
      let len = buf[p + 1]!;
      let hdr = 2;
      if (len >= 126) {
        // Mask bit set (a violation frame() reports) or a 64-bit length: not in a run.
        if (len !== 126 || n - p < 4) break;
        len = (buf[p + 2]! << 8) | buf[p + 3]!;
        hdr = 4;
      }
      if (len > max || n - p < hdr + len) break;
      if (count === heads.length) {
        const more = new Int32Array(heads.length * 2);
        more.set(heads);
        this.runHeads = heads = more;
        const bytes = new Uint8Array(heads.length * 4);
        bytes.set(this.runBytes);
        this.runBytes = bytes;
      }
      heads[count++] = p;
      if (firstFrom === -1) firstFrom = p + hdr;
      p += hdr + len;
      end = p;
    }
    if (count < 2) return;
    const saved = this.runBytes;
    for (let i = 1; i < count; i++) {
      const h = heads[i]!;
      const hdr = buf[h + 1] === 126 ? 4 : 2;
      for (let j = 0; j < hdr; j++) {
        saved[i * 4 + j] = buf[h + j]!;
        buf[h + j] = 0x20;
      }
    }
    const ok = isUtf8(buf.subarray(firstFrom, end));
    for (let i = 1; i < count; i++) {
      const h = heads[i]!;
      // The first byte was 0x81 and the second says the header's length: put back what was there.
      buf[h] = saved[i * 4]!;
      buf[h + 1] = saved[i * 4 + 1]!;
      if (saved[i * 4 + 1] === 126) {
        buf[h + 2] = saved[i * 4 + 2]!;
        buf[h + 3] = saved[i * 4 + 3]!;
      }
    }
    if (ok) {
      this.validBuf = buf;
      this.validEnd = end;
    }
  }

  private keepPartial(buf: Buffer, p: number, need: number): void {
    const rest = buf.subarray(p);
    this.partial = [rest];
    this.partialLength = rest.length;
    this.partialNeed = need;
  }

  /** One whole frame: payload is buf[from, to). False when the reader failed. */
  private frame(b0: number, buf: Buffer, from: number, to: number): boolean {
    if ((b0 & 0x70) !== 0) return this.fail(1002, 'RSV bits set without a negotiated extension');
    const fin = (b0 & 0x80) !== 0;
    const op = b0 & 0x0f;
    if (op === OP_TEXT || op === OP_BINARY) {
      if (this.fragmentOp !== -1) return this.fail(1002, 'a new message inside a fragmented one');
      if (fin) {
        if (op === OP_TEXT && buf === this.validBuf && to <= this.validEnd) {
          // Checked with the rest of its run (validateRun).
          this.handlers.onMessage(view(buf, from, to), false);
          return true;
        }
        return this.message(view(buf, from, to), op);
      }
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
