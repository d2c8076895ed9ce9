import type { Pool } from 'undici';
import { systemClock, delay, type Clock } from '../clock.js';
import { AbortedError, ErrorCodes, FeedkeeperError, parseRetryAfter } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { RestBannedError, RestError } from './errors.js';
import { sharedRestHosts, type PauseObserver, type RestHost, type RestHostRegistry } from './hosts.js';
import { createSigner, type Signer } from './signing.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type QueryValue = string | number | boolean | undefined;

export interface RestClientOptions {
  /** e.g. https://fapi.binance.com (a path part is ignored: paths passed to request() are absolute). */
  baseUrl: string;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** Headers timeout and body (idle) timeout of each request, and the connect timeout. Default 10 000. */
  timeoutMs?: number;
  /** Sent as X-MBX-APIKEY on every request. */
  apiKey?: string;
  /** Retries after a 429 or 418 before giving up with the error. Default 3. */
  maxRetries?: number;
  /**
   * While the host is banned (418), a call waits for the ban to end if it ends within this many ms,
   * and fails at once with FK_ERR_REST_BANNED otherwise. Default 300 000 (5 min): a short ban is
   * waited out, a long one (bans grow to 3 days) is reported instead of hanging the caller.
   */
  maxBanWaitMs?: number;
  /**
   * Local REQUEST_WEIGHT budget per minute (e.g. 6000 spot, 2400 USD-M: read exchangeInfo.rateLimits).
   * When set, a call whose `weight` would take the last reported X-MBX-USED-WEIGHT-1M over it waits
   * for the next minute instead of earning a 429. Default: no local budget.
   */
  weightLimit?: number;
  /** Where the per-host pools and pauses live. Default: the process-wide registry. */
  hosts?: RestHostRegistry;
}

export interface RestRequestOptions {
  query?: Record<string, QueryValue>;
  /** Add `timestamp` (and `recvWindow` when given) and a `signature` of the query string. */
  signed?: boolean;
  /** Secret for signed calls: HMAC secret or PEM Ed25519 private key (or a ready Signer). */
  secret?: string | Signer;
  recvWindow?: number;
  /** The endpoint's request weight, for the local budget (see weightLimit). Default 1. */
  weight?: number;
  /** Cancels the call, including its wait during a pause or backoff (rejects with FK_ERR_ABORTED). */
  signal?: AbortSignal;
}

type StatusClass = '2xx' | '4xx' | '429' | '418' | '5xx' | 'error';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * REST client for Binance on undici.
 *
 * - One undici Pool per host, shared by every client of that host (RestHostRegistry).
 * - X-MBX-USED-WEIGHT-1M goes to metrics.restUsedWeight; every answer is counted in
 *   metrics.restRequests by status class.
 * - 429: the whole host pauses for Retry-After (or 1 s, 2 s, 4 s... without one), then the call is
 *   retried, at most `maxRetries` times.
 * - 418 (IP banned): the whole host pauses until Retry-After; every call through any client of the
 *   host waits (cancellable through its AbortSignal) when the ban ends within `maxBanWaitMs`, and
 *   fails fast with RestBannedError (FK_ERR_REST_BANNED) otherwise. metrics.restPaused is 1 meanwhile.
 * - Other non-2xx answers: RestError (FK_ERR_REST) with `.status` and `.binanceCode`; not retried
 *   (a 5xx leaves the outcome unknown: the caller decides).
 * - Nothing secret is logged: paths without their query string, never headers.
 */
export class RestClient {
  readonly origin: string;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly apiKey: string | undefined;
  private readonly maxRetries: number;
  private readonly maxBanWaitMs: number;
  private readonly weightLimit: number | null;
  private readonly host: RestHost;
  private readonly pool: Pool;
  private readonly observer: PauseObserver;
  private closed = false;

  constructor(opts: RestClientOptions) {
    this.origin = new URL(opts.baseUrl).origin;
    this.logger = opts.logger.child({ component: 'rest', origin: this.origin });
    this.metrics = opts.metrics;
    this.clock = opts.clock ?? systemClock;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.apiKey = opts.apiKey;
    this.maxRetries = opts.maxRetries ?? 3;
    this.maxBanWaitMs = opts.maxBanWaitMs ?? 300_000;
    this.weightLimit = opts.weightLimit ?? null;
    this.host = (opts.hosts ?? sharedRestHosts).get(this.origin);
    this.observer = opts.metrics.restPaused;
    this.pool = this.host.acquire(this.timeoutMs, this.observer);
  }

