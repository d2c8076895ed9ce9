import type { NatsConnection } from '@nats-io/transport-node';

/**
 * The PubAcks read straight from the bytes the server sends (docs/performance.md, "NATS sink").
 *
 * Each publish gets one ack, `MSG <inbox><seq> <sid> <size>\r\n{"stream":..,"seq":N}\r\n`. The
 * client's parser walks every byte of it in a state machine and builds, per ack, a MsgArg, three
 * subarrays and an array in the argument split, an event object, a Msg and the subject's string;
 * at 100,000 acks a second that was about a quarter of the sink's CPU. Here the chunks the
 * socket delivers are cut into whole frames first: the acks of our own subscription (a plain MSG
 * on `<inbox><digits>` with our sid) go to `onAck` with their position in the chunk, without
 * any object made; every other frame (PING, INFO, -ERR, other subscriptions' messages, an HMSG
 * such as a no-responders status) goes, whole and in order, to the client's parser as before, and
 * so to the subscription's callback. The parser only ever gets whole frames from here (or, when it
 * is already in the middle of one, everything until it is back at the start of a frame), so its
 * own state stays right.
 *
 * It hooks `parse` of the client's parser (`nc.protocol.parser`, a new one at every reconnect: the
 * property is made to patch each); when the client has no such parser, nothing is hooked and the
 * subscription's callback reads every ack.
 */

export type AckBytesHandler = (seq: number, buf: Uint8Array, start: number, end: number) => void;

interface ClientParser {
  parse(buf: Uint8Array): void;
  /** 0 (OP_START): between frames. */
  state: number;
}

interface ClientProtocol {
  parser: ClientParser;
  inMsgs: number;
  inBytes: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
/** Incomplete frames up to this size are kept until the rest comes; larger ones go to the parser. */
const CARRY_MAX = 4096;

/**
 * Cuts chunks into frames: ours to `onAck`, the rest to `pass`. `idle()` tells whether the
 * client's parser is between frames (else a chunk is its own until it is).
 */
export class AckSplitter {
  /** `MSG <inbox>` */
  private readonly prefix: Buffer;
  private carry: Buffer | null = null;

  constructor(
    inbox: string,
    private readonly sid: number,
    private readonly onAck: AckBytesHandler,
    private readonly pass: (buf: Uint8Array) => void,
    private readonly idle: () => boolean,
    private readonly counted: (bytes: number) => void = () => undefined,
  ) {
    this.prefix = Buffer.from(`MSG ${inbox}`);
  }

  parse(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    } else if (!this.idle()) {
      this.pass(chunk);
      return;
    }
    const n = buf.length;
    /** buf[from..i) are whole frames not ours, not yet passed on. */
    let from = 0;
    let i = 0;
    let bad = false;
    while (i < n) {
      const nl = buf.indexOf(LF, i);
      if (nl < 0) break;
      const op = buf[i]!;
      let end = nl + 1;
      // MSG and HMSG (the only operations beginning with M or H) carry a payload: its size is the
      // line's last number (HMSG: headers and payload together).
      if (op === 0x4d || op === 0x6d || op === 0x48 || op === 0x68) {
        const e = buf[nl - 1] === CR ? nl - 1 : nl;
        let s = e;
        let size = 0;
        let pow = 1;
        while (s > i) {
          const d = buf[s - 1]! - 0x30;
          if (d < 0 || d > 9) break;
          size += d * pow;
          pow *= 10;
          s--;
        }
        // Not a size: the parser says what is wrong with it.
        if (s === e) {
          bad = true;
          break;
        }
        end = nl + 1 + size + 2;
        if (end > n) break;
        const seqEnd = this.ours(buf, i, s);
        if (seqEnd >= 0) {
          if (from < i) this.pass(buf.subarray(from, i));
          from = end;
          this.counted(size);
          this.onAck(decimal(buf, i + this.prefix.length, seqEnd), buf, nl + 1, nl + 1 + size);
        }
      }
      i = end;
    }
    if (from < i) this.pass(buf.subarray(from, i));
    if (i < n) {
      // A frame not yet whole: kept for the next chunk; a large one, or one the parser will
      // refuse, is the parser's from here.
      const rest = buf.subarray(i);
      if (!bad && rest.length <= CARRY_MAX) this.carry = Buffer.from(rest);
      else this.pass(rest);
    }
  }

  /**
   * For `MSG <inbox><seq> <sid> ` ending where the size begins (`sizeAt`; nats-server writes two
   * spaces there, the empty reply's): the end of the seq's digits; -1 when it is another frame
   * (another subject, one with a reply subject, another sid).
   */
  private ours(buf: Uint8Array, at: number, sizeAt: number): number {
    const prefix = this.prefix;
    if (at + prefix.length >= sizeAt) return -1;
    for (let k = 0; k < prefix.length; k++) if (buf[at + k] !== prefix[k]) return -1;
    let p = at + prefix.length;
    const seqStart = p;
    while (p < sizeAt && isDigit(buf[p]!)) p++;
    if (p === seqStart || p - seqStart > 15 || !isBlank(buf[p]!)) return -1;
    const seqEnd = p;
    while (p < sizeAt && isBlank(buf[p]!)) p++;
    const sidStart = p;
    while (p < sizeAt && isDigit(buf[p]!)) p++;
    const sidEnd = p;
    if (sidEnd === sidStart || !isBlank(buf[p]!)) return -1;
    while (p < sizeAt && isBlank(buf[p]!)) p++;
    if (p !== sizeAt) return -1;
    return decimal(buf, sidStart, sidEnd) === this.sid ? seqEnd : -1;
  }
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

function isBlank(b: number): boolean {
  return b === SPACE || b === TAB;
}

function decimal(buf: Uint8Array, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + buf[i]! - 0x30;
  return v;
}

/**
 * Hooks an AckSplitter in front of the client's parser (this one and every later one); returns
 * the unhook, or null when the client has no parser to hook (the subscription reads the acks).
 */
export function hookAcks(nc: NatsConnection, inbox: string, sid: number, onAck: AckBytesHandler): (() => void) | null {
  const proto = (nc as { protocol?: Partial<ClientProtocol> }).protocol;
  if (proto === undefined || typeof proto.parser?.parse !== 'function' || typeof proto.parser.state !== 'number') return null;
  const target = proto as ClientProtocol;
  const patch = (p: ClientParser): ClientParser => {
    const parse = p.parse;
    const splitter = new AckSplitter(
      inbox,
      sid,
      onAck,
      (buf) => parse.call(p, buf),
      () => p.state === 0,
      (bytes) => {
        target.inMsgs++;
        target.inBytes += bytes;
      },
    );
    p.parse = (buf) => splitter.parse(buf);
    return p;
  };
  let current = patch(target.parser);
  Object.defineProperty(target, 'parser', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (p: ClientParser) => {
      current = patch(p);
    },
  });
  return () => {
    Object.defineProperty(target, 'parser', { configurable: true, enumerable: true, writable: true, value: current });
    delete (current as Partial<ClientParser>).parse;
  };
}
