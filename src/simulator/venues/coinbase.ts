import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { textFrame } from '../frame.js';
import { MessageRate } from '../limits.js';
import { VenueExchange, type KeepaliveRule, type VenueViolationRule } from './exchange.js';
import type { Tape } from './feed.js';
import { COINBASE_CHANNELS, COINBASE_PATH, COINBASE_PRODUCTS, SEQ_PLACEHOLDER, head, isoNs, newCoinbaseTape } from './coinbase-tapes.js';
import type { VenueSettings } from './options.js';
import type { Session } from './session.js';
import { systemClock } from '../../clock.js';

/** Unauthenticated messages: 8 per second per IP (facts sheet, Coinbase "limits", [C3]). */
const MESSAGES_PER_IP_PER_S = 8;

/** What only the Coinbase dialect takes (startSimulator passes them through). */
export interface CoinbaseDialectOptions {
  /** A connection with no subscribe this long after the upgrade is closed (facts sheet [C5]: 5 s). */
  subscribeDeadlineMs?: number;
  /** The heartbeats channel's period (1 s, [C2]). */
  heartbeatIntervalMs?: number;
  /** Levels a side in a level2 snapshot (default 50; the real BTC-USD book runs to megabytes, [I-C1]). */
  snapshotLevels?: number;
}

/** The Coinbase rules beyond the shared ones (documented in docs/simulator.md). */
type CoinbaseRule = VenueViolationRule | 'subscribe_timeout' | 'channels_per_subscribe';

interface ConnState {
  /** The last sequence_num written; -1 before the first. */
  seq: number;
  /** Numbers to leave out before the next message (the sequence-skip fault). */
  jump: number;
  subscribed: boolean;
  heartbeats: ReturnType<typeof setInterval> | null;
  counter: number;
}

/**
 * Coinbase Advanced Trade market data at `/` (facts sheet "Coinbase Advanced Trade", [C1][C2]):
 * `{"type":"subscribe","product_ids":[…],"channel":…}`, one channel per message (a message with
 * `channels` is refused), confirmed by a `subscriptions` message listing everything subscribed;
 * errors are `{"type":"error","message":…}`. Every message of a connection carries that
 * connection's own `sequence_num` from 0, +1 per message whatever its channel (the counter the
 * facts sheet reports clients observe). No subscribe within subscribeDeadlineMs: closed
 * (`subscribe_timeout`). Without the heartbeats channel, a connection on which nothing was pushed for
 * keepaliveMs is closed (the quiet channels that "close after 60-90 s"). 8 client messages per
 * second per IP.
 */
export class CoinbaseExchange extends VenueExchange {
  protected readonly paths = new Set([COINBASE_PATH]);
  protected readonly keepalive: KeepaliveRule;
  private readonly products: ReadonlySet<string>;
  private readonly states = new Map<number, ConnState>();
  private readonly ipRates = new Map<string, MessageRate>();
  private readonly subscribeDeadlineMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly snapshotLevels: number;

  constructor(settings: VenueSettings, extra: CoinbaseDialectOptions = {}) {
    super(settings);
    this.products = new Set(settings.instruments ?? COINBASE_PRODUCTS);
    this.subscribeDeadlineMs = extra.subscribeDeadlineMs ?? 5000;
    this.heartbeatIntervalMs = extra.heartbeatIntervalMs ?? 1000;
    this.snapshotLevels = extra.snapshotLevels ?? 50;
    for (const [k, v] of [['subscribeDeadlineMs', this.subscribeDeadlineMs], ['heartbeatIntervalMs', this.heartbeatIntervalMs], ['snapshotLevels', this.snapshotLevels]] as const) {
      if (!(v >= 1)) throw new RangeError(`${k}: must be at least 1, got ${v}`);
    }
    this.keepalive = {
      lastActivity: (s) => (this.states.get(s.conn.id)?.heartbeats != null ? this.settings.time.now() : s.lastPushAt),
      code: 1000,
      reason: 'channel idle',
      detail: `no heartbeats channel and nothing pushed for ${settings.keepaliveMs} ms`,
    };
  }

