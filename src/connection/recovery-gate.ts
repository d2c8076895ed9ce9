/**
 * Back fast after a maintenance window, inside the attempt budget. While the exchange refuses
 * upgrades with 503, backoffs that keep growing leave the last connection seconds behind the
 * exchange's return (3.5 s measured for 4 connections). Instead, the feed's workers share this gate:
 *
 *   open ──(a 503)──► down: one worker (the prober) tries every connection.probeIntervalMs, the
 *     ▲                     others wait here without spending attempts
 *     └──(an upgrade succeeds)── every waiting worker goes at once (each through the attempt budget)
 *
 * A prober that stops (daemon stop, its connection removed) hands the role to the next waiter.
 */
export class RecoveryGate {
  private down = false;
  private prober: string | null = null;
  private waiters: Array<() => void> = [];

  /** Is the exchange refusing upgrades (503) right now, as far as this feed knows? */
  get isDown(): boolean {
    return this.down;
  }

  /** Is `worker` the one probing? */
  probing(worker: string): boolean {
    return this.down && this.prober === worker;
  }

  /** `worker`'s upgrade was refused with 503: the gate closes, and the first to see it probes. */
  refused(worker: string): void {
    if (this.down) return;
    this.down = true;
    this.prober = worker;
  }

  /** An upgrade succeeded: the exchange is back, every waiter goes. */
  opened(): void {
    if (!this.down) return;
    this.down = false;
    this.prober = null;
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Before an attempt: at once while the gate is open or for the prober; otherwise once the gate
   * opens, or once this worker becomes the prober, or on abort.
   */
  async enter(worker: string, signal: AbortSignal): Promise<void> {
    while (this.down && this.prober !== worker && !signal.aborted) {
      if (this.prober === null) {
        this.prober = worker;
        return;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** `worker` stops trying (stop, removed): if it was the prober, the next waiter takes over. */
  leave(worker: string): void {
    if (this.prober !== worker) return;
    this.prober = null;
    this.waiters.shift()?.();
  }
}
