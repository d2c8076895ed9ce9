import { formatPlan, planToJSON } from '../../plan/report.js';
import { parseCommandArgs, UsageError } from '../args.js';
import { loadAndPlan } from '../load.js';

export const USAGE = `Usage: feedkeeper plan --config FILE [--config FILE ...] [--json]

Show how the configured symbols and streams split into connections, and the share
of each Binance limit the plan uses. Connects to nothing.

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

  const { plan } = loadAndPlan(files);
  process.stdout.write(values.json ? `${JSON.stringify(planToJSON(plan), null, 2)}\n` : formatPlan(plan));
  return 0;
}
