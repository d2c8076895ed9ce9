import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import type { GapCause } from '../../ledger/types.js';
import { findKey, intAt, keyPattern, startsWith } from '../bytes.js';
import type { ClientPing, MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';
import { ChecksumBook } from './checksum.js';
import { bitgetArg, locateArg } from './frame.js';
import { batchBySize } from '../batch.js';

/** A request over 4096 bytes is refused (third-party quote, unverified [G1]): batches stay under it. */
const MAX_REQUEST_BYTES = 4096;
const HOUR_MS = 3_600_000;
const PONG = Buffer.from('pong');
const CHECKSUM = keyPattern('checksum');
const SNAPSHOT_ACTION = '"action":"snapshot"';

type Arg = { instType: string; channel: string; instId: string };

/** A Bitget reply (`event` subscribe/unsubscribe/error): only what is read. */
interface BitgetReply {
  event?: unknown;
  arg?: { channel?: unknown; instId?: unknown } | unknown;
  code?: unknown;
  msg?: unknown;
}

interface Waiter {
  /** Args of the request still to be acked, by `channel:instId`. */
  left: Set<string>;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Groups args into requests of at most `maxCount` args and MAX_REQUEST_BYTES of JSON. */
export function batchBitgetArgs(args: readonly Arg[], maxCount: number, maxBytes = MAX_REQUEST_BYTES): Arg[][] {
  return batchBySize(args, maxCount, maxBytes, '{"op":"subscribe","args":[]}'.length, (a) => JSON.stringify(a).length + 1);
}

function isPong(frame: Buffer): boolean {
  return frame.length === PONG.length && startsWith(frame, PONG);
}

const argKey = (channel: unknown, instId: unknown): string => `${String(channel)}:${String(instId)}`;

/**
 * Bitget v2 public market protocol ([G1] "websocket-intro", [G3]): a bare URL, then
 * `{"op":"subscribe","args":[{"instType","channel","instId"}…]}`; Bitget acks each arg on its own
 * with `{"event":"subscribe","arg":{…}}` (no request id: an ack is matched by its arg) and refuses
 * one with `{"event":"error","arg":{…},"code":30001,…}`. The heartbeat is the text `ping`/`pong`.
 *
 * 240 subscribe requests per connection per hour [G2]: counted in a rolling hour, a subscribe that
 * would go over is refused before sending (FK_ERR_SUBSCRIBE). The 24-hour forced cut is the venue's
 * maxLifetimeMs: the worker opens a replacement before it and switches over (make before break).
 *
 * Book checksums: on `books` frames whose `checksum` is present and non-zero, the protocol keeps a
 * local book (ChecksumBook) and compares. A mismatch is counted and logged (io.malformed, "book
 * checksum mismatch") while the frame is still delivered as the exchange sent it; the local book
 * is dropped and checking resumes at the stream's next snapshot. No resubscribe: it would spend the
 * hourly budget, and resubscribe loops on checksum errors are a known failure ([I-G1]).
 */
export class BitgetProtocol implements MarketProtocol {
  requestsSent = 0;
  private inWindow = 0;
  private readonly windowTimers = new Set<ReturnType<typeof setTimeout>>();
  private readonly waiting = new Set<Waiter>();
  private readonly books = new Map<string, ChecksumBook>();

  constructor(
    private readonly opts: ProtocolOptions,
    private readonly instType: string,
    private readonly subscribesPerHour: number,
  ) {}

  url(): string {
    return `${this.opts.base}${this.opts.path}`;
  }

  subscribe(io: ProtocolIO): Promise<void> {
    return this.change(io, 'subscribe', this.opts.streams);
  }

  add(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    return this.change(io, 'subscribe', streams);
  }

  remove(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    for (const s of streams) this.books.delete(s);
    return this.change(io, 'unsubscribe', streams);
  }

  onFrame(io: ProtocolIO, frame: Buffer, _isBinary: boolean, now: number): void {
    const after = locateArg(frame);
    if (after !== -1) {
      io.data(frame, now);
      this.verify(io, frame, after);
      return;
    }
    if (isPong(frame)) return;
    let msg: unknown;
    try {
      msg = JSON.parse(frame.toString('utf8'));
    } catch {
      io.malformed(frame, 'neither JSON nor pong');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      io.malformed(frame, 'not a JSON object');
      return;
    }
    const m = msg as BitgetReply;
    const arg = (typeof m.arg === 'object' && m.arg !== null ? m.arg : {}) as { channel?: unknown; instId?: unknown };
    const key = argKey(arg.channel, arg.instId);
    if (m.event === 'subscribe' || m.event === 'unsubscribe') {
      for (const w of this.waiting) {
        if (!w.left.delete(key)) continue;
        if (w.left.size === 0) this.settle(w).resolve();
        return;
      }
      io.unexpected(frame);
      return;
    }
    if (m.event === 'error') {
      const err = new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `Bitget refused ${key}: ${String(m.code)} ${String(m.msg).slice(0, 200)}`);
      for (const w of this.waiting) {
        if (!w.left.has(key)) continue;
        this.settle(w).reject(err);
        return;
      }
      // An error naming nothing that waits: logged; a waiting request then times out.
      io.malformed(frame, `error ${String(m.code)}`);
      return;
    }
    io.unexpected(frame);
  }

  closed(err: Error): void {
    for (const w of this.waiting) this.settle(w).reject(err);
    for (const t of this.windowTimers) this.opts.clock.clearTimeout(t);
    this.windowTimers.clear();
    this.inWindow = 0;
    this.books.clear();
  }

  private async change(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', streams: readonly string[]): Promise<void> {
    const args = streams.map((s) => ({ instType: this.instType, ...bitgetArg(s) }));
    const batches = batchBitgetArgs(args, Math.max(1, this.opts.streamsPerSubscribe));
    if (batches.length === 0) return;
    const budget = this.subscribesPerHour;
    if (budget > 0 && this.inWindow + batches.length > budget) {
      throw new FeedkeeperError(
        ErrorCodes.FK_ERR_SUBSCRIBE,
        `Bitget allows ${budget} subscribe requests per connection per hour: ${this.inWindow} sent in the last hour, ${batches.length} more refused before sending`,
      );
    }
    this.spend(batches.length);
    try {
      await Promise.all(batches.map((b) => this.request(io, op, b)));
    } catch (err) {
      for (const w of this.waiting) this.settle(w).reject(err as Error);
      throw err;
    }
  }

  private request(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', args: Arg[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const w: Waiter = {
        left: new Set(args.map((a) => argKey(a.channel, a.instId))),
        resolve,
        reject,
        timer: clock.setTimeout(() => {
          this.waiting.delete(w);
          reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no reply to a Bitget ${op} of ${args.length} channels within ${replyTimeoutMs} ms (${w.left.size} not acked)`));
        }, replyTimeoutMs),
      };
      this.waiting.add(w);
      this.requestsSent++;
      io.send(JSON.stringify({ op, args }), op);
    });
  }

  private spend(requests: number): void {
    this.inWindow += requests;
    const timer = this.opts.clock.setTimeout(() => {
      this.inWindow -= requests;
      this.windowTimers.delete(timer);
    }, HOUR_MS);
    (timer as { unref?: () => void }).unref?.();
    this.windowTimers.add(timer);
  }

  private settle(w: Waiter): Waiter {
    this.opts.clock.clearTimeout(w.timer);
    this.waiting.delete(w);
    return w;
  }

  /** The checksum of a `books` push, when it carries one that is not 0. */
  private verify(io: ProtocolIO, frame: Buffer, after: number): void {
    const c = findKey(frame, CHECKSUM, after);
    if (c === -1) return;
    const want = intAt(frame, c);
    if (want === 0 || want !== want) return;
    let msg: { action?: unknown; arg?: { channel?: unknown; instId?: unknown }; data?: Array<{ asks?: unknown; bids?: unknown }> };
    try {
      msg = JSON.parse(frame.toString('latin1')) as typeof msg;
    } catch {
      return; // the router counts what it cannot read
    }
    if (msg.arg?.channel !== 'books') return;
    const stream = argKey(msg.arg.channel, msg.arg.instId);
    const snapshot = frame.includes(SNAPSHOT_ACTION);
    let book = this.books.get(stream);
    if (book === undefined) {
      if (!snapshot) return; // checking starts at a snapshot
      this.books.set(stream, (book = new ChecksumBook()));
    }
    const d = msg.data?.[0];
    const levels = (v: unknown): Array<[string, string]> => (Array.isArray(v) ? (v as unknown[][]).map((l) => [String(l[0]), String(l[1])] as [string, string]) : []);
    book.apply(snapshot, levels(d?.bids), levels(d?.asks));
    const got = book.checksum();
    if (got !== want) {
      this.books.delete(stream);
      io.malformed(frame, `book checksum mismatch on ${stream}: computed ${got}, the push says ${want}; checking again from the next snapshot`);
    }
  }
}

/**
 * "send text `ping` every 30 s, expect `pong`; no `ping` for 2 min → server disconnects" [G1]. Sent
 * whatever the traffic: the server counts pings, not data. Pings are among the 10 messages per
 * second (the session's limiter paces them with everything else).
 */
export const bitgetClientPing: ClientPing = {
  everyMs: 30_000,
  whenIdle: false,
  text: () => 'ping',
};

/** No close codes are documented: 1008 and 1013 are limits (excess messages disconnect [G2]), the rest server closes. */
export function bitgetCloseCause(code: number): GapCause {
  if (code === 1008 || code === 1013) return 'rate_limited';
  return 'server_close';
}
