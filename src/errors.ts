import { systemClock } from './clock.js';
/**
 * Every error feedkeeper raises on purpose carries a stable `code`. Match on `code`, never on the
 * message text. Each code is documented in docs/troubleshooting.md (a test checks it).
 */
export const ErrorCodes = {
  FK_ERR_CONFIG: 'FK_ERR_CONFIG',
  FK_ERR_PLAN_OVER_BUDGET: 'FK_ERR_PLAN_OVER_BUDGET',
  FK_ERR_UPGRADE_REJECTED: 'FK_ERR_UPGRADE_REJECTED',
  FK_ERR_CONNECT: 'FK_ERR_CONNECT',
  FK_ERR_CONNECT_TIMEOUT: 'FK_ERR_CONNECT_TIMEOUT',
  FK_ERR_CONNECTION_CLOSED: 'FK_ERR_CONNECTION_CLOSED',
  FK_ERR_SUBSCRIBE: 'FK_ERR_SUBSCRIBE',
  FK_ERR_SUBSCRIBE_TIMEOUT: 'FK_ERR_SUBSCRIBE_TIMEOUT',
  FK_ERR_STALE: 'FK_ERR_STALE',
  FK_ERR_ABORTED: 'FK_ERR_ABORTED',
  FK_ERR_RECORDER_WRITE: 'FK_ERR_RECORDER_WRITE',
  FK_ERR_RECORDER_BUFFER_FULL: 'FK_ERR_RECORDER_BUFFER_FULL',
  FK_ERR_LEDGER_WRITE: 'FK_ERR_LEDGER_WRITE',
  FK_ERR_REST: 'FK_ERR_REST',
  FK_ERR_REST_BANNED: 'FK_ERR_REST_BANNED',
  FK_ERR_LISTEN_KEY: 'FK_ERR_LISTEN_KEY',
  FK_ERR_SECRET: 'FK_ERR_SECRET',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class FeedkeeperError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FeedkeeperError';
  }
}

/** A configuration value is wrong. `key` names the offending config key. Exit code 2. */
export class ConfigError extends FeedkeeperError {
  readonly key: string;
  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.FK_ERR_CONFIG, `${key}: ${message}`, options);
    this.key = key;
    this.name = 'ConfigError';
  }
}

/** The plan needs more connection attempts than one IP may make in a window. Exit code 2. */
export class PlanOverBudgetError extends FeedkeeperError {
  readonly connections: number;
  readonly ipsNeeded: number;
  constructor(message: string, connections: number, ipsNeeded: number) {
    super(ErrorCodes.FK_ERR_PLAN_OVER_BUDGET, message);
    this.connections = connections;
    this.ipsNeeded = ipsNeeded;
    this.name = 'PlanOverBudgetError';
  }
}

/** The exchange answered the WebSocket upgrade with an HTTP status instead of 101. */
export class UpgradeRejectedError extends FeedkeeperError {
  readonly status: number;
  /** Retry-After in milliseconds, when the server sent one. */
  readonly retryAfterMs: number | null;
  constructor(status: number, retryAfterMs: number | null) {
    super(ErrorCodes.FK_ERR_UPGRADE_REJECTED, `upgrade rejected with HTTP ${status}`);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
    this.name = 'UpgradeRejectedError';
  }
}

export class AbortedError extends FeedkeeperError {
  constructor(message = 'aborted') {
    super(ErrorCodes.FK_ERR_ABORTED, message);
    this.name = 'AbortedError';
  }
}

/** Parse an HTTP Retry-After header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined | null, now = systemClock.now()): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === null || v === '') return null;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return Math.round(s * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - now);
}
