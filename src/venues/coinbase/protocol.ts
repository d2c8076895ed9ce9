import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import type { GapCause } from '../../ledger/types.js';
import type { FrameKeys, MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';
import { channelOf, eventsAt, readCoinbaseStream, readSequenceNum } from './frame.js';
import { coinbaseTypeOf } from './streams.js';

/** A subscribe or unsubscribe message: one channel each [C1]. */
export interface CoinbaseRequest {
  channel: string;
  /** Absent for heartbeats, which takes none. */
  product_ids?: string[];
}

interface Waiter {
  req: CoinbaseRequest;
  op: 'subscribe' | 'unsubscribe';
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const scratch: FrameKeys = { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };

/**
 * The messages that subscribe `streams`: one per channel and `perMessage` products [C1]. With
 * `heartbeats`, the heartbeats channel goes first (without it quiet channels close after 60-90 s [C2]).
 */
export function coinbaseRequests(streams: readonly string[], perMessage: number, heartbeats: boolean): CoinbaseRequest[] {
  const byChannel = new Map<string, string[]>();
  for (const s of streams) {
    const channel = coinbaseTypeOf(s);
    byChannel.set(channel, [...(byChannel.get(channel) ?? []), s.slice(s.lastIndexOf(':') + 1)]);
  }
  const out: CoinbaseRequest[] = heartbeats ? [{ channel: 'heartbeats' }] : [];
  const n = Math.max(1, perMessage);
  for (const [channel, products] of byChannel) {
    for (let i = 0; i < products.length; i += n) out.push({ channel, product_ids: products.slice(i, i + n) });
  }
  return out;
}

/**
 * Coinbase Advanced Trade market protocol [C1][C2]: the bare host; on open the heartbeats channel
 * and one `{"type":"subscribe","product_ids":[…],"channel":…}` per channel, all sent at once (the
 * session's limiter paces them; the server disconnects a client that has not subscribed within
 * 5 s [C5]). Replies carry no id: each message is confirmed by the `subscriptions` message listing
 * its products under its channel; `{"type":"error"}` refuses what is waiting.
 *
 * `sequence_num` is one counter for every message of the connection, all channels and products
 * (facts sheet: observed by clients, not documented; [C1]: "a jump > 1 = dropped message"): a jump
 * goes to io.connectionGap, which gives every stream of the connection a gap with the count.
 */
export class CoinbaseProtocol implements MarketProtocol {
  requestsSent = 0;
  private readonly waiting = new Set<Waiter>();
  /** The connection's last sequence_num; NaN before the first message. */
  private lastSeq = NaN;

  constructor(private readonly opts: ProtocolOptions) {}

  url(): string {
    return `${this.opts.base}${this.opts.path}`;
  }

  async subscribe(io: ProtocolIO): Promise<void> {
    await this.requestAll(io, 'subscribe', coinbaseRequests(this.opts.streams, this.opts.streamsPerSubscribe, true));
  }

  async add(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    await this.requestAll(io, 'subscribe', coinbaseRequests(streams, this.opts.streamsPerSubscribe, false));
  }

  async remove(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    await this.requestAll(io, 'unsubscribe', coinbaseRequests(streams, this.opts.streamsPerSubscribe, false));
  }

  onFrame(io: ProtocolIO, frame: Buffer, _isBinary: boolean, now: number): void {
    this.checkSequence(io, frame);
    if (readCoinbaseStream(frame, scratch) !== null) {
      io.data(frame, now);
      return;
    }
    const channel = channelOf(frame);
    if (channel === 'heartbeats') return;
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
    const m = msg as { type?: unknown; message?: unknown; channel?: unknown; events?: unknown };
    if (m.type === 'error') {
      const err = new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `Coinbase refused a request: ${String(m.message)}`);
      if (this.waiting.size === 0) io.unexpected(frame);
      for (const w of [...this.waiting]) this.settle(w, err);
      return;
    }
    if (m.channel === 'subscriptions') {
      this.confirm(m.events);
      return;
    }
    if (m.channel === 'l2_data' || m.channel === 'market_trades' || m.channel === 'ticker' || m.channel === 'candles') {
      io.malformed(frame, 'data frame without a readable product_id or events');
      return;
    }
    io.unexpected(frame);
  }

  closed(err: Error): void {
    for (const w of [...this.waiting]) this.settle(w, err);
  }

  /** One counter per connection: a jump is messages missed on every stream of it. */
  private checkSequence(io: ProtocolIO, frame: Buffer): void {
    const e = eventsAt(frame);
    const seq = readSequenceNum(frame, e === -1 ? frame.length : e);
    if (seq !== seq) return;
    const last = this.lastSeq;
    if (last === last && seq > last + 1) {
      const count = seq - last - 1;
      io.connectionGap?.(
        { field: 'sequence_num', from: last + 1, to: seq - 1, count },
        `connection sequence_num jumped from ${last} to ${seq}: ${count} message(s) of this connection missed, on which of its streams is unknown`,
      );
    }
    if (!(seq <= last)) this.lastSeq = seq;
  }

  /** `events[].subscriptions`: channel → products now subscribed on this connection. */
  private confirm(events: unknown): void {
    const subs: Record<string, unknown> = {};
    if (Array.isArray(events)) {
      for (const e of events) {
        const s = (e as { subscriptions?: unknown } | null)?.subscriptions;
        if (typeof s === 'object' && s !== null) Object.assign(subs, s);
      }
    }
    for (const w of [...this.waiting]) {
      const listed = subs[w.req.channel];
      const products = Array.isArray(listed) ? (listed as unknown[]) : [];
      const want = w.req.product_ids;
      // heartbeats names no product: how the listing shows it is not documented, so any listing after
      // it was sent confirms it (a refusal would be an error message).
      const done =
        want === undefined || (w.op === 'subscribe' ? listed !== undefined && want.every((p) => products.includes(p)) : want.every((p) => !products.includes(p)));
      if (done) this.settle(w, null);
    }
  }

  private requestAll(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', reqs: CoinbaseRequest[]): Promise<void> {
    return Promise.all(reqs.map((r) => this.request(io, op, r)))
      .then(() => undefined)
      .catch((err: unknown) => {
        for (const w of [...this.waiting]) this.settle(w, err as Error);
        throw err;
      });
  }

  private request(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', req: CoinbaseRequest): Promise<void> {
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const w: Waiter = {
        req,
        op,
        resolve,
        reject,
        timer: clock.setTimeout(() => {
          this.waiting.delete(w);
          reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no subscriptions message confirming the ${op} of ${req.channel} within ${replyTimeoutMs} ms`));
        }, replyTimeoutMs),
      };
      this.waiting.add(w);
      this.requestsSent++;
      const body = req.product_ids === undefined ? { type: op, channel: req.channel } : { type: op, product_ids: req.product_ids, channel: req.channel };
      io.send(JSON.stringify(body), op);
    });
  }

  private settle(w: Waiter, err: Error | null): void {
    if (!this.waiting.delete(w)) return;
    this.opts.clock.clearTimeout(w.timer);
    if (err === null) w.resolve();
    else w.reject(err);
  }
}

/** No close codes documented: 1008 and 1013 are a limit; the rest a plain server close. */
export function coinbaseCloseCause(code: number): GapCause {
  if (code === 1008 || code === 1013) return 'rate_limited';
  return 'server_close';
}
