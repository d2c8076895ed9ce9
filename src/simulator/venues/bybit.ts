import { randomUUID } from 'node:crypto';
import { BookTape, BYBIT_SYMBOLS, bybitStream, bybitTopicError, newBybitTape } from './bybit-tapes.js';
import { VenueExchange, type KeepaliveRule } from './exchange.js';
import type { Tape } from './feed.js';
import type { VenueSettings } from './options.js';
import type { Session } from './session.js';

/** Spot refuses a subscribe with more than 10 args; linear has no such cap (facts sheet "Corrections", [B1]). */
const SPOT_MAX_ARGS = 10;

/**
 * Bybit v5 public market data: `/v5/public/spot` (bybit-spot) or `/v5/public/linear` (bybit-linear).
 * Control replies follow the facts sheet ("Bybit v5", [B1]) and ../shared/fixtures/bybit: spot acks
 * say `"ret_msg":"subscribe"` and echo `req_id` only when one was sent; linear acks say `"ret_msg":""`
 * and always carry `req_id` (a third-party capture, roq-bybit's parser tests; the linear pong fixture
 * carries `"req_id":""` too). The server never pings; it cuts a client whose `ping` ops stop.
 */
export class BybitExchange extends VenueExchange {
  protected readonly paths: ReadonlySet<string>;
  protected readonly keepalive: KeepaliveRule;
  private readonly linear: boolean;
  private readonly symbols: ReadonlySet<string>;

  constructor(settings: VenueSettings) {
    super(settings);
    this.linear = settings.venue === 'bybit-linear';
    this.paths = new Set([this.linear ? '/v5/public/linear' : '/v5/public/spot']);
    this.symbols = new Set(settings.instruments ?? BYBIT_SYMBOLS);
    this.keepalive = {
      lastActivity: (s) => s.lastPingAt,
      // Bybit documents no close code for its cut; 1008 as the Binance simulator's pong timeout.
      code: 1008,
      reason: 'ping timeout',
      detail: `no ping op within ${settings.keepaliveMs} ms (the daemon pings every 20 s)`,
    };
  }

  /**
   * The next push of an order-book stream is a snapshot with u=1, sent to every subscriber, and `u`
   * counts on from there: Bybit's service restart (facts sheet, "book"). Throws TypeError for a
   * stream that is not `orderbook.<depth>:<SYMBOL>`.
   */
  restartBook(stream: string): void {
    const tape = this.feed.tape(stream);
    if (!(tape instanceof BookTape)) throw new TypeError(`restartBook(): ${stream} is not an order book stream`);
    tape.restart();
  }

  protected newConnId(): string {
    return randomUUID();
  }

  protected newTape(stream: string): Tape | null {
    return newBybitTape(stream, this.symbols, this.linear);
  }

  /** Bybit announces no maintenance cut on the WebSocket (facts sheet, "lifetime / notices", [B6]). */
  protected shutdownNotice(): null {
    return null;
  }

  protected onMessage(s: Session, text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.reply(s, false, 'error:request not json', '', undefined);
      return;
    }
    const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { op?: unknown; req_id?: unknown; args?: unknown };
    const op = typeof m.op === 'string' ? m.op : '';
    const reqId = typeof m.req_id === 'string' || typeof m.req_id === 'number' ? String(m.req_id) : undefined;
    if (op === 'ping') {
      s.lastPingAt = this.settings.time.now();
      // Spot's pong has no req_id even when one was sent (fixtures).
      this.reply(s, true, 'pong', op, this.linear ? reqId : undefined);
    } else if (op === 'subscribe' || op === 'unsubscribe') {
      this.onSubscribe(s, op, reqId, m.args);
    } else {
      this.reply(s, false, `error:invalid op ${op}`, op, reqId);
    }
  }

  /** The whole request or nothing: one bad topic and no topic of it is (un)subscribed. */
  private onSubscribe(s: Session, op: 'subscribe' | 'unsubscribe', reqId: string | undefined, args: unknown): void {
    const fail = (retMsg: string): void => this.reply(s, false, retMsg, op, reqId);
    if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string')) {
      fail('error:args must be a non-empty array of topics');
      return;
    }
    const topics = args as string[];
    if (!this.linear && topics.length > SPOT_MAX_ARGS) {
      this.violation(s.conn.id, 'args_per_subscribe', `${op} with ${topics.length} args on spot (at most ${SPOT_MAX_ARGS})`);
      fail(`args size >${SPOT_MAX_ARGS}`);
      return;
    }
    for (const topic of topics) {
      const error = bybitTopicError(topic, this.symbols);
      if (error !== null) {
        fail(error);
        return;
      }
    }
    const streams = topics.map(bybitStream);
    if (op === 'subscribe') {
      const already = topics.find((_t, i) => s.conn.streams.has(streams[i]!));
      if (already !== undefined) {
        fail(`error:already subscribed,topic:${already}`);
        return;
      }
      if (!this.subscribeAll(s, streams)) {
        fail('error:too many topics on this connection');
        return;
      }
    } else {
      this.unsubscribeAll(s, streams);
    }
    this.reply(s, true, this.linear ? '' : op, op, reqId);
  }

  /**
   * `{"success","ret_msg","conn_id","req_id","op"}` in the fixtures' key order. Spot leaves `req_id` out
   * when the request had none; linear always sends it, "" when none was sent.
   */
  private reply(s: Session, success: boolean, retMsg: string, op: string, reqId: string | undefined): void {
    if (this.linear) reqId ??= '';
    const body =
      reqId === undefined
        ? { success, ret_msg: retMsg, conn_id: s.connId, op }
        : { success, ret_msg: retMsg, conn_id: s.connId, req_id: reqId, op };
    s.send(JSON.stringify(body));
  }
}
