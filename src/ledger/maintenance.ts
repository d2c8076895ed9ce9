import { request } from 'undici';
import { systemClock, type Clock, type Timer } from '../clock.js';
import { ConfigError, parseRetryAfter } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { sharedRestHosts } from '../rest/hosts.js';

/**
 * When Binance is in maintenance, so that gaps inside a window carry its reason and are counted
 * apart. Three sources (facts sheet, "Maintenance"): the configured calendar (maintenance.windows),
 * GET /sapi/v1/system/status, and serverShutdown events (since 2026-05-08).
 */
export type MaintenanceSource = 'calendar' | 'system_status' | 'server_shutdown';

export interface MaintenanceWindow {
  start: number;
  /** Exclusive; null while a system-status window is still open. */
  end: number | null;
  reason: string;
  source: MaintenanceSource;
}

export const SYSTEM_STATUS_SUFFIX = ' (GET /sapi/v1/system/status)';
export const SERVER_SHUTDOWN_REASON = 'serverShutdown';
export const DEFAULT_SERVER_SHUTDOWN_WINDOW_MS = 60_000;
/** Dynamic windows older than this are forgotten (a gap closed later keeps the tag it opened with). */
const RETAIN_DYNAMIC_MS = 7 * 86_400_000;
/** setTimeout's ceiling (2^31 - 1 ms, ~24.8 days): longer delays fire at once. */
const MAX_DELAY_MS = 2_147_483_647;

export interface MaintenanceCalendarOptions {
  /** As in config `maintenance.windows`: ISO 8601 times (or epoch ms), end exclusive. */
  windows: ReadonlyArray<{ start: string | number; end: string | number; reason: string }>;
  logger: Logger;
  metrics: Pick<Metrics, 'maintenanceActive'>;
  clock?: Clock;
  /** How long after a serverShutdown event gaps count as maintenance. Default 60 s. */
  serverShutdownWindowMs?: number;
}

function parseTime(v: string | number, key: string): number {
  const t = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t)) throw new ConfigError(key, `not a date: ${JSON.stringify(v)}`);
  return t;
}

export class MaintenanceCalendar {
  private readonly list: MaintenanceWindow[] = [];
  private readonly logger: Logger;
  private readonly metrics: Pick<Metrics, 'maintenanceActive'>;
  private readonly clock: Clock;
  private readonly shutdownWindowMs: number;
  private statusWindow: MaintenanceWindow | null = null;
  private timer: Timer | undefined;
  private current: string | null = null;
  private closed = false;

  constructor(opts: MaintenanceCalendarOptions) {
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.shutdownWindowMs = opts.serverShutdownWindowMs ?? DEFAULT_SERVER_SHUTDOWN_WINDOW_MS;
    opts.windows.forEach((w, i) => {
      const key = `maintenance.windows[${i}]`;
      const start = parseTime(w.start, `${key}.start`);
      const end = parseTime(w.end, `${key}.end`);
      if (end <= start) throw new ConfigError(`${key}.end`, 'must be after start');
      if (typeof w.reason !== 'string' || w.reason.trim() === '') throw new ConfigError(`${key}.reason`, 'must be a non-empty string');
      this.insert({ start, end, reason: w.reason, source: 'calendar' });
    });
    this.refresh();
  }

  /** The reason of the window in force at `t`, or null. */
  reasonAt(t: number): string | null {
    for (const w of this.list) {
      if (w.start > t) break;
      if (w.end === null || t < w.end) return w.reason;
    }
    return null;
  }

  /**
   * The reason of the earliest-starting window that overlaps [start; end] (end null = still open:
   * up to now), or null. An instant (start = end) must fall inside a window.
   */
  reasonFor(start: number, end: number | null): string | null {
    const e = Math.max(start, end ?? this.clock.now());
    for (const w of this.list) {
      if (w.start > e) break;
      if (w.end === null || start < w.end) return w.reason;
    }
    return null;
  }

  active(now: number = this.clock.now()): boolean {
    const on = this.reasonAt(now) !== null;
    this.metrics.maintenanceActive.set(on ? 1 : 0);
    return on;
  }

  /** A windows snapshot, earliest first. */
  windows(): MaintenanceWindow[] {
    return this.list.map((w) => ({ ...w }));
  }

  /** GET /sapi/v1/system/status said `status` (1 = maintenance) at `at`: opens or closes a window. */
  noteSystemStatus(status: 0 | 1, msg: string, at: number): void {
    if (status === 1 && this.statusWindow === null) {
      const reason = `${msg !== '' ? msg : 'system_maintenance'}${SYSTEM_STATUS_SUFFIX}`;
      this.statusWindow = { start: at, end: null, reason, source: 'system_status' };
      this.insert(this.statusWindow);
      this.logger.info({ event: 'maintenance_status', reason, at: new Date(at).toISOString() }, 'system status reports maintenance');
    } else if (status === 0 && this.statusWindow !== null) {
      this.statusWindow.end = Math.max(at, this.statusWindow.start + 1);
      this.logger.info(
        { event: 'maintenance_status_over', reason: this.statusWindow.reason, durationMs: this.statusWindow.end - this.statusWindow.start },
        'system status back to normal',
      );
      this.statusWindow = null;
    }
    this.refresh();
  }

  /**
   * A serverShutdown event arrived at `at`: gaps in the next few seconds are maintenance. Every
   * connection gets the event, so events close together extend one window instead of adding many.
   */
  noteServerShutdown(at: number): void {
    const end = at + this.shutdownWindowMs;
    const open = this.list.find((w) => w.source === 'server_shutdown' && w.start <= at && w.end !== null && at <= w.end);
    if (open) {
      open.end = Math.max(open.end ?? end, end);
    } else {
      this.insert({ start: at, end, reason: SERVER_SHUTDOWN_REASON, source: 'server_shutdown' });
      this.logger.info({ event: 'maintenance_server_shutdown', at: new Date(at).toISOString(), windowMs: this.shutdownWindowMs }, 'serverShutdown received: maintenance window');
    }
    this.refresh();
  }

