import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import { systemClock } from '../../clock.js';
import type { GapCause } from '../../ledger/types.js';
import type { ClientPing, FrameKeys, MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';
import { gateClock, type ServerClock } from './clock.js';
import { readGateStream } from './frame.js';
import { GATE_CHANNELS, gateTypeOf } from './streams.js';

/** Pairs per spot.trades / spot.book_ticker request: ours (Gate documents no cap). */
const PAIRS_PER_REQUEST = 100;
/** spot.order_book_update's interval: 100 ms pushes of the 100-level book [T1]. */
const BOOK_INTERVAL = '100ms';

/** A Gate request: `{"time","id","channel","event","payload"}` [T1]. */
export interface GateRequest {
  channel: string;
  payload: string[];
  /** The canonical stream ids it covers. */
  streams: string[];
}

/** Gate's reply shape (docs "Server response"); only what we read. */
interface GateReply {
  time?: unknown;
  time_ms?: unknown;
  id?: unknown;
  channel?: unknown;
  event?: unknown;
  error?: unknown;
  result?: unknown;
}

interface Waiter {
  channel: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const scratch: FrameKeys = { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };

/**
 * The requests that subscribe `streams`: one per pair for spot.order_book_update (its payload is
 * `[pair, interval]`), up to PAIRS_PER_REQUEST pairs per request for the other channels.
 */
export function gateRequests(streams: readonly string[]): GateRequest[] {
  const byChannel = new Map<string, string[]>();
  for (const s of streams) {
    const type = gateTypeOf(s);
    const channel = GATE_CHANNELS[type] ?? `spot.${type}`;
    byChannel.set(channel, [...(byChannel.get(channel) ?? []), s]);
  }
  const out: GateRequest[] = [];
  for (const [channel, list] of byChannel) {
    const pair = (s: string): string => s.slice(s.lastIndexOf(':') + 1);
    if (channel === 'spot.order_book_update') {
      for (const s of list) out.push({ channel, payload: [pair(s), BOOK_INTERVAL], streams: [s] });
      continue;
    }
    for (let i = 0; i < list.length; i += PAIRS_PER_REQUEST) {
      const part = list.slice(i, i + PAIRS_PER_REQUEST);
      out.push({ channel, payload: part.map(pair), streams: part });
    }
  }
  return out;
}

/**
 * Gate.io spot v4 market protocol [T1]: a bare URL; on open a `spot.ping` whose pong gives the
 * server's clock, then `{"time","id","channel","event":"subscribe","payload"}` requests whose `time`
 * is the server's (Gate refuses a `time` more than 60 s off its clock). Each reply echoes the id; an
 * `error` that is not null, or a `result.status` other than "success", refuses the request.
 */
export class GateProtocol implements MarketProtocol {
  requestsSent = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private pingWaiter: Waiter | null = null;

  constructor(
    private readonly opts: ProtocolOptions,
    private readonly clock: ServerClock = gateClock,
    private readonly local: () => number = systemClock.now,
  ) {}

  url(): string {
    return `${this.opts.base}${this.opts.path}`;
  }

  async subscribe(io: ProtocolIO): Promise<void> {
    await this.syncClock(io);
    await this.requestAll(io, 'subscribe', this.opts.streams);
  }

  async add(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    await this.requestAll(io, 'subscribe', streams);
  }

  async remove(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    await this.requestAll(io, 'unsubscribe', streams);
  }

  onFrame(io: ProtocolIO, frame: Buffer, _isBinary: boolean, now: number): void {
    if (readGateStream(frame, scratch) !== null) {
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
    const m = msg as GateReply;
    this.observeTime(m);
    if (m.channel === 'spot.pong') {
      const w = this.pingWaiter;
      if (w !== null) {
        this.pingWaiter = null;
        this.opts.clock.clearTimeout(w.timer);
        w.resolve();
      }
      return;
    }
    if (m.event === 'subscribe' || m.event === 'unsubscribe') {
      const id = typeof m.id === 'number' ? m.id : this.oldestFor(m.channel);
      const w = id === undefined ? undefined : this.waiting.get(id);
      if (w === undefined) {
        io.unexpected(frame);
        return;
      }
      this.settle(id!, w);
      const status = (m.result as { status?: unknown } | null | undefined)?.status;
      if (m.error !== null && m.error !== undefined) {
        const e = m.error as { code?: unknown; message?: unknown };
        w.reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `Gate refused ${String(m.event)} ${id} on ${String(m.channel)}: ${String(e.code)} ${String(e.message)}`));
      } else if (status !== undefined && status !== 'success') {
        w.reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `Gate refused ${String(m.event)} ${id} on ${String(m.channel)}: status ${String(status)}`));
      } else {
        w.resolve();
      }
      return;
    }
    if (m.event === 'update') {
      io.malformed(frame, 'update without a readable channel, result or pair');
      return;
    }
    io.unexpected(frame);
  }

  closed(err: Error): void {
    for (const [id, w] of this.waiting) {
      this.settle(id, w);
      w.reject(err);
    }
    const p = this.pingWaiter;
    if (p !== null) {
      this.pingWaiter = null;
      this.opts.clock.clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** Ping first: the pong carries the server's clock, which every request's `time` then follows. */
  private syncClock(io: ProtocolIO): Promise<void> {
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const timer = clock.setTimeout(() => {
        this.pingWaiter = null;
        reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no spot.pong within ${replyTimeoutMs} ms: the server's clock is unknown`));
      }, replyTimeoutMs);
      this.pingWaiter = { channel: 'spot.pong', resolve, reject, timer };
      io.send(JSON.stringify({ time: this.clock.seconds(), channel: 'spot.ping' }), 'ping');
    });
  }

  private async requestAll(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', streams: readonly string[]): Promise<void> {
    const requests = gateRequests(streams);
    try {
      await Promise.all(requests.map((r) => this.request(io, op, r)));
    } catch (err) {
      this.closedWaiters(err as Error);
      throw err;
    }
  }

  private request(io: ProtocolIO, op: 'subscribe' | 'unsubscribe', r: GateRequest): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const { clock, replyTimeoutMs } = this.opts;
      const timer = clock.setTimeout(() => {
        this.waiting.delete(id);
        reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE_TIMEOUT, `no reply to Gate ${op} ${id} (${r.channel}, ${r.payload.length} args) within ${replyTimeoutMs} ms`));
      }, replyTimeoutMs);
      this.waiting.set(id, { channel: r.channel, resolve, reject, timer });
      this.requestsSent++;
      io.send(JSON.stringify({ time: this.clock.seconds(), id, channel: r.channel, event: op, payload: r.payload }), op);
    });
  }

  /** A reply without an id (Gate's docs examples carry none): the oldest request on its channel. */
  private oldestFor(channel: unknown): number | undefined {
    for (const [id, w] of this.waiting) if (w.channel === channel) return id;
    return undefined;
  }

  private observeTime(m: GateReply): void {
    const at = this.local();
    if (typeof m.time_ms === 'number') this.clock.observe(m.time_ms, at);
    else if (typeof m.time === 'number') this.clock.observe(m.time * 1000, at);
  }

  private closedWaiters(err: Error): void {
    for (const [id, w] of this.waiting) {
      this.settle(id, w);
      w.reject(err);
    }
  }

  private settle(id: number, w: Waiter): void {
    this.opts.clock.clearTimeout(w.timer);
    this.waiting.delete(id);
  }
}

/**
 * `{"time":<s>,"channel":"spot.ping"}` [T1 #application-ping-pong] every 15 s, busy or not: Gate
 * closes a connection after about a minute without a message from the client, silently (a 1006,
 * [I-T3]), and the docs say only the application ping resets that timer.
 */
export const gateClientPing: ClientPing = {
  everyMs: 15_000,
  whenIdle: false,
  text: () => `{"time":${gateClock.seconds()},"channel":"spot.ping"}`,
};

/** Gate documents no close codes: 1008 and 1013 (RFC 6455 policy, try again later) are a limit. */
export function gateCloseCause(code: number): GapCause {
  if (code === 1008 || code === 1013) return 'rate_limited';
  return 'server_close';
}
