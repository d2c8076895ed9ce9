import { readFile } from 'node:fs/promises';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { RestClient } from '../rest/client.js';
import { writeStateFile } from '../state-file.js';
import type { Instrument, Venue } from '../venues/types.js';

/** What is saved beside the ledger after each successful fetch: a start without REST uses it. */
interface SavedUniverse {
  owner: string;
  venue: string;
  savedAt: number;
  instruments: Instrument[];
}

export interface InstrumentListOptions {
  venue: Venue;
  restBase: string;
  /** Where the last list is saved (feedStatePaths().universe), and whose it is. */
  statePath: string;
  owner: string;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  timeoutMs?: number;
}

/**
 * A venue's instrument list (Venue.instruments: Binance exchangeInfo), fetched over the daemon's
 * REST client (a 429/418 pauses every caller of the host; Retry-After is honoured) and saved
 * atomically after each fetch, so a start while the REST API is down begins from the last list.
 */
export class InstrumentList {
  constructor(private readonly opts: InstrumentListOptions) {}

  /** Fetch the list now; saves it. Throws RestError / Error when it cannot. */
  async fetch(): Promise<Instrument[]> {
    const { venue, restBase, logger, metrics, clock } = this.opts;
    const source = venue.instruments!;
    const client = new RestClient({ baseUrl: restBase, logger, metrics, clock, timeoutMs: this.opts.timeoutMs ?? 10_000, maxRetries: 1, maxBanWaitMs: 0 });
    try {
      const body = await client.request<unknown>('GET', source.path, { weight: source.weight });
      const instruments = source.parse(body);
      const saved: SavedUniverse = { owner: this.opts.owner, venue: venue.name, savedAt: clock.now(), instruments };
      await writeStateFile(this.opts.statePath, `${JSON.stringify(saved)}\n`).catch((err: unknown) =>
        logger.warn({ event: 'universe_save_failed', venue: venue.name, path: this.opts.statePath, err }, 'the instrument list could not be saved'),
      );
      return instruments;
    } finally {
      await client.close();
    }
  }

  /** The last list saved by this daemon (its owner), or null when there is none. */
  async saved(): Promise<{ savedAt: number; instruments: Instrument[] } | null> {
    let text: string;
    try {
      text = await readFile(this.opts.statePath, 'utf8');
    } catch {
      return null;
    }
    try {
      const s = JSON.parse(text) as SavedUniverse;
      if (s.owner !== this.opts.owner || !Array.isArray(s.instruments) || typeof s.savedAt !== 'number') return null;
      return { savedAt: s.savedAt, instruments: s.instruments };
    } catch {
      return null;
    }
  }
}
