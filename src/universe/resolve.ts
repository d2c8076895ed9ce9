import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { feedStatePaths } from '../feed.js';
import type { Logger } from '../log.js';
import { createMetrics, type Metrics } from '../metrics/registry.js';
import { getVenue } from '../venues/index.js';
import { selectUniverse } from './select.js';
import { InstrumentList } from './source.js';

export interface ResolveOptions {
  logger: Logger;
  metrics?: Metrics;
  clock?: Clock;
}

/**
 * Every feed whose `symbols` is a universe gets its symbols from the venue's instrument list, before
 * anything is planned: fetched now, or when that fails, the list saved by the last run (said in the
 * log: `universe_from_saved`). With neither, ConfigError (exit 2): there is nothing to plan. A
 * universe that selects nothing is a ConfigError too. Feeds with a list are returned as they are.
 */
export async function resolveUniverses(config: Config, opts: ResolveOptions): Promise<Config> {
  if (config.feeds.every((f) => f.symbolsFrom === null)) return config;
  const clock = opts.clock ?? systemClock;
  const metrics = opts.metrics ?? createMetrics();
  const feeds: Config[] = [];
  for (const [index, feed] of config.feeds.entries()) {
    if (feed.symbolsFrom === null) {
      feeds.push(feed);
      continue;
    }
    const key = config.feeds.length === 1 && index === 0 ? 'symbols' : `feeds[${index}].symbols`;
    const venue = getVenue(feed.venue)!;
    const paths = feedStatePaths(feed, index);
    const list = new InstrumentList({ venue, restBase: feed.endpoints.rest, statePath: paths.universe, owner: paths.owner, logger: opts.logger, metrics, clock });
    let instruments;
    try {
      instruments = await list.fetch();
    } catch (err) {
      const saved = await list.saved();
      if (saved === null) {
        throw new ConfigError(`${key}.from`, `${venue.name} ${venue.instruments!.path} could not be fetched (${(err as Error).message}) and no universe was saved by an earlier run (${paths.universe})`);
      }
      opts.logger.warn(
        { event: 'universe_from_saved', venue: venue.name, savedAt: new Date(saved.savedAt).toISOString(), instruments: saved.instruments.length, err },
        'the instrument list could not be fetched: starting from the one saved by the last run',
      );
      instruments = saved.instruments;
    }
    const symbols = selectUniverse(instruments, feed.symbolsFrom, venue.isSymbol);
    if (symbols.length === 0) throw new ConfigError(key, `the universe selects no symbol of the ${instruments.length} ${venue.name} lists: loosen its filters`);
    opts.logger.info({ event: 'universe_resolved', venue: venue.name, symbols: symbols.length, listed: instruments.length }, 'universe resolved');
    feeds.push(deepFreeze({ ...feed, symbols }));
  }
  return deepFreeze({ ...feeds[0]!, feeds });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
