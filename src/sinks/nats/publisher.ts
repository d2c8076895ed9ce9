import type { MsgHdrs, NatsConnection, PublishOptions } from '@nats-io/transport-node';

export const COLLECTOR_HEADER = 'Feedkeeper-Collector';

/**
 * How one JetStream publish reaches the connection: a core `HPUB <subject> <reply> <hlen> <len>`
 * with the Nats-Msg-Id and Feedkeeper-Collector headers, the stream's PubAck coming to `<reply>`
 * (`<inbox>.<seq>`, one subscription for all). Two ways to write it (docs/performance.md, "NATS
 * sink"):
 *
 * - `frames` (the default): the whole protocol frame written by us into a large chunk, the frames
 *   of one tick handed to the connection at once (one buffer, not four per message, no protocol
 *   line built as a string and encoded, no subject check per publish: our subjects are built
 *   valid). It needs the client's protocol handler (`@nats-io/nats-core/internal`, the entry point
 *   @nats-io/jetstream itself builds on); when a client version has none, `client` is used.
 * - `client`: `nc.publish(subject, data, { reply, headers })` with a prepared header block.
 */
export interface Publisher {
  readonly kind: PublisherKind;
  /** Queues one publish; throws when the connection refuses it (closed, too large). */
  publish(subject: string, data: Uint8Array, msgId: string, seq: number): void;
}

export type PublisherKind = 'frames' | 'client';

/**
 * What the frames publisher uses of the client's protocol handler (`nc.protocol`, typed in
 * `@nats-io/nats-core/internal` as ProtocolHandler): its outbound buffer, flushed to the socket
 * on the next microtask or at once past its limit, held while reconnecting; and its drain flag.
 */
interface ProtocolHandler {
  sendCommand(cmd: Uint8Array): void;
  noMorePublishing: boolean;
}

/** The frames publisher when the connection has a protocol handler to take them, else the client's. */
export function createPublisher(nc: NatsConnection, inbox: string, collector: string, kind: PublisherKind = 'frames'): Publisher {
  const proto = (nc as { protocol?: Partial<ProtocolHandler> }).protocol;
  if (kind === 'frames' && typeof proto?.sendCommand === 'function') return new FramePublisher(nc, proto as ProtocolHandler, inbox, collector);
  return new ClientPublisher(nc, inbox, collector);
}

/** Through the client's publish(): one header block and one options object for every publish. */
export class ClientPublisher implements Publisher {
  readonly kind = 'client';
  private readonly packed: PackedHeaders;
  private readonly opts: PublishOptions & { reply: string };

  constructor(
    private readonly nc: NatsConnection,
    private readonly inbox: string,
    collector: string,
  ) {
    // MsgHdrs.set() + encode() cost 5-7 µs a message (validation, a string, TextEncoder); this 0.6.
    this.packed = new PackedHeaders(collector);
    this.opts = { reply: '', headers: this.packed as unknown as MsgHdrs };
  }

  publish(subject: string, data: Uint8Array, msgId: string, seq: number): void {
    this.packed.id = msgId;
    this.opts.reply = this.inbox + seq;
    this.nc.publish(subject, data, this.opts);
  }
}

/**
 * The two headers as the client's MsgHdrs.encode() would write them (`NATS/1.0\r\nKey: value\r\n
 * ...\r\n`), the constant part prepared once: the client only calls encode() on what it gets as
 * `headers`.
 */
class PackedHeaders {
  id = '';
  private readonly head: Buffer;

  constructor(collector: string) {
    this.head = headerHead(collector);
  }

