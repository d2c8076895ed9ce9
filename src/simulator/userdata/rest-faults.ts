import type { ServerResponse } from 'node:http';

/**
 * REST behaviour shared by the user-data endpoints of the simulator: the X-MBX-USED-WEIGHT-1M header
 * and injected 429 / 418 / 5xx answers (facts sheet, "REST": both 429 and 418 carry Retry-After).
 */
export class RestFaults {
  private bannedUntil = 0;
  private rateLimited = 0;
  private rateLimitRetryAfterS = 1;
  private failures = 0;
  private failureStatus = 500;
  private weight = 0;
  private weightMinute = -1;
  /** Answers sent, by status. */
  readonly statuses = new Map<number, number>();

  constructor(private readonly now: () => number) {}

  /** Every REST call answers 418 with Retry-After until retryAfterS have passed. */
  ban(retryAfterS: number): void {
    this.bannedUntil = this.now() + retryAfterS * 1000;
  }

  /** The next n REST calls answer 429 with Retry-After: retryAfterS. */
  rateLimit(n: number, retryAfterS: number): void {
    this.rateLimited = n;
    this.rateLimitRetryAfterS = retryAfterS;
  }

  /** The next n REST calls answer `status` (default 500) with a Binance-style body. */
  fail(n: number, status = 500): void {
    this.failures = n;
    this.failureStatus = status;
  }

  /**
   * Count the call's weight and answer it if a fault is armed. Returns true when the call was answered.
   */
  intercept(res: ServerResponse, weight = 1): boolean {
    const now = this.now();
    const minute = Math.floor(now / 60_000);
    if (minute !== this.weightMinute) {
      this.weightMinute = minute;
      this.weight = 0;
    }
    this.weight += weight;
    // The market simulator counts weight per IP for every route; a bare host leaves it to us.
    if (!res.hasHeader('X-MBX-USED-WEIGHT-1M')) res.setHeader('X-MBX-USED-WEIGHT-1M', String(this.weight));
    if (this.bannedUntil > now) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil((this.bannedUntil - now) / 1000))));
      this.send(res, 418, { code: -1003, msg: `Way too much request weight used; IP banned until ${this.bannedUntil}.` });
      return true;
    }
    if (this.rateLimited > 0) {
      this.rateLimited--;
      res.setHeader('Retry-After', String(this.rateLimitRetryAfterS));
      this.send(res, 429, { code: -1003, msg: 'Too much request weight used; current limit is 2400 request weight per 1 MINUTE.' });
      return true;
    }
    if (this.failures > 0) {
      this.failures--;
      this.send(res, this.failureStatus, { code: -1001, msg: 'Internal error; unable to process your request. Please try again.' });
      return true;
    }
    return false;
  }

  send(res: ServerResponse, status: number, body: unknown): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}