  async request<T>(method: HttpMethod, path: string, opts: RestRequestOptions = {}): Promise<T> {
    if (this.closed) throw new RestError(`REST ${method} ${path}: client closed`, { status: null });
    const signer = opts.signed ? this.signerFor(opts.secret) : null;
    for (let attempt = 0; ; attempt++) {
      await this.waitUntilAllowed(opts.weight ?? 1, opts.signal);
      const started = this.clock.now();
      const res = await this.send(method, path, opts, signer);
      const status = res.status;
      this.metrics.restRequests.inc({ status: statusClass(status) });
      this.trackWeight(res.headers);
      const ms = this.clock.now() - started;

      if (status >= 200 && status < 300) {
        this.logger.debug({ event: 'rest_call', method, path, status, ms, usedWeight: this.host.usedWeight }, 'rest call');
        return parseBody<T>(res.text, method, path, status);
      }

      const { code, msg } = binanceErrorBody(res.text);
      const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.clock.now());
      if (status === 429 || status === 418) {
        // Binance: keep going after a 429 and the IP gets banned (418), 2 min up to 3 days.
        const waitMs = retryAfterMs ?? Math.min(60_000, 1000 * 2 ** attempt);
        const kind = status === 418 ? 'banned' : 'rate_limited';
        this.host.pause(kind, this.clock.now() + waitMs, this.clock);
        this.logger.warn({ event: 'rest_rate_limited', method, path, status, binanceCode: code, retryAfterMs: waitMs, attempt }, status === 418 ? 'REST banned: pausing every call to the host' : 'REST rate limited: pausing every call to the host');
        if (attempt < this.maxRetries) continue;
        throw new RestError(describe(method, path, status, code, msg), { status, binanceCode: code, retryAfterMs: waitMs });
      }
      this.logger.debug({ event: 'rest_call_failed', method, path, status, binanceCode: code, ms }, 'rest call failed');
      throw new RestError(describe(method, path, status, code, msg), { status, binanceCode: code, retryAfterMs });
    }
  }

  /** Release this client's share of the host pool (the pool closes with its last client). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.host.release(this.observer);
  }

  private signerFor(secret: string | Signer | undefined): Signer {
    if (secret === undefined) throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, 'a signed REST call needs a secret');
    return typeof secret === 'string' ? createSigner(secret) : secret;
  }

  /** Wait out a pause of the host (and the local weight budget). */
  private async waitUntilAllowed(weight: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      if (signal?.aborted) throw new AbortedError('REST call aborted');
      const now = this.clock.now();
      let waitMs = this.host.remaining(now);
      if (waitMs > 0 && this.host.pauseKind === 'banned' && waitMs > this.maxBanWaitMs) {
        throw new RestBannedError(this.origin, waitMs);
      }
      if (waitMs === 0 && this.weightLimit !== null) {
        const minute = Math.floor(now / 60_000);
        if (this.host.usedWeightMinute === minute && this.host.usedWeight + weight > this.weightLimit) {
          waitMs = (minute + 1) * 60_000 - now;
          this.logger.warn({ event: 'rest_weight_wait', usedWeight: this.host.usedWeight, weight, weightLimit: this.weightLimit, waitMs }, 'REST weight budget spent: waiting for the next minute');
        }
      }
      if (waitMs === 0) {
        this.host.endPauseIfOver(this.clock);
        return;
      }
      try {
        await delay(waitMs, signal, this.clock);
      } catch {
        throw new AbortedError('REST call aborted while waiting for the host');
      }
    }
  }

  private async send(method: HttpMethod, path: string, opts: RestRequestOptions, signer: Signer | null): Promise<RawResponse> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) params.append(k, String(v));
    let qs: string;
    if (signer) {
      // Signed afresh on every attempt: the timestamp must be current.
      if (opts.recvWindow !== undefined) params.set('recvWindow', String(opts.recvWindow));
      params.set('timestamp', String(this.clock.now()));
      const payload = params.toString();
      qs = `${payload}&signature=${encodeURIComponent(signer.sign(payload))}`;
    } else {
      qs = params.toString();
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiKey !== undefined) headers['x-mbx-apikey'] = this.apiKey;
    try {
      const res = await this.pool.request({
        method,
        path: qs === '' ? path : `${path}?${qs}`,
        headers,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: opts.signal ?? null,
      });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError(`REST ${method} ${path} aborted`);
      this.metrics.restRequests.inc({ status: 'error' });
      const code = (err as { code?: unknown }).code;
      this.logger.debug({ event: 'rest_call_no_answer', method, path, errCode: code }, 'rest call failed without an answer');
      // The message names the path only: the query may carry a signature.
      throw new RestError(`REST ${method} ${path}: no answer (${String(code ?? (err as Error).message)})`, { status: null }, { cause: err });
    }
  }

  private trackWeight(headers: RawResponse['headers']): void {
    const raw = headers['x-mbx-used-weight-1m'];
    const v = Number(Array.isArray(raw) ? raw[0] : raw);
    if (raw !== undefined && Number.isFinite(v)) {
      this.host.recordWeight(v, this.clock.now());
      this.metrics.restUsedWeight.set(v);
    }
  }
}

function statusClass(status: number): StatusClass {
  if (status === 429) return '429';
  if (status === 418) return '418';
  if (status >= 200 && status < 300) return '2xx';
  if (status >= 400 && status < 500) return '4xx';
  if (status >= 500 && status < 600) return '5xx';
  return 'error';
}

function binanceErrorBody(text: string): { code: number | null; msg: string | null } {
  try {
    const body: unknown = JSON.parse(text);
    if (body !== null && typeof body === 'object') {
      const { code, msg } = body as { code?: unknown; msg?: unknown };
      return { code: typeof code === 'number' ? code : null, msg: typeof msg === 'string' ? msg : null };
    }
  } catch {
    // not JSON: an HTML error page from a proxy, say
  }
  return { code: null, msg: null };
}

function describe(method: string, path: string, status: number, code: number | null, msg: string | null): string {
  const detail = code !== null ? `: Binance ${code}${msg ? ` ${msg}` : ''}` : '';
  return `REST ${method} ${path} failed with HTTP ${status}${detail}`;
}

function parseBody<T>(text: string, method: string, path: string, status: number): T {
  if (text.trim() === '') return {} as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new RestError(`REST ${method} ${path}: HTTP ${status} with a body that is not JSON`, { status }, { cause: err });
  }
}
