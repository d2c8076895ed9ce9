import { systemClock } from '../../clock.js';
import { loadConfig } from '../../config/load.js';
import { GapLedger } from '../../ledger/ledger.js';
import { parseTimeArg } from '../../ledger/report.js';
import { createLogger, silentLogger } from '../../log.js';
import { createMetrics, venueMetrics } from '../../metrics/registry.js';
import { Recorder } from '../../recorder/recorder.js';
import { Backfiller, type BackfillProgress } from '../../recovery/backfill.js';
import { getVenue } from '../../venues/index.js';
import { parseCommandArgs, UsageError } from '../args.js';

export const USAGE = `Usage: feedkeeper backfill --config FILE [--config FILE ...] [--since T] [--stream S]

Work through the gap ledger's missed trade and aggTrade ranges that are not recovered yet:
fetch each over REST (aggTrades / historicalTrades from its first ID, paced within
backfill.maxWeightPerMinute), write the messages to the recording ("src":"rest" lines), and
mark the gap recovered in the ledger. Offline: run it while the daemon is stopped (a running
daemon with backfill.enabled does the same by itself). A progress line on a terminal; one JSON
line per range otherwise.

Options:
  -c, --config FILE  JSON config file (repeatable, at least one)
      --since T      only gaps that ended at or after T (default: every unrecovered range)
      --stream S     one stream (btcusdt@trade) or a pattern with * (*@aggTrade)
  -h, --help         show this help

T is an ISO 8601 time (2026-07-09T07:00:00Z, 2026-07-09), epoch milliseconds, now, or a
duration before now: 90s, 30m, 24h, 7d.

Exit codes: 0 every range done (complete, or partly where the exchange no longer serves the
rest); 1 a range could not be fetched (requests kept failing); 2 bad command line or config.
`;

export interface BackfillIo {
  stdout?: (text: string) => void;
  isTTY?: boolean;
  env?: NodeJS.ProcessEnv;
  now?: number;
}

function matcher(pattern: string | undefined): ((s: string) => boolean) | undefined {
  if (pattern === undefined || pattern === '') return undefined;
  if (!pattern.includes('*')) return (s) => s === pattern;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (s) => re.test(s);
}

/** `feedkeeper backfill ...`. Usage and config errors throw (exit 2, via main). */
export async function run(argv: string[], io: BackfillIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const tty = io.isTTY ?? process.stdout.isTTY === true;
  const now = io.now ?? systemClock.now();
  const { values } = parseCommandArgs(
    argv,
    {
      config: { type: 'string', short: 'c', multiple: true },
      since: { type: 'string' },
      stream: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) {
    stdout(USAGE);
    return 0;
  }
  const files = values.config ?? [];
  if (files.length === 0) throw new UsageError('backfill needs at least one --config FILE', USAGE);
  let since = Number.NEGATIVE_INFINITY;
  if (values.since !== undefined) {
    const t = parseTimeArg(values.since, now);
    if (t === null) throw new UsageError(`--since: not a time: ${JSON.stringify(values.since)}`, USAGE);
    since = t;
  }
  const config = loadConfig({ files, env: io.env ?? process.env });
  const logger = tty ? silentLogger() : createLogger('warn', process.stderr);
  const metrics = createMetrics({ defaultMetrics: false });
  const ledger = new GapLedger({ path: config.ledger.path, venue: config.feeds[0]!.venue, logger, metrics, calendar: { reasonFor: () => null } });
  await ledger.open();
  let ranges = 0;
  let recovered = 0;
  let partial = 0;
  let failed = 0;
  const show = (venue: string, p: BackfillProgress): void => {
    if (tty) {
      const line = `backfill ${venue} ${p.stream} ${p.written}/${p.to - p.from + 1} (${p.queued} more ranges queued)`;
      stdout(`\r\x1b[K${line}${p.done ? '\n' : ''}`);
    } else if (p.done && p.recovered !== undefined) {
      stdout(`${JSON.stringify({ venue, stream: p.stream, gap: p.gapId, from: p.from, to: p.to, recovered: p.recovered.count, complete: p.recovered.complete, remaining: p.recovered.remaining })}\n`);
    }
    if (p.done && p.recovered !== undefined) {
      ranges++;
      recovered += p.recovered.count;
      if (!p.recovered.complete) partial++;
    }
  };
  try {
    for (const feed of config.feeds) {
      const venue = getVenue(feed.venue)!;
      const m = venueMetrics(metrics, venue.name);
      const recorder = new Recorder({ dir: feed.recorder.dir, venue: venue.name, maxBufferBytes: feed.recorder.maxBufferBytes, flushIntervalMs: feed.recorder.flushIntervalMs, fsyncIntervalMs: feed.recorder.fsyncIntervalMs, rotateEveryMs: feed.recorder.rotateEveryMs, logger, metrics: m });
      await recorder.open();
      const backfiller = new Backfiller({
        venue,
        settings: { ...feed.backfill, enabled: true },
        restBaseUrl: feed.endpoints.rest,
        ledger,
        ledgerPath: feed.ledger.path,
        recorder,
        recorderDir: feed.recorder.dir,
        logger,
        metrics: m,
        maxFailures: 5,
        onProgress: (p) => show(venue.name, p),
      });
      try {
        await backfiller.start({ since, stream: matcher(values.stream), follow: false });
        await backfiller.idle();
        failed += backfiller.failed;
      } finally {
        await backfiller.stop();
        await recorder.close();
      }
    }
  } finally {
    await ledger.close();
  }
  const summary = { done: true, ranges, recovered, partial, failed };
  stdout(tty ? `${ranges} ranges, ${recovered} messages recovered${partial > 0 ? `, ${partial} partly (the rest is no longer served)` : ''}${failed > 0 ? `, ${failed} failed` : ''}\n` : `${JSON.stringify(summary)}\n`);
  return failed > 0 ? 1 : 0;
}
