import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { plan, type Plan } from '../plan/planner.js';
import { resolveUniverses } from '../universe/resolve.js';
import { getVenue } from '../venues/index.js';

/**
 * Config and plan, in that order, before anything else happens: a bad key (ConfigError) or a plan
 * over the connection-attempt budget (PlanOverBudgetError) ends the command before any socket opens.
 * A universe (`symbols: {"from": "exchangeInfo"}`) is resolved in between: one REST call per such
 * feed, or the list the last run saved (src/universe/resolve.ts).
 */
export async function loadAndPlan(files: string[], logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config; plan: Plan; plans: Plan[] }> {
  const config = await resolveUniverses(loadConfig({ files, env }), { logger });
  // Every feed's plan, in order: the first one over its budget ends the command.
  const plans = config.feeds.map((feed) => plan(feed, getVenue(feed.venue)!));
  return { config, plan: plans[0]!, plans };
}
