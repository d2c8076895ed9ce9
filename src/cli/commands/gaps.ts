import { systemClock } from '../../clock.js';
import { loadConfig } from '../../config/load.js';
import { formatReport, gapsAnswer } from '../../ledger/report.js';
import { parseCommandArgs, UsageError } from '../args.js';

export const USAGE = `Usage: feedkeeper gaps --config FILE [--config FILE ...] [--since T] [--until T] [--stream S] [--json]

Report the gap ledger (ledger.path in the config): totals per cause, per stream and per
maintenance window (gaps, seconds, messages missed), then the gaps themselves.
Reads the file only: works while the daemon runs.

Options:
  -c, --config FILE  JSON config file (repeatable, at least one)
      --since T      leave out gaps that ended before T
      --until T      leave out gaps that started after T
      --stream S     one stream (btcusdt@trade) or a pattern with * (btcusdt@*, *@depth@100ms)
      --json         print the summary as JSON (the same as GET /gaps on the metrics server)
  -h, --help         show this help

T is an ISO 8601 time (2026-07-09T07:00:00Z, 2026-07-09), epoch milliseconds, now, or a
duration before now: 90s, 30m, 24h, 7d.
`;

/** Where the command writes; tests pass their own. */
export interface GapsIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
  now?: number;
}

/** `feedkeeper gaps ...`: argv is what follows `gaps`. Usage and config errors throw (exit 2, via main). */
export async function run(argv: string[], io: GapsIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const now = io.now ?? systemClock.now();
  const { values } = parseCommandArgs(
    argv,
    {
      config: { type: 'string', short: 'c', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      stream: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) {
    stdout(USAGE);
    return 0;
  }
  const files = values.config ?? [];
  if (files.length === 0) throw new UsageError('gaps needs at least one --config FILE', USAGE);
  const config = loadConfig({ files, env: io.env ?? process.env });

  const answer = await gapsAnswer(config.ledger.path, { since: values.since, until: values.until, stream: values.stream }, now);
  if (answer.status === 400) throw new UsageError(answer.body.error, USAGE);
  if (answer.status !== 200) {
    stderr(`feedkeeper: ${answer.body.error}\n`);
    return 1;
  }
  stdout(values.json ? `${JSON.stringify(answer.body, null, 2)}\n` : formatReport(answer.body));
  return 0;
}
