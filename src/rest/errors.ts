import { ErrorCodes, FeedkeeperError } from '../errors.js';

/**
 * A REST call failed: the exchange answered with a non-2xx status (`status`, and `binanceCode` when
 * the body was Binance's `{"code":-1125,"msg":"..."}`), or no answer came at all (`status` null:
 * timeout, connection refused, unreadable body). Code FK_ERR_REST.
 */
export class RestError extends FeedkeeperError {
  /** HTTP status, or null when no response arrived. */
  readonly status: number | null;
  /** Binance's error code from the body (e.g. -1125), or null. */
  readonly binanceCode: number | null;
  /** Retry-After in milliseconds when the response carried one (429, 418). */
  readonly retryAfterMs: number | null;
  constructor(
    message: string,
    fields: { status: number | null; binanceCode?: number | null; retryAfterMs?: number | null },
    options?: { cause?: unknown },
  ) {
    super(ErrorCodes.FK_ERR_REST, message, options);
    this.name = 'RestError';
    this.status = fields.status;
    this.binanceCode = fields.binanceCode ?? null;
    this.retryAfterMs = fields.retryAfterMs ?? null;
  }
}

/**
 * The host banned this IP (HTTP 418) and the ban lasts longer than the client is willing to wait
 * (`maxBanWaitMs`). Nothing was sent. `retryAfterMs` says when calls may resume. Code FK_ERR_REST_BANNED.
 */
export class RestBannedError extends FeedkeeperError {
  readonly retryAfterMs: number;
  constructor(origin: string, retryAfterMs: number) {
    super(ErrorCodes.FK_ERR_REST_BANNED, `REST calls to ${origin} are banned (HTTP 418) for another ${Math.ceil(retryAfterMs / 1000)} s`);
    this.name = 'RestBannedError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** The Binance error code carried by an error, if any (RestError from the exchange). */
export function binanceCodeOf(err: unknown): number | null {
  return err instanceof RestError ? err.binanceCode : null;
}

/** How long the exchange asked us to wait, if the error says (429, 418). */
export function retryAfterOf(err: unknown): number | null {
  if (err instanceof RestBannedError) return err.retryAfterMs;
  if (err instanceof RestError) return err.retryAfterMs;
  return null;
}
