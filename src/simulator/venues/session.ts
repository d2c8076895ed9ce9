import { systemClock, type Timer } from '../../clock.js';
import type { SimConnection } from '../connection.js';
import type { Subscriber } from './feed.js';

/**
 * One venue connection: the Binance simulator's SimConnection (state, message rate, stall, drop,
 * close) plus what a Bybit or OKX server keeps per connection: its `conn_id`/`connId`, when the
 * client last spoke or pinged, and the deadline that cuts a silent connection.
 */
export class Session implements Subscriber {
  corkedTick = 0;
  lastPushAt: number;
  /** The exchange's time of the client's last text frame. */
  lastClientAt: number;
  /** The exchange's time of the client's last `ping` op (Bybit: the only traffic its keepalive counts). */
  lastPingAt: number;
  private deadline: Timer | undefined;
  private quietShutdown: Timer | undefined;

  constructor(
    readonly conn: SimConnection,
    /** The venue's connection id as it appears in acks (Bybit UUID, OKX 8 hex digits). */
    readonly connId: string,
  ) {
    this.lastPushAt = this.lastClientAt = this.lastPingAt = this.conn.time.now();
  }

  get socket(): SimConnection['socket'] {
    return this.conn.socket;
  }

  canReceive(): boolean {
    return this.conn.canReceive();
  }

  slowConsumer(bufferedBytes: number): void {
    this.conn.slowConsumer(bufferedBytes);
  }

  /** A control reply (ack, pong, error, notice). Nothing while stalled or closing. */
  send(text: string): void {
    this.conn.sendText(text);
  }

  /**
   * Cuts the connection once `lastActivity()` is `ms` old. One timer per connection, re-armed only when
   * it fires: activity itself just moves a timestamp, so pushes and pings cost no timer calls.
   */
  keepAlive(ms: number, lastActivity: () => number, expire: () => void): void {
    const arm = (delay: number): void => {
      this.deadline = systemClock.setTimeout(() => {
        // A stalled server enforces nothing (as the Binance simulator's stall); closing: nothing to do.
        if (this.conn.state !== 'open' && this.conn.state !== 'shutting-down') return;
        const left = lastActivity() + ms - this.conn.time.now();
        if (left > 0) arm(left);
        else expire();
      }, delay);
    };
    arm(ms);
  }

  /** serverShutdown() on a venue that sends no notice: data flows for graceMs, then a 1001 close. */
  shutDownQuietly(graceMs: number): boolean {
    if (this.conn.state !== 'open') return false;
    this.conn.state = 'shutting-down';
    this.quietShutdown = systemClock.setTimeout(() => {
      if (this.conn.state === 'shutting-down') this.conn.close(1001, 'server shutdown');
    }, graceMs);
    return true;
  }

  /** The connection is gone. */
  closed(): void {
    systemClock.clearTimeout(this.deadline);
    systemClock.clearTimeout(this.quietShutdown);
  }
}
