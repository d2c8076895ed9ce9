import type { Clock, Timer } from '../clock.js';
import type { Config } from '../config/types.js';
import { feedStatePaths, type Feed } from '../feed.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { UniverseSpec } from './spec.js';
import { diffSymbols, selectUniverse } from './select.js';
import { InstrumentList } from './source.js';

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
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** A reload gave the universe new filters: applied by a refresh now. */
  setSpec(spec: UniverseSpec): Promise<void> {
    this.spec = spec;
    return this.refresh('reload');
  }

  /** Fetch the list and apply what changed; one at a time (a second call waits for the first). */
  refresh(reason: 'schedule' | 'reload' = 'schedule'): Promise<void> {
    const run = (this.running ?? Promise.resolve()).then(() => this.refreshOnce(reason));
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
    const streams = await feed.applyFollowed(next, feed.streamTypes, delisted);
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
