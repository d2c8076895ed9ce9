import { ErrorCodes, FeedkeeperError } from '../../errors.js';
import type { GapCause } from '../../ledger/types.js';
import type { MarketProtocol, ProtocolIO, ProtocolOptions } from '../types.js';

const SHUTDOWN_BANG = 0x21; // '!' — `{"stream":"!serverShutdown",...}`
const STREAM_PREFIX_LEN = '{"stream":"'.length;

/**
 * Binance's market-stream protocol (binance-spot-api-docs web-socket-streams.md, "Live
 * Subscribing/Unsubscribing to streams"): the first batch of streams in the combined URL
 * (`/stream?streams=a/b`), the rest by JSON-RPC `SUBSCRIBE` paced by the outgoing limiter, replies
 * matched by id; the server pings (the session answers), `serverShutdown` announces a restart.
 */
export class BinanceProtocol implements MarketProtocol {
  requestsSent = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (result: unknown) => void; reject: (e: Error) => void }>();

  constructor(private readonly opts: ProtocolOptions) {}

  url(): string {
    const { base, path, streams, streamsPerSubscribe } = this.opts;
    return `${base}${path}?streams=${streams.slice(0, streamsPerSubscribe).join('/')}`;
  }

  async subscribe(io: ProtocolIO): Promise<void> {
    await this.batches(io, 'SUBSCRIBE', this.opts.streams.slice(this.opts.streamsPerSubscribe));
  }

  add(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    return this.batches(io, 'SUBSCRIBE', streams);
  }

  remove(io: ProtocolIO, streams: readonly string[]): Promise<void> {
    return this.batches(io, 'UNSUBSCRIBE', streams);
  }

  /** LIST_SUBSCRIPTIONS: `{"result":["btcusdt@trade",...],"id":N}`. */
  async list(io: ProtocolIO): Promise<string[]> {
    const result = await this.request(io, 'LIST_SUBSCRIPTIONS', null);
    if (!Array.isArray(result) || !result.every((s) => typeof s === 'string')) throw new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, 'LIST_SUBSCRIPTIONS: the reply has no list of streams');
    return result as string[];
  }

  /** One request per streamsPerSubscribe streams, paced by the session's limiter. */
  private async batches(io: ProtocolIO, method: string, streams: readonly string[]): Promise<void> {
    const n = this.opts.streamsPerSubscribe;
    const all: Promise<void>[] = [];
    for (let i = 0; i < streams.length; i += n) all.push(this.request(io, method, streams.slice(i, i + n)).then(() => undefined));
    await Promise.all(all);
  }

  onFrame(io: ProtocolIO, frame: Buffer, isBinary: boolean, now: number): void {
    if (!isBinary && frame.length > STREAM_PREFIX_LEN && frame[0] === 0x7b && frame[2] === 0x73 && frame[STREAM_PREFIX_LEN] !== SHUTDOWN_BANG) {
      // `{"s...`: a combined-stream data frame, the hot path.
      io.data(frame, now);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(frame.toString('utf8'));
    } catch {
      io.malformed(frame, 'not a combined-stream frame');
      return;
    }
    if (typeof msg !== 'object' || msg === null) return io.malformed(frame, 'not a combined-stream frame');
    const m = msg as { id?: unknown; error?: { code?: number; msg?: string }; stream?: string; data?: { e?: string }; e?: string };
    if (m.stream === '!serverShutdown' || m.e === 'serverShutdown' || m.data?.e === 'serverShutdown') {
      io.shutdownNotice('serverShutdown');
      return;
    }
    if (typeof m.id === 'number' && this.waiting.has(m.id)) {
      const w = this.waiting.get(m.id)!;
      this.waiting.delete(m.id);
      if (m.error) w.reject(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `exchange refused request ${m.id}: ${m.error.code} ${m.error.msg}`));
      else w.resolve((m as { result?: unknown }).result);
      return;
    }
    if (typeof m.stream === 'string') {
      io.data(frame, now);
      return;
    }
    io.unexpected(frame);
  }

  closed(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private request(io: ProtocolIO, method: string, params: string[] | null): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.requestsSent++;
      io.send(JSON.stringify(params === null ? { method, id } : { method, params, id }), method.toLowerCase());
    });
  }
}

/** 1008 is Binance's "too many requests" close (the client broke a message rate limit). */
export function binanceCloseCause(code: number): GapCause {
  return code === 1008 ? 'rate_limited' : 'server_close';
}
