import { randomBytes } from 'node:crypto';
import { MessageRate } from '../limits.js';
import { VenueExchange, type KeepaliveRule } from './exchange.js';
import type { Tape } from './feed.js';
import { BooksTape, BUSINESS_PATH, OKX_INSTRUMENTS, PUBLIC_PATH, newOkxTape, okxChannelPath } from './okx-tapes.js';
import type { VenueSettings } from './options.js';
import type { Session } from './session.js';

const HOUR_MS = 3_600_000;
/** OKX's `id`: optional, up to 32 alphanumerics (facts sheet, OKX "subscribe"). */
const REQUEST_ID = /^[A-Za-z0-9]{1,32}$/;
const MIGRATED_TO_BUSINESS =
  "This channel has been migrated to the '/business' URL. Please subscribe using the new URL. More details can refer to: " +
  'https://www.okx.com/help-center/changes-to-v5-api-websocket-subscription-parameter-and-url';

type Arg = { channel: string; instId: string };

/**
 * OKX v5 public market data on `/ws/v5/public`, candles on `/ws/v5/business`. Control replies follow the
 * facts sheet ("OKX v5", [O1][O2]) and ../shared/fixtures/okx: one ack per arg, errors with string codes
 * (60012 bad request, 60018 unknown channel or instId, 64001 candles on /public, 50011 over the hourly
 * budget), the text `ping` answered with `pong`, the 64008 notice before a service-upgrade cut.
 */
export class OkxExchange extends VenueExchange {
  protected readonly paths = new Set([PUBLIC_PATH, BUSINESS_PATH]);
  protected readonly keepalive: KeepaliveRule;
  private readonly instIds: ReadonlySet<string>;
  /** Subscribe/unsubscribe requests per connection in the rolling hour (facts sheet, OKX "limits"). */
  private readonly budgets = new WeakMap<Session, MessageRate>();

  constructor(settings: VenueSettings) {
    super(settings);
    this.instIds = new Set(settings.instruments ?? OKX_INSTRUMENTS);
    // OKX hangs up when it neither pushed data nor heard from the client for 30 s, with this close frame
    // (facts sheet, OKX "heartbeat", [I-O4]); data flowing keeps a silent client connected.
    this.keepalive = {
      lastActivity: (s) => Math.max(s.lastClientAt, s.lastPushAt),
      code: 4004,
      reason: 'No data received in 30s.',
      detail: `no data pushed and nothing from the client for ${settings.keepaliveMs} ms`,
    };
  }

  /**
   * The next update of a `books:<instId>` stream gets a seqId below its prevSeqId, as after OKX
   * maintenance (facts sheet, OKX "sequence"); later updates count on from there. Throws TypeError for
   * any other stream.
   */
  resetBookSeq(stream: string): void {
    const tape = this.feed.tape(stream);
    if (!(tape instanceof BooksTape)) throw new TypeError(`resetBookSeq(): ${stream} is not a books stream`);
    tape.resetSeq();
  }

  protected newConnId(): string {
    return randomBytes(4).toString('hex');
  }

  protected newTape(stream: string): Tape | null {
    return newOkxTape(stream, this.instIds, this.settings.booksSnapshot);
  }

  /** Sent before a WebSocket service upgrade (facts sheet, OKX "notices": 60 s ahead on OKX). */
  protected shutdownNotice(s: Session): string {
    // The frame's key order is OKX's (test/fixtures/okx: kind "notice").
    return `{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":${JSON.stringify(s.connId)}}`;
  }

  protected onMessage(s: Session, text: string): void {
    // Not JSON: OKX's heartbeat is the bare text (facts sheet, "Non-JSON heartbeats").
    if (text === 'ping') {
      s.send('pong');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.error(s, undefined, '60012', `Invalid request: ${text}`);
      return;
    }
    const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { id?: unknown; op?: unknown; args?: unknown };
    const id = typeof m.id === 'string' ? m.id : undefined;
    if ((m.id !== undefined && (id === undefined || !REQUEST_ID.test(id))) || (m.op !== 'subscribe' && m.op !== 'unsubscribe')) {
      this.error(s, id, '60012', `Invalid request: ${text}`);
      return;
    }
    if (this.budget(s).hit(this.settings.time.now())) {
      const n = this.settings.subscribesPerHour;
      this.violation(s.conn.id, 'subscribes_per_hour', `more than ${n} subscribe/unsubscribe requests within an hour`);
      this.error(s, id, '50011', 'Rate limit reached. Please refer to API documentation and throttle requests accordingly.');
      return;
    }
    const args = parseArgs(m.args);
    if (args === null) {
      this.error(s, id, '60012', `Invalid request: ${text}`);
      return;
    }
    this.onSubscribe(s, m.op, id, args);
  }

  /** All args or none: one bad arg and nothing of the request is (un)subscribed. */
  private onSubscribe(s: Session, op: 'subscribe' | 'unsubscribe', id: string | undefined, args: Arg[]): void {
    for (const { channel, instId } of args) {
      const path = okxChannelPath(channel);
      if (path === BUSINESS_PATH && s.conn.path === PUBLIC_PATH) {
        this.error(s, id, '64001', MIGRATED_TO_BUSINESS);
        return;
      }
      if (path !== s.conn.path || !this.instIds.has(instId)) {
        const msg = `Wrong URL or channel:${channel},instId:${instId} doesn't exist. Please use the correct URL, channel and parameters referring to API document.`;
        this.error(s, id, '60018', msg);
        return;
      }
    }
    const streams = args.map((a) => `${a.channel}:${a.instId}`);
    if (op === 'unsubscribe') {
      this.unsubscribeAll(s, streams);
    } else if (!this.subscribeAll(s, streams)) {
      this.error(s, id, '60012', 'Invalid request: too many channels on this connection');
      return;
    }
    for (const arg of args) s.send(JSON.stringify(id === undefined ? { event: op, arg, connId: s.connId } : { id, event: op, arg, connId: s.connId }));
  }

  private budget(s: Session): MessageRate {
    let b = this.budgets.get(s);
    if (b === undefined) {
      b = new MessageRate(this.settings.subscribesPerHour, HOUR_MS);
      this.budgets.set(s, b);
    }
    return b;
  }

  /** `{"id"?,"event":"error","code","msg","connId"}` in the fixture's key order. */
  private error(s: Session, id: string | undefined, code: string, msg: string): void {
    const body = { event: 'error', code, msg, connId: s.connId };
    s.send(JSON.stringify(id === undefined ? body : { id, ...body }));
  }
}

/** `[{channel, instId}, ...]` (other keys ignored); null when the shape is wrong. */
function parseArgs(args: unknown): Arg[] | null {
  if (!Array.isArray(args) || args.length === 0) return null;
  const out: Arg[] = [];
  for (const a of args) {
    const { channel, instId } = (typeof a === 'object' && a !== null ? a : {}) as { channel?: unknown; instId?: unknown };
    if (typeof channel !== 'string' || typeof instId !== 'string') return null;
    out.push({ channel, instId });
  }
  return out;
}
