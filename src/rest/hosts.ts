import { Pool } from 'undici';
import type { Clock, Timer } from '../clock.js';

/**
 * Per-host REST state shared by every RestClient talking to that host: one undici Pool (connections
 * reused across calls and clients) and the pause imposed by a 429 or 418. Binance's limits are per IP,
 * so when one caller is told to back off, every caller of the host must (facts sheet, "REST").
 */
export type PauseKind = 'rate_limited' | 'banned';

/** Observers of the pause: RestClient puts its metrics.restPaused here. */
export interface PauseObserver {
  set(value: number): void;
}

export class RestHost {
  readonly origin: string;
  /** Epoch ms until which calls wait; 0 = not paused. */
  pausedUntil = 0;
  pauseKind: PauseKind | null = null;
  /** Last X-MBX-USED-WEIGHT-1M seen, and the minute (epoch ms / 60 000) it was reported in. */
  usedWeight = 0;
  usedWeightMinute = -1;
  private pool: Pool | null = null;
  private refs = 0;
  private readonly observers = new Set<PauseObserver>();
  private clearTimer: Timer | undefined;
  private clearClock: Clock | null = null;

  constructor(origin: string) {
    this.origin = origin;
  }

  acquire(connectTimeoutMs: number, observer: PauseObserver): Pool {
    this.refs++;
    this.observers.add(observer);
    observer.set(this.pausedUntil > 0 ? 1 : 0);
    // keepAliveTimeout under Binance's idle cut; one pool per host whatever the number of clients.
    this.pool ??= new Pool(this.origin, { connections: 8, connectTimeout: connectTimeoutMs, keepAliveTimeout: 30_000 });
    return this.pool;
  }

  async release(observer: PauseObserver): Promise<void> {
    this.observers.delete(observer);
    this.refs = Math.max(0, this.refs - 1);
    if (this.refs === 0) {
      const pool = this.pool;
      this.pool = null;
      if (this.clearClock) this.clearClock.clearTimeout(this.clearTimer);
      this.clearTimer = undefined;
      await pool?.close();
    }
  }

  /** Remaining pause in ms (0 when calls may go). */
  remaining(now: number): number {
    return Math.max(0, this.pausedUntil - now);
  }

  /** Pause every call to this host until `until`; a ban is never shortened or downgraded by a 429. */
  pause(kind: PauseKind, until: number, clock: Clock): void {
    const now = clock.now();
    if (this.pausedUntil <= now) this.pauseKind = null;
    if (until > this.pausedUntil) this.pausedUntil = until;
    if (kind === 'banned' || this.pauseKind === null) this.pauseKind = kind;
    for (const o of this.observers) o.set(1);
    if (this.clearClock) this.clearClock.clearTimeout(this.clearTimer);
    this.clearClock = clock;
    this.clearTimer = clock.setTimeout(() => this.endPause(clock), this.pausedUntil - now);
    this.clearTimer.unref?.();
  }

  /**
   * A caller found the pause over before the clear timer fired (timers due at the same time run in
   * either order): end it now, so restPaused is 0 before the call it lets through is sent.
   */
  endPauseIfOver(clock: Clock): void {
    if (this.pausedUntil === 0 || this.pausedUntil > clock.now()) return;
    if (this.clearClock) this.clearClock.clearTimeout(this.clearTimer);
    this.endPause(clock);
  }

  private endPause(clock: Clock): void {
    const left = this.pausedUntil - clock.now();
    if (left > 0) {
      this.clearTimer = clock.setTimeout(() => this.endPause(clock), left);
      this.clearTimer.unref?.();
      return;
    }
    this.pausedUntil = 0;
    this.pauseKind = null;
    this.clearTimer = undefined;
    for (const o of this.observers) o.set(0);
  }

  recordWeight(weight: number, now: number): void {
    this.usedWeight = weight;
    this.usedWeightMinute = Math.floor(now / 60_000);
  }
}

/** The hosts of a process. Tests may give a client a registry of its own. */
export class RestHostRegistry {
  private readonly hosts = new Map<string, RestHost>();

  get(origin: string): RestHost {
    let h = this.hosts.get(origin);
    if (h === undefined) {
      h = new RestHost(origin);
      this.hosts.set(origin, h);
    }
    return h;
  }
}

/** The process-wide registry RestClient uses unless told otherwise. */
export const sharedRestHosts = new RestHostRegistry();
