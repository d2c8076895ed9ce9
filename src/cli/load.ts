import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { plan, type Plan } from '../plan/planner.js';
import { getVenue } from '../venues/index.js';

/**
 * Config and plan, in that order, before anything else happens: a bad key (ConfigError) or a plan
 * over the connection-attempt budget (PlanOverBudgetError) ends the command before any socket opens.
 */
export function loadAndPlan(files: string[], env: NodeJS.ProcessEnv = process.env): { config: Config; plan: Plan; plans: Plan[] } {
  const config = loadConfig({ files, env });
  // Every feed's plan, in order: the first one over its budget ends the command.
  const plans = config.feeds.map((feed) => plan(feed, getVenue(feed.venue)!));
  return { config, plan: plans[0]!, plans };
}
