import { runDaemon } from '../../daemon.js';
import { createLogger } from '../../log.js';
import { parseCommandArgs, UsageError } from '../args.js';
import { loadConfig } from '../../config/load.js';
import { loadAndPlan } from '../load.js';

export const USAGE = `Usage: feedkeeper run --config FILE [--config FILE ...]

Connect to the configured streams, record every message and keep the gap ledger,
until SIGTERM or SIGINT. Config files apply in order (a later one wins), then the
FEEDKEEPER_* environment variables (docs/configuration.md).

Options:
  -c, --config FILE  JSON config file (repeatable, at least one)
  -h, --help         show this help
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    { config: { type: 'string', short: 'c', multiple: true }, help: { type: 'boolean', short: 'h' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const configFiles = values.config ?? [];
  if (configFiles.length === 0) throw new UsageError('run needs at least one --config FILE', USAGE);

  // Throws (exit 2) before the metrics port or any connection exists. The config is read once
  // before the logger exists (its level is in it); a universe is resolved with the logger.
  const logger = createLogger(loadConfig({ files: configFiles }).log.level);
  const { config } = await loadAndPlan(configFiles, logger);
  return runDaemon(config, { logger, configFiles });
}
