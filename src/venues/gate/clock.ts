import { systemClock } from '../../clock.js';
/**
 * Gate.io's clock as the client knows it. Every request carries `time` in seconds, and Gate refuses a
 * request whose `time` is more than 60 s away from its own clock [T1]: a host whose clock drifted
 * would never subscribe. The server's time comes back in every pong and ack (`time`, `time_ms`), so
 * each connection first pings and sets the offset from the pong (GateProtocol.subscribe); acks keep
 * it current. One clock per process: the client ping (a venue-wide object) reads it too.
 */
export class ServerClock {
  /** Server time minus local time, ms; 0 until a server time was seen. */
  offsetMs = 0;
  known = false;

  constructor(private readonly local: () => number = systemClock.now) {}

  /** A server time (ms) received at local time `at`. */
  observe(serverMs: number, at = this.local()): void {
    if (!Number.isFinite(serverMs) || serverMs <= 0) return;
    this.offsetMs = serverMs - at;
    this.known = true;
  }

  /** The server's time now, in ms. */
  nowMs(): number {
    return this.local() + this.offsetMs;
  }

  /** The server's time now in whole seconds, as `time` is sent. */
  seconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }
}

/** The clock the Gate venue's connections and pings share. */
export const gateClock = new ServerClock();
