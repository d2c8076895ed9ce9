import { randomBytes } from 'node:crypto';
import { VenueExchange, type KeepaliveRule, type VenueViolationRule } from './exchange.js';
import type { Tape } from './feed.js';
import { GATE_PAIRS, GATE_PATH, GATE_SIM_CHANNELS, newGateTape } from './gate-tapes.js';
import type { VenueSettings } from './options.js';
import type { Session } from './session.js';

/** "time must be within 60 s of server time" (facts sheet, Gate "subscribe", [T1]). */
const TIME_WINDOW_MS = 60_000;

/** What only the Gate dialect takes (startSimulator passes them through). */
export interface GateDialectOptions {
  /** The server's clock minus the host's, ms: a client that sends its own clock is refused past 60 s. Default 0. */
  clockSkewMs?: number;
  /** spot.trades repeats `id_market` with another value at the end, as Gate's docs example does. Default true. */
  duplicateIdMarket?: boolean;
}

/** The Gate rules beyond the shared ones (documented in docs/simulator.md). */
type GateRule = VenueViolationRule | 'request_time';

/**
 * Gate.io spot v4 public market data on `/ws/v4/` (facts sheet "Gate.io (spot v4)", [T1]):
 * `{"time","id","channel","event":"subscribe","payload"}` requests, acked with the id echoed and
 * `"error":null,"result":{"status":"success"}`; `spot.ping` answered with `spot.pong`. A request whose
 * `time` is more than 60 s from the server's clock is refused (code 2, and a `request_time`
 * violation). The server cuts a connection from which nothing came for keepaliveMs (about a minute,
 * [I-T3]) without a close frame: the silent timeout. No notices, no documented limits ([T2]).
 */
export class GateExchange extends VenueExchange {
  protected readonly paths = new Set([GATE_PATH]);
  protected readonly keepalive: KeepaliveRule;
  private readonly pairs: ReadonlySet<string>;
  private clockSkewMs: number;
  private readonly duplicateIdMarket: boolean;
  private readonly serverNow = (): number => this.settings.clock() + this.clockSkewMs;

  constructor(settings: VenueSettings, extra: GateDialectOptions = {}) {
    super(settings);
    this.pairs = new Set(settings.instruments ?? GATE_PAIRS);
    this.clockSkewMs = extra.clockSkewMs ?? 0;
    if (!Number.isFinite(this.clockSkewMs)) throw new RangeError(`clockSkewMs: must be a finite number, got ${this.clockSkewMs}`);
    this.duplicateIdMarket = extra.duplicateIdMarket ?? true;
    this.keepalive = {
      lastActivity: (s) => s.lastClientAt,
      code: 1006,
      reason: '',
      detail: `nothing from the client for ${settings.keepaliveMs} ms: cut without a close frame`,
      abrupt: true,
    };
  }

  /** The server's clock moves (a fault): requests stamped with the old offset are refused past 60 s. */
  setClockSkew(ms: number): void {
    this.clockSkewMs = ms;
  }

  protected newConnId(): string {
    return randomBytes(8).toString('hex');
  }

  protected newTape(stream: string): Tape | null {
    return newGateTape(stream, this.pairs, this.serverNow, this.duplicateIdMarket);
  }

  /** Gate announces nothing before a restart: serverShutdown() just closes after the grace period. */
  protected shutdownNotice(): string | null {
    return null;
  }

  protected onMessage(s: Session, text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.reply(s, { channel: '', event: '' }, { code: 1, message: 'invalid request body format' });
      return;
    }
    const m = (typeof msg === 'object' && msg !== null && !Array.isArray(msg) ? msg : {}) as Record<string, unknown>;
    if (m.channel === 'spot.ping') {
      // Fixture "pong": time (s), channel, event "", error and result null.
      s.send(`{"time":${Math.floor(this.serverNow() / 1000)},"channel":"spot.pong","event":"","error":null,"result":null}`);
      return;
    }
    const req = { channel: typeof m.channel === 'string' ? m.channel : '', event: typeof m.event === 'string' ? m.event : '', id: m.id, payload: m.payload };
    if (req.event !== 'subscribe' && req.event !== 'unsubscribe') {
      this.reply(s, req, { code: 1, message: 'invalid request body format' });
      return;
    }
    if (typeof m.time !== 'number' || Math.abs(m.time * 1000 - this.serverNow()) > TIME_WINDOW_MS) {
      this.violation(s.conn.id, 'request_time' satisfies GateRule as VenueViolationRule, `request time ${String(m.time)} is more than ${TIME_WINDOW_MS / 1000} s from the server's ${Math.floor(this.serverNow() / 1000)}`);
      this.reply(s, req, { code: 2, message: 'invalid argument: time' });
      return;
    }
    const type = GATE_SIM_CHANNELS[req.channel];
    const payload = Array.isArray(m.payload) && m.payload.every((p) => typeof p === 'string') ? (m.payload as string[]) : null;
    if (type === undefined || payload === null || payload.length === 0) {
      this.reply(s, req, { code: 2, message: `invalid argument: channel ${req.channel} or payload` });
      return;
    }
    let pairs = payload;
    if (type === 'order_book_update') {
      if (payload.length !== 2 || payload[1] !== '100ms') {
        this.reply(s, req, { code: 2, message: `invalid argument: payload ${JSON.stringify(payload)}` });
        return;
      }
      pairs = [payload[0]!];
    }
    const unknown = pairs.find((p) => !this.pairs.has(p));
    if (unknown !== undefined) {
      this.reply(s, req, { code: 2, message: `unknown currency pair: ${unknown}` });
      return;
    }
    const streams = pairs.map((p) => `${type}:${p}`);
    if (req.event === 'unsubscribe') this.unsubscribeAll(s, streams);
    else if (!this.subscribeAll(s, streams)) {
      this.reply(s, req, { code: 2, message: 'too many subscriptions on this connection' });
      return;
    }
    this.reply(s, req, null);
  }

  /** An ack or an error, in the fixture's key order (time, time_ms, id, conn_id, channel, event, payload, error, result). */
  private reply(s: Session, req: { channel: string; event: string; id?: unknown; payload?: unknown }, error: { code: number; message: string } | null): void {
    const now = this.serverNow();
    const body: Record<string, unknown> = { time: Math.floor(now / 1000), time_ms: now };
    if (req.id !== undefined) body.id = req.id;
    body.conn_id = s.connId;
    body.channel = req.channel;
    body.event = req.event;
    if (error !== null && req.payload !== undefined) body.payload = req.payload;
    body.error = error;
    body.result = { status: error === null ? 'success' : 'fail' };
    s.send(JSON.stringify(body));
  }
}
