/**
 * The two rate limits Binance enforces on WebSocket clients (facts sheet, "Spot market streams"):
 * messages a client sends per connection per second, and connection attempts per IP per window.
 */

/** The message rate is the relay's (it limits its clients as Binance limits ours). */
export { MessageRate } from '../relay/heartbeat.js';

/**
 * Connection attempts per IP in a sliding window. Every attempt counts, refused ones included: a
 * client that keeps knocking while refused stays refused (changelog 2023-02-17: a rate of attempts).
 */
export class AttemptLimiter {
  private readonly byIp = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Records an attempt; null when within budget, else the ms until an attempt would be allowed again. */
  hit(ip: string, now: number): number | null {
    let times = this.byIp.get(ip);
    if (times === undefined) {
      times = [];
      this.byIp.set(ip, times);
    }
    let expired = 0;
    while (expired < times.length && times[expired]! <= now - this.windowMs) expired++;
    if (expired > 0) times.splice(0, expired);
    times.push(now);
    if (times.length <= this.limit) return null;
    // Allowed again once all but limit-1 of the recorded attempts have left the window.
    return Math.max(0, times[times.length - this.limit]! + this.windowMs - now);
  }
}

