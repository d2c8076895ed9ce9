import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import type { GapCause } from '../../ledger/types.js';
import type { ClientPing, MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';
import { locateArg, okxArg } from './frame.js';
import { batchBySize } from '../batch.js';
import { startsWith } from '../bytes.js';

/** "The total length of multiple channels cannot exceed 64 KB" per request (facts sheet [O1]). */
const MAX_REQUEST_BYTES = 64 * 1024;
const HOUR_MS = 3_600_000;
const PONG = Buffer.from('pong');

type Arg = { channel: string; instId: string };

/** The shape of an OKX reply or notice (docs-v5 overview, subscribe and notification); only what we read. */
interface OkxReply {
  id?: unknown;
  event?: unknown;
  code?: unknown;
  msg?: unknown;
  arg?: unknown;
}

interface Waiter {
  /** OKX answers each arg of a request on its own, all with the request's id. */
  acksLeft: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Groups args into subscribe requests of at most `maxCount` args and `maxBytes` bytes of JSON each
 * (an oversized single arg still gets a request of its own).
 */
export function batchArgs(args: readonly Arg[], maxCount: number, maxBytes = MAX_REQUEST_BYTES): Arg[][] {
  return batchBySize(args, maxCount, maxBytes, '{"id":"12345678","op":"subscribe","args":[]}'.length, (a) => '{"channel":"","instId":""},'.length + a.channel.length + a.instId.length);
}

function isPong(frame: Buffer): boolean {
  return frame.length === PONG.length && startsWith(frame, PONG);
}

/**
 * OKX v5 public market protocol (docs-v5 "Overview / WebSocket": connect, subscribe, notification):
 * a bare URL, then `{"id","op":"subscribe","args":[{channel,instId}]}` requests; OKX acks every arg
 * separately with the request's id, and an `event:"error"` with that id refuses it. Heartbeats are
 * the text `ping`/`pong` (clientPing). `64008` announces a close for a service upgrade 60 s ahead.
 *
 * 480 subscribe/unsubscribe/login requests per connection per hour [O1]: the protocol counts what it
 * sent in a rolling hour and refuses, before sending, a subscribe that would go over. A resubscribe
 * storm burns that budget quickly (failure mode I-O3), and going over is answered by the exchange,
 * not by us, in a way the docs do not describe.
 */
export class OkxProtocol implements MarketProtocol {
  requestsSent = 0;
  private nextId = 1;
  /** Requests sent within the last hour; each batch gives its count back when its hour is over. */
  private inWindow = 0;
  private readonly windowTimers = new Set<ReturnType<typeof setTimeout>>();
  private readonly waiting = new Map<string, Waiter>();

  constructor(
    private readonly opts: ProtocolOptions,
    private readonly subscribesPerHour: number,
  ) {}

  url(): string {
    return `${this.opts.base}${this.opts.path}`;
  }

  async subscribe(io: ProtocolIO): Promise<void> {
    const batches = batchArgs(this.opts.streams.map(okxArg), Math.max(1, this.opts.streamsPerSubscribe));
    if (batches.length === 0) return;
    const budget = this.subscribesPerHour;
    if (budget > 0 && this.inWindow + batches.length > budget) {
      throw new FeedkeeperError(
        ErrorCodes.FK_ERR_SUBSCRIBE,
        `OKX allows ${budget} subscribe requests per connection per hour: ${this.inWindow} sent in the last hour, ${batches.length} more refused before sending`,
      );
    }
    this.spend(batches.length);
    try {
      await Promise.all(batches.map((args) => this.request(io, args)));
    } catch (err) {
      // One refusal fails the attempt: stop the other requests' timers now.
      this.failWaiting(err as Error);
      throw err;
    }
  }

  onFrame(io: ProtocolIO, frame: Buffer, _isBinary: boolean, now: number): void {
    // The shape decides, not the frame type: OKX sends text, and anything else fails the checks.
    if (locateArg(frame) !== -1) {
      io.data(frame, now);
      return;
    }
    // The reply to our `ping` is the bare text `pong`, not JSON (facts sheet "Cross-venue traps").
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
    const m = msg as OkxReply;
    const w = typeof m.id === 'string' ? this.waiting.get(m.id) : undefined;
    if (m.event === 'subscribe' && w !== undefined) {
      if (--w.acksLeft === 0) {
        this.settle(m.id as string, w);
        w.resolve();
      }
      return;
    }
    if (m.event === 'error' && w !== undefined) {
      this.settle(m.id as string, w);
      w.reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `OKX refused subscribe ${String(m.id)}: ${String(m.code)} ${String(m.msg)}`));
      return;
    }
    if (m.event === 'notice' && m.code === '64008') {
      io.shutdownNotice(`OKX 64008: ${String(m.msg)}`);
      return;
    }
    if (m.event === undefined && typeof m.arg === 'object') {
      io.malformed(frame, 'data frame without a readable arg');
      return;
    }
    io.unexpected(frame);
  }

  /** The connection ended: its waiters fail, and its hour budget (per connection) goes with it. */
  closed(err: Error): void {
    this.failWaiting(err);
    for (const t of this.windowTimers) this.opts.clock.clearTimeout(t);
    this.windowTimers.clear();
    this.inWindow = 0;
  }

  private spend(requests: number): void {
    this.inWindow += requests;
    const timer = this.opts.clock.setTimeout(() => {
      this.inWindow -= requests;
      this.windowTimers.delete(timer);
    }, HOUR_MS);
    // An hour-long bookkeeping timer must not keep the process alive (fake clocks have no unref).
    (timer as { unref?: () => void }).unref?.();
    this.windowTimers.add(timer);
  }

  private request(io: ProtocolIO, args: Arg[]): Promise<void> {
    // `id`: "a combination of case-sensitive alphanumerics ... up to 32 characters".
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const timer = clock.setTimeout(() => {
        this.waiting.delete(id);
        reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no reply to OKX subscribe ${id} (${args.length} channels) within ${replyTimeoutMs} ms`));
      }, replyTimeoutMs);
      this.waiting.set(id, { acksLeft: args.length, resolve, reject, timer });
      this.requestsSent++;
      io.send(JSON.stringify({ id, op: 'subscribe', args }), 'subscribe');
    });
  }

  private failWaiting(err: Error): void {
    for (const [id, w] of this.waiting) {
      this.settle(id, w);
      w.reject(err);
    }
  }

  private settle(id: string, w: Waiter): void {
    this.opts.clock.clearTimeout(w.timer);
    this.waiting.delete(id);
  }
}

/**
 * "If there's no data return after connecting for N seconds (N < 30), send the string 'ping'" and
 * the server closes a connection without data for 30 s (facts sheet "heartbeat"): ping after 20 s
 * of silence, a busy connection needs none.
 */
export const okxClientPing: ClientPing = {
  everyMs: 20_000,
  whenIdle: true,
  text: () => 'ping',
};

/**
 * OKX close frames (docs-v5 "Error Code / WebSocket / Public", "Close Frame"): 4004 "No data
 * received in 30s" means our heartbeat failed (stale); 4008/4009 "The number of subscribed channels
 * exceeds the maximum limit" mean a limit of theirs was hit, like 1008 and 1013 (RFC 6455 "Try
 * Again Later"). The rest (4005 "Buffer is full", 4006 "Abnormal disconnection", 1009) are plain
 * server closes.
 */
export function okxCloseCause(code: number): GapCause {
  if (code === 4004) return 'stale';
  if (code === 1008 || code === 1013 || code === 4008 || code === 4009) return 'rate_limited';
  return 'server_close';
}
