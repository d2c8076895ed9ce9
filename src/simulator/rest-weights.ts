/**
 * REQUEST_WEIGHT as Binance enforces it (facts sheet, "REST"): weight per IP per window (a calendar
 * minute by default), reported on every answer in `X-MBX-USED-WEIGHT-1M`; over the limit → 429 with
 * Retry-After (seconds to the window's end); a client that keeps sending during that back-off is
 * banned → 418 with Retry-After for `banMs` (Binance: 2 min, growing to 3 days).
 */

export interface RestLimitSettings {
  /** Weight per IP per window. */
  weightLimit: number;
  /** Window length; Binance counts per calendar minute. */
  windowMs: number;
  /** How long a ban lasts. */
  banMs: number;
  /** Requests sent during a 429's Retry-After before the IP is banned. */
  banAfterIgnored: number;
}

export interface RestCharge {
  status: 200 | 429 | 418;
  /** Weight used in the window, for X-MBX-USED-WEIGHT-1M. */
  used: number;
  /** Seconds, for Retry-After (429, 418). */
  retryAfterS: number;
}

interface IpState {
  window: number;
  used: number;
  limitedUntil: number;
  ignored: number;
  bannedUntil: number;
}

export class RestWeightLimiter {
  private readonly byIp = new Map<string, IpState>();

  constructor(private readonly s: RestLimitSettings) {}

  charge(ip: string, weight: number, now: number): RestCharge {
    let st = this.byIp.get(ip);
    if (st === undefined) this.byIp.set(ip, (st = { window: -1, used: 0, limitedUntil: 0, ignored: 0, bannedUntil: 0 }));
    const window = Math.floor(now / this.s.windowMs);
    if (st.window !== window) {
      st.window = window;
      st.used = 0;
    }
    if (st.bannedUntil > now) return { status: 418, used: st.used, retryAfterS: Math.ceil((st.bannedUntil - now) / 1000) };
    if (st.limitedUntil > now) {
      if (++st.ignored >= this.s.banAfterIgnored) {
        st.bannedUntil = now + this.s.banMs;
        return { status: 418, used: st.used, retryAfterS: Math.ceil(this.s.banMs / 1000) };
      }
      return { status: 429, used: st.used, retryAfterS: Math.max(1, Math.ceil((st.limitedUntil - now) / 1000)) };
    }
    if (st.used + weight > this.s.weightLimit) {
      st.limitedUntil = (window + 1) * this.s.windowMs;
      st.ignored = 0;
      return { status: 429, used: st.used, retryAfterS: Math.max(1, Math.ceil((st.limitedUntil - now) / 1000)) };
    }
    st.used += weight;
    return { status: 200, used: st.used, retryAfterS: 0 };
  }
}

/** A REST answer, as the simulator records it (`restAnswers`). */
export interface RestAnswer {
  at: number;
  method: string;
  path: string;
  status: number;
  weight: number;
  /** X-MBX-USED-WEIGHT-1M sent with it. */
  used: number;
}
