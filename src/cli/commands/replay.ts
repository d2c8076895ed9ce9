import { systemClock } from '../../clock.js';
import { loadConfig } from '../../config/load.js';
import { parseTimeArg } from '../../ledger/report.js';
import { replayBook } from '../../books/replay.js';
import { getVenue } from '../../venues/index.js';
import { parseCommandArgs, UsageError } from '../args.js';

export const USAGE = `Usage: feedkeeper replay --config FILE [--config FILE ...] --book SYMBOL [--at T] [--venue V] [--stream S] [--limit N]

Print a local order book as it stood at T, from the recording alone: the last book snapshot
("src":"book", every books.snapshotEveryMs) at or before T, then the diff-depth events after it.
JSON: {venue, symbol, stream, at, synced, lastUpdateId, snapshotAt, bids, asks}.

Options:
  -c, --config FILE  JSON config file (repeatable, at least one)
      --book SYMBOL  the symbol, e.g. BTCUSDT
      --at T         the time (default now)
      --venue V      the feed (default the first)
      --stream S     the diff-depth stream (default <symbol>@depth@100ms, else <symbol>@depth)
      --limit N      levels a side to print (default all)
  -h, --help         show this help

T is an ISO 8601 time (2026-07-09T07:00:00Z), epoch milliseconds, now, or a duration before
now: 90s, 30m, 24h, 7d. Exit 0 with the book; 1 when the recording has no snapshot of it before T
(or the diffs after the last one break); 2 bad command line or config.
`;

export interface ReplayIo {
  stdout?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
  now?: number;
}

export async function run(argv: string[], io: ReplayIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const now = io.now ?? systemClock.now();
  const { values } = parseCommandArgs(
    argv,
    {
      config: { type: 'string', short: 'c', multiple: true },
      book: { type: 'string' },
      at: { type: 'string' },
      venue: { type: 'string' },
      stream: { type: 'string' },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) {
    stdout(USAGE);
    return 0;
  }
  const files = values.config ?? [];
  if (files.length === 0) throw new UsageError('replay needs at least one --config FILE', USAGE);
  if (values.book === undefined || values.book === '') throw new UsageError('replay needs --book SYMBOL', USAGE);
  const at = values.at === undefined ? now : parseTimeArg(values.at, now);
  if (at === null) throw new UsageError(`--at: not a time: ${JSON.stringify(values.at)}`, USAGE);
  const limit = values.limit === undefined ? Number.POSITIVE_INFINITY : Number(values.limit);
  if (!(limit > 0)) throw new UsageError('--limit: a positive number of levels', USAGE);
  const config = loadConfig({ files, env: io.env ?? process.env });
  const feed = values.venue === undefined ? config.feeds[0]! : config.feeds.find((f) => f.venue === values.venue);
  if (feed === undefined) throw new UsageError(`--venue: no feed ${values.venue}`, USAGE);
  const venue = getVenue(feed.venue)!;
  const symbol = values.book.toUpperCase();
  const lower = symbol.toLowerCase();
  const stream = values.stream ?? (feed.streams.includes('depth@100ms') || !feed.streams.includes('depth') ? `${lower}@depth@100ms` : `${lower}@depth`);
  const r = await replayBook({ recorderDir: feed.recorder.dir, venue: venue.name, stream, at, futures: venue.name !== 'binance-spot' });
  stdout(`${JSON.stringify({ venue: venue.name, symbol, ...r, bids: r.bids.slice(0, limit), asks: r.asks.slice(0, limit) })}\n`);
  return r.synced ? 0 : 1;
}