  /** Stops the timer that keeps feedkeeper_maintenance_active current. */
  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private insert(w: MaintenanceWindow): void {
    let i = this.list.length;
    while (i > 0 && this.list[i - 1]!.start > w.start) i--;
    this.list.splice(i, 0, w);
  }

  /** Sets the gauge, logs a change, and wakes up at the next window boundary. */
  private refresh(): void {
    const now = this.clock.now();
    for (let i = this.list.length - 1; i >= 0; i--) {
      const w = this.list[i]!;
      if (w.source !== 'calendar' && w.end !== null && w.end < now - RETAIN_DYNAMIC_MS) this.list.splice(i, 1);
    }
    const reason = this.reasonAt(now);
    this.metrics.maintenanceActive.set(reason !== null ? 1 : 0);
    if (reason !== this.current) {
      if (reason !== null) this.logger.info({ event: 'maintenance_window_start', reason }, 'maintenance window in force');
      else this.logger.info({ event: 'maintenance_window_end', reason: this.current }, 'maintenance window over');
      this.current = reason;
    }
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    let next = Infinity;
    for (const w of this.list) {
      if (w.start > now) next = Math.min(next, w.start);
      else if (w.end !== null && w.end > now) next = Math.min(next, w.end);
    }
    if (next === Infinity) return;
    this.timer = this.clock.setTimeout(() => this.refresh(), Math.min(next - now, MAX_DELAY_MS));
    (this.timer as { unref?: () => void }).unref?.();
  }
}

export interface StatusResponse {
  status: number;
  body: string;
  /** Retry-After header, if any (429/418). */
  retryAfter?: string | null;
}

/** How the poller does its HTTP GET; the default uses undici's `request`. */
export type StatusFetch = (url: string, opts: { signal: AbortSignal; timeoutMs: number }) => Promise<StatusResponse>;

export const undiciStatusFetch: StatusFetch = async (url, { signal, timeoutMs }) => {
  const res = await request(url, { method: 'GET', signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const body = await res.body.text();
  const ra = res.headers['retry-after'];
  return { status: res.statusCode, body, retryAfter: Array.isArray(ra) ? (ra[0] ?? null) : (ra ?? null) };
};

export interface SystemStatusPollerOptions {
  /** e.g. https://api.binance.com */
  restBaseUrl: string;
  /** e.g. /sapi/v1/system/status (venue.systemStatusPath) */
  path: string;
  /** The venue's reading of the body (Venue.parseSystemStatus). */
  parse: (body: string) => { status: 0 | 1; msg: string } | null;
  intervalMs: number;
  calendar: Pick<MaintenanceCalendar, 'noteSystemStatus'>;
  logger: Logger;
  fetch?: StatusFetch;
  /** Per poll, headers and body. Default 10 s. */
  timeoutMs?: number;
  clock?: Clock;
}

/**
 * Polls the venue's status endpoint (Binance GET /sapi/v1/system/status, weight 1, no key; OKX at
 * most 1 per 5 s) one request at a time. A failed poll
 * (timeout, HTTP error, unexpected body) is logged and leaves the calendar as it was.
 */
export class SystemStatusPoller {
  private readonly url: string;
  private readonly opts: SystemStatusPollerOptions;
  private readonly fetch: StatusFetch;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private timer: Timer | undefined;
  private abort: AbortController | null = null;
  private running = false;

  constructor(opts: SystemStatusPollerOptions) {
    this.opts = opts;
    this.url = new URL(opts.path, opts.restBaseUrl).toString();
    this.fetch = opts.fetch ?? undiciStatusFetch;
    this.clock = opts.clock ?? systemClock;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.tick();
  }

  stop(): void {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.abort?.abort();
  }

  /** One poll; resolves to the delay before the next one. Never rejects. */
  async pollOnce(): Promise<number> {
    const abort = new AbortController();
    this.abort = abort;
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(this.timeoutMs)]);
    let next = this.opts.intervalMs;
    // A 429/418 earned by another REST caller of the host (the backfill, user data) pauses this poll
    // too; its own 429/418 delays its next poll (below).
    const host = sharedRestHosts.get(new URL(this.url).origin);
    const paused = host.remaining(this.clock.now());
    if (paused > 0) return Math.max(next, paused);
    try {
      const res = await this.fetch(this.url, { signal, timeoutMs: this.timeoutMs });
      if (res.status < 200 || res.status >= 300) {
        const retryMs = parseRetryAfter(res.retryAfter ?? null);
        if (retryMs !== null) next = Math.max(next, retryMs);
        this.opts.logger.warn({ event: 'status_poll_http_error', status: res.status, url: this.url, nextPollMs: next }, 'system status poll failed');
        return next;
      }
      const parsed = this.opts.parse(res.body);
      if (parsed === null) {
        this.opts.logger.warn({ event: 'status_poll_unexpected', url: this.url, body: res.body.slice(0, 200) }, 'system status poll: unexpected body');
        return next;
      }
      this.opts.calendar.noteSystemStatus(parsed.status, parsed.msg, this.clock.now());
    } catch (err) {
      if (!abort.signal.aborted) this.opts.logger.warn({ event: 'status_poll_failed', err, url: this.url }, 'system status poll failed');
    } finally {
      if (this.abort === abort) this.abort = null;
    }
    return next;
  }

  private async tick(): Promise<void> {
    const next = await this.pollOnce();
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => void this.tick(), next);
    (this.timer as { unref?: () => void }).unref?.();
  }
}
