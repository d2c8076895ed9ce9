import type { Config } from './config/types.js';
import type { Logger } from './log.js';

export interface DaemonOptions {
  logger: Logger;
  /** The config files it was started with, for the log line at start. */
  configFiles: string[];
}

/**
 * Runs the daemon until SIGTERM/SIGINT; returns the process exit code. (Being written: the core
 * issue's supervisor. This signature is the contract the CLI codes against.)
 */
export async function runDaemon(config: Config, opts: DaemonOptions): Promise<number> {
  opts.logger.info({ venue: config.venue }, 'daemon not yet implemented');
  return 1;
}
