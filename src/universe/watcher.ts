import type { Clock, Timer } from '../clock.js';
import type { Config } from '../config/types.js';
import { feedStatePaths, type Feed } from '../feed.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { UniverseSpec } from './spec.js';
import { diffSymbols, selectUniverse } from './select.js';
import { InstrumentList } from './source.js';
import type { StreamType } from '../venues/types.js';

/** How often the instrument-event stream's count is looked at, and the least time between two refreshes it causes. */
const EVENT_POLL_MS = 250;
const EVENT_REFRESH_MS = 1000;

export interface UniverseWatcherOptions {
  feed: Feed;
  /** The feed's config (its symbolsFrom, endpoints.rest, universe.refreshMs). */
  config: Config;
  index: number;
  logger: Logger;
  /** The feed's metrics view (venue label). */
  metrics: Metrics;
  clock: Clock;
}

/**
 * Keeps a feed's universe current: every universe.refreshMs the instrument list is fetched again and
 * the difference applied live (Feed.applyFollowed): new listings subscribed, delistings
 * unsubscribed. One `universe_change` log line per change that changes something. A failed fetch
 * is counted and logged, and the universe stays as it is until the next one.
 */
export class UniverseWatcher {
  private spec: UniverseSpec;
  private timer: Timer | undefined;
  private events: Timer | undefined;
  private stopped = false;
  private running: Promise<void> | null = null;
  private readonly list: InstrumentList;

  constructor(private readonly opts: UniverseWatcherOptions) {
    this.spec = opts.config.symbolsFrom!;
    const paths = feedStatePaths(opts.config, opts.index);
    this.list = new InstrumentList({
      venue: opts.feed.venue,
      restBase: opts.config.endpoints.rest,
      statePath: paths.universe,
      owner: paths.owner,
      logger: opts.logger,
      metrics: opts.metrics,
      clock: opts.clock,
    });
    opts.metrics.universeSymbols.set(opts.feed.symbols.length);
  }

  start(): void {
    this.schedule();
    const events = this.opts.feed.venue.instruments?.events;
    if (events !== undefined) void this.followEvents(events.stream, events.type);
  }

  /**
   * Follow the venue's instrument events (USD-M `!contractInfo`): a message on it (a listing, a
   * status change) brings a refresh forward, at most one per EVENT_REFRESH_MS.
   */
  private async followEvents(stream: string, type: StreamType): Promise<void> {
    const { feed, logger, clock } = this.opts;
    try {
      await feed.follow(stream, type);
    } catch (err) {
      logger.warn({ event: 'universe_refresh_failed', venue: feed.venue.name, stream, err }, 'instrument events could not be subscribed: the universe follows its schedule only');
      return;
    }
    let seen = feed.router.stream(stream)?.received ?? 0;
    let last = 0;
    const tick = (): void => {
      if (this.stopped) return;
      const now = feed.router.stream(stream)?.received ?? 0;
      if (now > seen && clock.now() - last >= EVENT_REFRESH_MS) {
        seen = now;
        last = clock.now();
        void this.refresh('event');
      }
      this.events = clock.setTimeout(tick, EVENT_POLL_MS);
      (this.events as { unref?: () => void }).unref?.();
    };
    tick();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.timer);
    this.opts.clock.clearTimeout(this.events);
    return this.running ?? Promise.resolve();
  }

  /** A reload gave the universe new filters: applied by a refresh now. */
  setSpec(spec: UniverseSpec): Promise<void> {
    this.spec = spec;
    return this.refresh('reload');
  }

  /** Fetch the list and apply what changed; one at a time (a second call waits for the first). */
  refresh(reason: 'schedule' | 'reload' | 'event' = 'schedule'): Promise<void> {
    // refreshOnce says what fails and never throws; the catch keeps one surprise from ending the loop.
    const run = (this.running ?? Promise.resolve()).then(() => this.refreshOnce(reason)).catch((err: unknown) => {
      this.opts.logger.warn({ event: 'universe_refresh_failed', venue: this.opts.feed.venue.name, err }, 'universe refresh failed');
    });
    this.running = run;
    return run;
  }

  private async refreshOnce(reason: string): Promise<void> {
    const { feed, logger, metrics } = this.opts;
    const venue = feed.venue;
    let instruments;
    try {
      instruments = await this.list.fetch();
    } catch (err) {
      metrics.universeRefreshFailures.inc();
      logger.warn({ event: 'universe_refresh_failed', venue: venue.name, err }, 'the instrument list could not be fetched: the universe stays as it is');
      return;
    }
    if (this.stopped) return;
    const next = selectUniverse(instruments, this.spec, venue.isSymbol, feed.symbols);
    const { added, removed } = diffSymbols(feed.symbols, next);
    if (added.length === 0 && removed.length === 0) return;
    // Removed because the exchange ended it (gone from the list, or no longer trading), not because
    // of a filter: the last gap of such a symbol closes with cause `delisted`.
    const status = new Map(instruments.map((i) => [i.symbol, i.status]));
    const delisted = new Set(removed.filter((s) => status.get(s) !== this.spec.status));
    let streams: { added: string[]; removed: string[] };
    try {
      streams = await feed.applyFollowed(next, feed.streamTypes, delisted);
    } catch (err) {
      // A subscribe refused or unanswered on a live socket: the streams stay on their connection's
      // list and are subscribed by its next socket. Never a rejection out of the refresh loop.
      logger.warn({ event: 'universe_apply_failed', venue: venue.name, added, removed, err }, 'a universe change could not be applied on every live connection: its next socket subscribes what is missing');
      metrics.universeSymbols.set(next.length);
      return;
    }
    metrics.universeSymbols.set(next.length);
    if (added.length > 0) metrics.universeChanges.inc({ change: 'added' }, added.length);
    if (removed.length > 0) metrics.universeChanges.inc({ change: 'removed' }, removed.length);
    logger.info(
      { event: 'universe_change', venue: venue.name, reason, added, removed, delisted: [...delisted], symbols: next.length, streamsAdded: streams.added.length, streamsRemoved: streams.removed.length },
      'universe changed: applied on the live connections',
    );
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.opts.clock.setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, this.opts.config.universe.refreshMs);
    (this.timer as { unref?: () => void }).unref?.();
  }
}