  encode(): Uint8Array {
    const head = this.head;
    const id = this.id;
    const n = isAscii(id) ? id.length : Buffer.byteLength(id);
    const out = Buffer.allocUnsafe(head.length + n + 4);
    head.copy(out, 0);
    out.write(id, head.length, n === id.length ? 'latin1' : 'utf8');
    CRLF2.copy(out, head.length + n);
    return out;
  }
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CHUNK_BYTES = 256 * 1024;
/** Handed over at once past this many bytes (the client flushes its buffer to the socket then). */
const FLUSH_BYTES = 64 * 1024;
const SPACE = 0x20;
const CR = 0x0d;
const LF = 0x0a;

function headerHead(collector: string): Buffer {
  return Buffer.from(`NATS/1.0\r\n${COLLECTOR_HEADER}: ${collector}\r\nNats-Msg-Id: `);
}

/**
 * Whole frames, `HPUB <subject> <inbox>.<seq> <hlen> <len>\r\n<headers><data>\r\n`, written into
 * a chunk of our own and handed to the protocol handler once per tick (a microtask, as the client
 * schedules its own flush) or every FLUSH_BYTES. What was handed over is never written again: a
 * full chunk is left to the collector and a new one taken.
 */
export class FramePublisher implements Publisher {
  readonly kind = 'frames';
  private chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  /** chunk[start..pos) is written, not yet handed over. */
  private start = 0;
  private pos = 0;
  private scheduled = false;
  /** Per subject: `HPUB <subject> <inbox>.`, encoded once. */
  private readonly prefixes = new Map<string, Buffer>();
  private readonly head: Buffer;
  private readonly flushTask = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly nc: NatsConnection,
    private readonly proto: ProtocolHandler,
    private readonly inbox: string,
    collector: string,
  ) {
    this.head = headerHead(collector);
  }

  publish(subject: string, data: Uint8Array, msgId: string, seq: number): void {
    // What nc.publish() checks, in the same words.
    if (this.nc.isClosed()) throw new Error('connection closed');
    if (this.proto.noMorePublishing) throw new Error('connection draining');
    let prefix = this.prefixes.get(subject);
    if (prefix === undefined) this.prefixes.set(subject, (prefix = Buffer.from(`HPUB ${subject} ${this.inbox}`)));
    // Msg-Ids are ASCII but for a stream name that is not (a symbol in Chinese characters): that
    // frame is written again with the id's UTF-8 bytes.
    if (!this.frame(prefix, data, msgId, seq)) this.frame(prefix, data, Buffer.from(msgId), seq);
    if (this.pos - this.start >= FLUSH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTask);
    }
  }

  /** Writes one frame at `pos`; false (nothing written) when the string id is not ASCII. */
  private frame(prefix: Buffer, data: Uint8Array, id: string | Buffer, seq: number): boolean {
    const head = this.head;
    const hlen = head.length + id.length + 4;
    const len = hlen + data.length;
    const max = this.nc.info?.max_payload;
    if (max !== undefined && len > max) throw new Error(`publish of ${len} bytes over the server's max_payload (${max})`);
    // Line: prefix, seq (<= 16 digits), two lengths (<= 10 digits each), three separators, CRLF.
    const need = prefix.length + 16 + 10 + 10 + 4 + len + 2;
    if (this.pos + need > this.chunk.length) {
      this.flush();
      this.chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, need));
      this.start = this.pos = 0;
    }
    const out = this.chunk;
    let p = this.pos;
    // TypedArray set() is a memmove; Buffer copy() a call into C++ for each of these few bytes.
    out.set(prefix, p);
    p += prefix.length;
    p = writeDecimal(out, p, seq);
    out[p++] = SPACE;
    p = writeDecimal(out, p, hlen);
    out[p++] = SPACE;
    p = writeDecimal(out, p, len);
    out[p++] = CR;
    out[p++] = LF;
    out.set(head, p);
    p += head.length;
    if (typeof id === 'string') {
      // A byte loop costs less than a string write into C++ at this length.
      let bits = 0;
      for (let i = 0; i < id.length; i++) {
        const c = id.charCodeAt(i);
        bits |= c;
        out[p++] = c;
      }
      if (bits > 0x7f) return false;
    } else {
      out.set(id, p);
      p += id.length;
    }
    out[p++] = CR;
    out[p++] = LF;
    out[p++] = CR;
    out[p++] = LF;
    out.set(data, p);
    p += data.length;
    out[p++] = CR;
    out[p++] = LF;
    this.pos = p;
    return true;
  }

  private flush(): void {
    if (this.pos === this.start) return;
    const frames = this.chunk.subarray(this.start, this.pos);
    this.start = this.pos;
    this.proto.sendCommand(frames);
  }
}

/** Writes the decimal digits of the non-negative integer `v` (below 2^53) at `p`; the position after. */
function writeDecimal(out: Buffer, p: number, v: number): number {
  let digits = 1;
  for (let pow = 10; pow <= v; pow *= 10) digits++;
  const end = p + digits;
  for (let i = end - 1; i >= p; i--) {
    const q = Math.floor(v / 10);
    out[i] = 0x30 + v - q * 10;
    v = q;
  }
  return end;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
