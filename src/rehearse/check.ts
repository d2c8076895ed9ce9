import type { Config } from '../config/types.js';
import { readLedger } from '../ledger/report.js';
import type { GapEntry } from '../ledger/types.js';
import { getVenue } from '../venues/index.js';
import { checkInvariant, type InvariantResult, type RecordedMessage } from './invariant.js';
import { readRecording } from './recording.js';

/** What the exchange reports it generated: the simulator's `sentIds`. */
export interface SentSource {
  sentIds(stream: string): number[];
}

export interface RunCheck {
  invariant: InvariantResult;
  /** The ledger, lines merged by id (a missing file: no entries). */
  entries: GapEntry[];
  recording: RecordedMessage[];
  /** Recorded lines that did not parse (torn by a crash). */
  skippedLines: number;
}

/**
 * Reads back what a daemon run with `config` left (recording, ledger) and checks the invariant
 * against what `exchange` sent, for every sequenced stream the config subscribes to. Read after
 * the daemon stopped, or the last recorded lines may still be in its buffer.
 */
export async function checkRun(config: Config, exchange: SentSource): Promise<RunCheck> {
  const venue = getVenue(config.venue)!;
  // A feed's config (config.feeds[i]) names its own venue; the ledger holds every venue's entries.
  const sent = new Map<string, number[]>();
  for (const symbol of config.symbols) {
    for (const type of config.streams) {
      const kind = venue.streamType(type)?.sequence.kind;
      if (kind !== 'contiguous' && kind !== 'range' && kind !== 'linked') continue;
      const name = venue.streamName(symbol, type);
      sent.set(name, exchange.sentIds(name));
    }
  }
  const { messages, skipped } = await readRecording(config.recorder.dir, venue.name);
  let entries: GapEntry[] = [];
  try {
    entries = await readLedger(config.ledger.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  entries = entries.filter((e) => e.venue === null || e.venue === venue.name);
  return { invariant: checkInvariant({ venue, recording: messages, ledger: entries, sent }), entries, recording: messages, skippedLines: skipped };
}
