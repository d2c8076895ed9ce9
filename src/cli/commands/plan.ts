import { formatPlan, planToJSON } from '../../plan/report.js';
import { parseCommandArgs, UsageError } from '../args.js';
import { createLogger } from '../../log.js';
import { loadAndPlan } from '../load.js';

export const USAGE = `Usage: feedkeeper plan --config FILE [--config FILE ...] [--json]

Show how the configured symbols and streams split into connections, and the share
of each of the venue's limits the plan uses; with feeds, one plan per venue.
Opens no WebSocket; a universe (symbols from exchangeInfo) is fetched once.

Options:
  -c, --config FILE  JSON config file (repeatable, at least one)
      --json         print the plan as JSON
  -h, --help         show this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    {
      config: { type: 'string', short: 'c', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const files = values.config ?? [];
  if (files.length === 0) throw new UsageError('plan needs at least one --config FILE', USAGE);

  // A universe is fetched (one REST call per feed); warnings (a saved universe used) go to stderr.
  const { plans } = await loadAndPlan(files, createLogger('warn', process.stderr));
  // One feed prints as it always did; several as {feeds: [...]}, one plan per venue.
  const json = plans.length === 1 ? planToJSON(plans[0]!) : { feeds: plans.map(planToJSON) };
  process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : plans.map(formatPlan).join('\n'));
  return 0;
}
