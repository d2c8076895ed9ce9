import { ErrorCodes, FeedkeeperError } from '../errors.js';
import { UsageError } from './args.js';

/**
 * Turn an error that reached the top of a command into one clear stderr line and an exit code:
 * 2 for what the user must fix (usage, config, an over-budget plan), 1 for anything else.
 * Matches on `code`, never on message text.
 */
export function reportError(err: unknown, write: (text: string) => void = (t) => process.stderr.write(t)): number {
  if (err instanceof UsageError) {
    write(`feedkeeper: ${err.message}\n\n${err.usage}`);
    return 2;
  }
  if (err instanceof FeedkeeperError) {
    switch (err.code) {
      case ErrorCodes.FK_ERR_CONFIG:
        write(`feedkeeper: config error: ${err.message}\n`);
        return 2;
      case ErrorCodes.FK_ERR_PLAN_OVER_BUDGET:
        write(`feedkeeper: plan error: ${err.message}\n`);
        return 2;
      default:
        write(`feedkeeper: ${err.code}: ${err.message}\n`);
        return 1;
    }
  }
  write(`feedkeeper: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
