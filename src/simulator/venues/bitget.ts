import { randomBytes } from 'node:crypto';
import { MessageRate } from '../limits.js';
import { VenueExchange, type KeepaliveRule } from './exchange.js';
import type { Tape } from './feed.js';
import { BITGET_PATH, BITGET_SYMBOLS, BooksTape, isBitgetChannel, newBitgetTape } from './bitget-tapes.js';
import { NEVER_MS, type BitgetBooksStyle, type VenueSettings } from './options.js';
import type { Session } from './session.js';

const HOUR_MS = 3_600_000;
/** "≤1,000 channels per connection" [G1]. */
const CHANNELS_PER_CONNECTION = 1000;
/** "forced disconnect every 24 h" [G2]. */
const LIFETIME_MS = 86_400_000;
/** "≤100 connections per IP" [G2]. */
const CONNECTIONS_PER_IP = 100;
/** The request cap (a third-party quote; unverified [G1]). */
const MAX_REQUEST_BYTES = 4096;

type Arg = { instType: string; channel: string; instId: string };

/**
 * Bitget v2 public market data on `/v2/ws/public` for one instType (`bitget-spot`: SPOT,
 * `bitget-usdt-futures`: USDT-FUTURES): the text `ping` answered with `pong` (no ping for
 * `pongTimeoutMs`, 2 min, and the connection is cut), per-arg acks `{"event":"subscribe","arg":{…}}`,
 * errors `{"event":"error","arg":{…},"code":30001,"msg":…,"op":…}`, 240 subscribe requests per hour
 * per connection, 10 messages per second including pings, and the forced cut after 24 h
 * (maxLifetimeMs, close 1001) with no notice (facts sheet "Bitget", [G1][G2][G3]).
 */
export class BitgetExchange extends VenueExchange {
  protected readonly paths = new Set([BITGET_PATH]);
  protected readonly keepalive: KeepaliveRule;
  private readonly instType: string;
  private readonly symbols: ReadonlySet<string>;
  private readonly style: BitgetBooksStyle;
  private readonly budgets = new WeakMap<Session, MessageRate>();

  constructor(settings: VenueSettings) {
    super({
      ...settings,
      streamsPerConnection: Number.isFinite(settings.streamsPerConnection) ? settings.streamsPerConnection : CHANNELS_PER_CONNECTION,
      maxLifetimeMs: settings.maxLifetimeMs === NEVER_MS ? LIFETIME_MS : settings.maxLifetimeMs,
    });
    this.instType = settings.venue === 'bitget-usdt-futures' ? 'USDT-FUTURES' : 'SPOT';
    this.symbols = new Set(settings.instruments ?? BITGET_SYMBOLS);
    this.style = settings.bitgetBooks;
    // "no ping for 2 min → server disconnects" [G1]: data does not count, only the client's ping.
    this.keepalive = {
      lastActivity: (s) => s.lastPingAt,
      code: 1000,
      reason: 'ping timeout',
      detail: `no ping from the client for ${settings.keepaliveMs} ms`,
    };
  }

  /** The next push of `books:<instId>` carries a wrong checksum. Throws TypeError for another stream. */
  corruptChecksum(stream: string): void {
    const tape = this.feed.tape(stream);
    if (!(tape instanceof BooksTape)) throw new TypeError(`corruptChecksum(): ${stream} is not a books stream`);
    tape.corrupt();
  }

  protected newConnId(): string {
    return randomBytes(8).toString('hex');
  }

  protected newTape(stream: string): Tape | null {
    return newBitgetTape(stream, this.instType, this.symbols, this.style);
  }

  /** Bitget announces nothing (facts sheet, Bitget "lifetime"). */
  protected shutdownNotice(): null {
    return null;
  }

  /** More than 100 open connections from one IP: the newest is closed (1008) and counted. */
  protected override onOpen(s: Session): void {
    const ip = s.conn.remoteAddress;
    const open = this.connections().filter((c) => c.remoteAddress === ip && c.state === 'open').length;
    if (open > CONNECTIONS_PER_IP) {
      this.violation(s.conn.id, 'connections_per_ip', `${open} connections open from ${ip} (at most ${CONNECTIONS_PER_IP})`);
      s.conn.close(1008, 'too many connections');
    }
  }

  protected onMessage(s: Session, text: string): void {
    if (text === 'ping') {
      s.lastPingAt = this.settings.time.now();
      s.send('pong');
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.error(s, undefined, undefined, 30012, 'param error');
      return;
    }
    const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { op?: unknown; args?: unknown };
    const op = m.op === 'subscribe' || m.op === 'unsubscribe' ? m.op : null;
    const args = parseArgs(m.args);
    if (op === null || args === null) {
      this.error(s, undefined, undefined, 30012, 'param error');
      return;
    }
    if (Buffer.byteLength(text) > MAX_REQUEST_BYTES) {
      this.violation(s.conn.id, 'args_per_subscribe', `a request of ${Buffer.byteLength(text)} bytes (at most ${MAX_REQUEST_BYTES})`);
      this.error(s, op, undefined, 30012, 'request too long');
      return;
    }
    if (this.budget(s).hit(this.settings.time.now())) {
      this.violation(s.conn.id, 'subscribes_per_hour', `more than ${this.settings.subscribesPerHour} subscribe requests within an hour`);
      this.error(s, op, undefined, 30006, 'request too many');
      return;
    }
    const good: Arg[] = [];
    for (const a of args) {
      if (a.instType !== this.instType || !isBitgetChannel(a.channel) || !this.symbols.has(a.instId)) {
        this.error(s, op, a, 30001, `instType:${a.instType},channel:${a.channel},instId:${a.instId} doesn't exist`);
      } else {
        good.push(a);
      }
    }
    const streams = good.map((a) => `${a.channel}:${a.instId}`);
    if (op === 'unsubscribe') {
      this.unsubscribeAll(s, streams);
    } else if (!this.subscribeAll(s, streams)) {
      for (const a of good) this.error(s, op, a, 30012, 'channels per connection exceeded');
      return;
    }
    for (const a of good) s.send(JSON.stringify({ event: op, arg: a }));
  }

  private budget(s: Session): MessageRate {
    let b = this.budgets.get(s);
    if (b === undefined) this.budgets.set(s, (b = new MessageRate(this.settings.subscribesPerHour, HOUR_MS)));
    return b;
  }

  private error(s: Session, op: string | undefined, arg: Arg | undefined, code: number, msg: string): void {
    s.send(JSON.stringify({ event: 'error', ...(arg !== undefined ? { arg } : {}), code, msg, ...(op !== undefined ? { op } : {}) }));
  }
}

function parseArgs(args: unknown): Arg[] | null {
  if (!Array.isArray(args) || args.length === 0) return null;
  const out: Arg[] = [];
  for (const a of args) {
    const { instType, channel, instId } = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
    if (typeof instType !== 'string' || typeof channel !== 'string' || typeof instId !== 'string') return null;
    out.push({ instType, channel, instId });
  }
  return out;
}
