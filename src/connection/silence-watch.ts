import type { Clock, Timer } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { StreamRouter } from '../pipeline/stream-router.js';
import type { ConnectionWorker } from './worker.js';

export interface SilenceWatchOptions {
  workers: () => readonly ConnectionWorker[];
  router: StreamRouter;
  /** silence.afterMs and silence.cadences: silent past max(afterMs, cadences × the type's cadence). */
  afterMs: number;
  cadences: number;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

/**
 * Per-stream silence on a live connection (docs/gap-ledger.md, cause `silent`). A stream whose type
 * pushes on a fixed cadence (StreamType.expectedIntervalMs > 0: depth, kline, tickers, avgPrice,
 * markPrice; never trades or bookTicker, whose silence is normal) that has been silent past
 * max(silence.afterMs, silence.cadences × its cadence) while its connection delivers other streams has lost its
 * subscription upstream: the connection-level stale check cannot see it. The stream gets a `silent`
 * gap from its last message (closed, with the exact range where its IDs are contiguous, by the
 * first message after recovery); the exchange's list of subscriptions is asked for where the venue
 * has one (LIST_SUBSCRIPTIONS), and the stream is subscribed again (unsubscribed first when the
 * exchange still lists it). A stream is tried again at most once per threshold.
 */
export class SilenceWatch {
  private timer: Timer | undefined;
  /** Stream → the earliest time it may be reconciled again. */
  private readonly quiet = new Map<string, number>();

  constructor(private readonly opts: SilenceWatchOptions) {}

  start(): void {
    const period = Math.max(50, Math.min(1000, Math.floor(this.opts.afterMs / 4)));
    const tick = (): void => {
      this.check();
      this.timer = this.opts.clock.setTimeout(tick, period);
      (this.timer as { unref?: () => void }).unref?.();
    };
    this.timer = this.opts.clock.setTimeout(tick, period);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    this.opts.clock.clearTimeout(this.timer);
  }

  /** One pass over every open connection; reconciliations run in the background. */
  check(): void {
    const { router, afterMs, clock } = this.opts;
    const now = clock.now();
    for (const w of this.opts.workers()) {
      const s = w.session;
      if (s === null || !s.alive || w.state !== 'open') continue;
      let latest = 0;
      for (const name of w.streams) latest = Math.max(latest, router.stream(name)?.lastRecv ?? 0);
      const silent: Array<{ name: string; last: number }> = [];
      for (const name of w.streams) {
        const cadence = router.typeOf(name)?.expectedIntervalMs ?? 0;
        if (cadence <= 0) continue;
        const st = router.stream(name);
        if (st === undefined || st.gapOpen) continue;
        const threshold = Math.max(afterMs, this.opts.cadences * cadence);
        const last = Math.max(st.lastRecv, s.openedAt);
        // Silent, while the connection delivered something else within the threshold.
        if (now - last <= threshold || now - latest > threshold || latest <= last) continue;
        if ((this.quiet.get(name) ?? 0) > now) continue;
        this.quiet.set(name, now + threshold);
        silent.push({ name, last: st.lastRecv > 0 ? st.lastRecv : s.openedAt });
      }
      if (silent.length > 0) void this.reconcile(w, silent);
    }
    for (const [name, until] of this.quiet) if (until <= now) this.quiet.delete(name);
  }

  private async reconcile(w: ConnectionWorker, silent: Array<{ name: string; last: number }>): Promise<void> {
    const { router, logger, metrics } = this.opts;
    const s = w.session;
    if (s === null) return;
    for (const { name, last } of silent) {
      router.markGap(name, s, 'silent', last, 'a stream with a fixed cadence went silent on a connection that delivers others');
      metrics.streamSilences.inc();
    }
    const names = silent.map((x) => x.name);
    logger.warn({ event: 'stream_silent', connection: w.id, streams: names.slice(0, 10), count: names.length }, 'streams silent on a live connection: reconciling');
    if (!s.changesLive) {
      // No live subscribe on this venue (Bybit, OKX so far): a make-before-break switch-over to a
      // new socket subscribes everything again, and the other streams hand over without a gap.
      logger.info({ event: 'stream_resubscribed', connection: w.id, lost: names.length, stillListed: 0, listed: false, rotated: true }, 'silent streams: the connection is replaced make-before-break (no live subscribe on this venue)');
      w.rotate('silent_stream');
      return;
    }
    try {
      const listed = await s.listSubscriptions().catch(() => null);
      const lost = listed === null ? names : names.filter((n) => !listed.includes(n));
      const held = listed === null ? [] : names.filter((n) => listed.includes(n));
      if (lost.length > 0) await s.resubscribe(lost, false);
      if (held.length > 0) await s.resubscribe(held, true);
      logger.info(
        { event: 'stream_resubscribed', connection: w.id, lost: lost.length, stillListed: held.length, listed: listed !== null },
        listed === null ? 'silent streams subscribed again (the venue cannot list subscriptions)' : 'silent streams subscribed again',
      );
    } catch (err) {
      // The connection ended meanwhile (its streams reconnect with it), or the exchange refused.
      logger.warn({ event: 'resubscribe_failed', connection: w.id, count: names.length, err }, 'silent streams could not be subscribed again: tried again after the threshold');
    }
  }
}
