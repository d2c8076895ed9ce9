import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import type { GapCause } from '../../ledger/types.js';
import type { ClientPing, MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';
import { bybitTopic, topicDot } from './frame.js';

/**
 * "for one public connection, you cannot have length of "args" array over 21,000 characters"
 * (docs/v5/websocket/wss-authentication.mdx, "Public channel - Args limits"; facts sheet
 * "Corrections"). Each request stays under it; the planner's 200 topics per connection keep the
 * whole connection under it too, whichever way the sentence is read.
 */
const MAX_ARGS_CHARS = 21_000;

/** The shape of a Bybit reply or pong (connect page examples); only what we read. */
interface BybitReply {
  success?: unknown;
  ret_msg?: unknown;
  req_id?: unknown;
  op?: unknown;
  topic?: unknown;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Groups topics into subscribe requests of at most `maxCount` args and `maxChars` characters of
 * JSON `args` array each (an oversized single topic still gets a request of its own).
 */
export function batchTopics(topics: readonly string[], maxCount: number, maxChars = MAX_ARGS_CHARS): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let chars = 2; // `[]`
  for (const t of topics) {
    const size = t.length + 3; // quotes and a comma
    if (cur.length > 0 && (cur.length >= maxCount || chars + size > maxChars)) {
      out.push(cur);
      cur = [];
      chars = 2;
    }
    cur.push(t);
    chars += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Bybit v5 public market protocol (docs/v5/websocket/wss-authentication.mdx, "How to Subscribe to
 * Topics", "How to Send the Heartbeat Packet"): a bare URL, then `{"req_id","op":"subscribe",
 * "args":[topics]}` requests, one reply each, matched by `req_id`. The server never pings; the
 * session sends `clientPing` and the pong is ignored here.
 */
export class BybitProtocol implements MarketProtocol {
  requestsSent = 0;
  private nextId = 1;
  private readonly waiting = new Map<string, Waiter>();

  /**
   * @param argsPerRequest the venue's hard cap on args per request, applied over
   *   opts.streamsPerSubscribe: spot rejects an 11th arg with `args size >10` and a resubscribe that
   *   ignores this leaves a dead feed (facts sheet, failure mode I-B1).
   */
  constructor(
    private readonly opts: ProtocolOptions,
    private readonly argsPerRequest: number,
  ) {}

  url(): string {
    return `${this.opts.base}${this.opts.path}`;
  }

  async subscribe(io: ProtocolIO): Promise<void> {
    const perRequest = Math.max(1, Math.min(this.opts.streamsPerSubscribe, this.argsPerRequest));
    const batches = batchTopics(this.opts.streams.map(bybitTopic), perRequest);
    try {
      await Promise.all(batches.map((args) => this.request(io, args)));
    } catch (err) {
      // One refusal fails the attempt: stop the other requests' timers now.
      this.closed(err as Error);
      throw err;
    }
  }

  onFrame(io: ProtocolIO, frame: Buffer, _isBinary: boolean, now: number): void {
    // The shape decides, not the frame type: Bybit sends text, and anything else fails the checks.
    if (topicDot(frame) !== -1) {
      io.data(frame, now);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(frame.toString('utf8'));
    } catch {
      io.malformed(frame, 'not JSON');
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      io.malformed(frame, 'not a JSON object');
      return;
    }
    const m = msg as BybitReply;
    // Pongs: spot/linear answer `"op":"ping"` with `"ret_msg":"pong"`, option/spread `"op":"pong"`.
    if (m.op === 'ping' || m.op === 'pong' || m.ret_msg === 'pong') return;
    if (m.op === 'subscribe' && typeof m.req_id === 'string') {
      const w = this.waiting.get(m.req_id);
      if (w !== undefined) {
        this.settle(m.req_id, w);
        if (m.success === true) w.resolve();
        else w.reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `Bybit refused subscribe ${m.req_id}: ${String(m.ret_msg)}`));
        return;
      }
    }
    if (typeof m.topic === 'string') {
      io.malformed(frame, 'data frame without a readable topic');
      return;
    }
    io.unexpected(frame);
  }

  closed(err: Error): void {
    for (const [id, w] of this.waiting) {
      this.settle(id, w);
      w.reject(err);
    }
  }

  private request(io: ProtocolIO, args: string[]): Promise<void> {
    // A prefix of our own keeps subscribe ids apart from the pings' numeric req_ids.
    const id = `sub${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const timer = clock.setTimeout(() => {
        this.waiting.delete(id);
        reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no reply to Bybit subscribe ${id} (${args.length} topics) within ${replyTimeoutMs} ms`));
      }, replyTimeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.requestsSent++;
      io.send(JSON.stringify({ req_id: id, op: 'subscribe', args }), 'subscribe');
    });
  }

  private settle(id: string, w: Waiter): void {
    this.opts.clock.clearTimeout(w.timer);
    this.waiting.delete(id);
  }
}

let pingId = 0;

/**
 * The client heartbeat: "we recommend that you send the ping heartbeat packet every 20 seconds"; with
 * neither ping-pong nor data the server cuts after 10 min (facts sheet "heartbeat"). Sent on a timer,
 * not only when idle: the docs tie liveness to the ping itself, not to traffic.
 */
export const bybitClientPing: ClientPing = {
  everyMs: 20_000,
  whenIdle: false,
  text: () => `{"req_id":"${++pingId}","op":"ping"}`,
};

/**
 * Bybit documents no close codes. 1008 (policy violation) is what exchanges send for a broken rate
 * limit and 1013 (RFC 6455 "Try Again Later") asks for a back-off: both `rate_limited`.
 */
export function bybitCloseCause(code: number): GapCause {
  return code === 1008 || code === 1013 ? 'rate_limited' : 'server_close';
}