  /** The next message on connection `connId` skips `n` sequence numbers (messages the server dropped). */
  skipSequence(connId: number, n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`skipSequence(): n must be a non-negative integer, got ${n}`);
    const st = this.states.get(connId);
    if (st === undefined) throw new TypeError(`skipSequence(): no connection ${connId}`);
    st.jump += n;
  }

  /** Pushes swallowed on a stream were messages of every connection carrying it: their numbers go too. */
  override skip(stream: string, n: number): void {
    super.skip(stream, n);
    for (const c of this.connections()) {
      const st = this.states.get(c.id);
      if (st !== undefined && c.streams.has(stream)) st.jump += n;
    }
  }

  protected newConnId(): string {
    return randomBytes(8).toString('hex');
  }

  protected newTape(stream: string): Tape | null {
    return newCoinbaseTape(stream, this.products, this.snapshotLevels);
  }

  /** Coinbase announces nothing: serverShutdown() closes after the grace. */
  protected shutdownNotice(): string | null {
    return null;
  }

  protected override onOpen(s: Session): void {
    // Forget connections gone since (those with heartbeats forget themselves on their next beat).
    const open = new Set(this.connections().map((c) => c.id));
    for (const id of this.states.keys()) if (!open.has(id)) this.states.delete(id);
    const st: ConnState = { seq: -1, jump: 0, subscribed: false, heartbeats: null, counter: 0 };
    this.states.set(s.conn.id, st);
    // The feed writes one framed push to every subscriber; each connection numbers its own.
    const real = s.conn.socket;
    const numbered = {
      cork: () => real.cork(),
      uncork: () => real.uncork(),
      get writableLength() {
        return real.writableLength;
      },
      write: (frame: Buffer): boolean => {
        const len = frame[1]! & 0x7f;
        const text = frame.toString('utf8', len < 126 ? 2 : len === 126 ? 4 : 10);
        return real.write(textFrame(this.number(st, text)));
      },
    };
    Object.defineProperty(s, 'socket', { value: numbered as unknown as Duplex });
    const deadline = systemClock.setTimeout(() => {
      if (st.subscribed || s.conn.state !== 'open') return;
      this.violation(s.conn.id, 'subscribe_timeout' satisfies CoinbaseRule as VenueViolationRule, `no subscribe within ${this.subscribeDeadlineMs} ms of the upgrade`);
      s.conn.close(1000, 'subscribe timeout');
    }, this.subscribeDeadlineMs);
    deadline.unref();
  }

  protected onMessage(s: Session, text: string): void {
    const st = this.states.get(s.conn.id)!;
    let rate = this.ipRates.get(s.conn.remoteAddress);
    if (rate === undefined) this.ipRates.set(s.conn.remoteAddress, (rate = new MessageRate(MESSAGES_PER_IP_PER_S, 1000)));
    if (rate.hit(this.settings.time.now())) {
      this.violation(s.conn.id, 'messages_per_second', `more than ${MESSAGES_PER_IP_PER_S} messages per second from ${s.conn.remoteAddress}`);
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.error(s, 'failure to parse message');
      return;
    }
    const m = (typeof msg === 'object' && msg !== null && !Array.isArray(msg) ? msg : {}) as Record<string, unknown>;
    if (m.type !== 'subscribe' && m.type !== 'unsubscribe') {
      this.error(s, `unknown message type ${String(m.type)}`);
      return;
    }
    if (m.channels !== undefined || typeof m.channel !== 'string') {
      this.violation(s.conn.id, 'channels_per_subscribe' satisfies CoinbaseRule as VenueViolationRule, 'a subscribe message must name exactly one channel');
      this.error(s, 'one channel per subscribe message: use "channel"');
      return;
    }
    const channel = m.channel;
    if (channel === 'heartbeats') {
      st.subscribed = true;
      if (m.type === 'subscribe') this.startHeartbeats(s, st);
      else if (st.heartbeats !== null) {
        systemClock.clearInterval(st.heartbeats);
        st.heartbeats = null;
      }
      this.sendSubscriptions(s, st);
      return;
    }
    const products = Array.isArray(m.product_ids) && m.product_ids.every((p) => typeof p === 'string') ? (m.product_ids as string[]) : null;
    if (!COINBASE_CHANNELS.includes(channel) || products === null || products.length === 0) {
      this.error(s, `Failed to subscribe: channel ${channel} or product_ids`);
      return;
    }
    const unknown = products.find((p) => !this.products.has(p));
    if (unknown !== undefined) {
      this.error(s, `Failed to subscribe: unknown product ${unknown}`);
      return;
    }
    st.subscribed = true;
    const streams = products.map((p) => `${channel}:${p}`);
    if (m.type === 'unsubscribe') this.unsubscribeAll(s, streams);
    else if (!this.subscribeAll(s, streams)) {
      this.error(s, 'too many subscriptions on this connection');
      return;
    }
    this.sendSubscriptions(s, st);
  }

  private number(st: ConnState, text: string): string {
    st.seq += 1 + st.jump;
    st.jump = 0;
    return text.replace(SEQ_PLACEHOLDER, `"sequence_num":${st.seq},`);
  }

  private startHeartbeats(s: Session, st: ConnState): void {
    if (st.heartbeats !== null) return;
    st.heartbeats = systemClock.setInterval(() => {
      if (s.conn.state === 'closed' || s.conn.state === 'closing') {
        systemClock.clearInterval(st.heartbeats!);
        this.states.delete(s.conn.id);
        return;
      }
      if (!s.canReceive()) return;
      const now = this.settings.clock();
      const current = `${new Date(now).toISOString().replace('T', ' ').replace('Z', '')}000000 +0000 UTC m=+${(this.settings.time.now() / 1000).toFixed(9)}`;
      s.send(this.number(st, `${head('heartbeats', now)}{"current_time":"${current}","heartbeat_counter":${++st.counter}}]}`));
    }, this.heartbeatIntervalMs);
    st.heartbeats.unref();
  }

  /** Everything the connection is subscribed to, after each (un)subscribe. */
  private sendSubscriptions(s: Session, st: ConnState): void {
    const subs: Record<string, string[]> = {};
    for (const x of s.conn.streams) {
      const i = x.lastIndexOf(':');
      (subs[x.slice(0, i)] ??= []).push(x.slice(i + 1));
    }
    if (st.heartbeats !== null) subs.heartbeats = ['heartbeats'];
    s.send(this.number(st, `{"channel":"subscriptions","client_id":"","timestamp":"${isoNs(this.settings.clock())}",${SEQ_PLACEHOLDER}"events":[{"subscriptions":${JSON.stringify(subs)}}]}`));
  }

  private error(s: Session, message: string): void {
    s.send(JSON.stringify({ type: 'error', message }));
  }
}
