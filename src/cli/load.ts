import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { plan, type Plan } from '../plan/planner.js';
import { getVenue } from '../venues/index.js';

/**
 * Config and plan, in that order, before anything else happens: a bad key (ConfigError) or a plan
 * over the connection-attempt budget (PlanOverBudgetError) ends the command before any socket opens.
 */
export function loadAndPlan(files: string[], env: NodeJS.ProcessEnv = process.env): { config: Config; plan: Plan } {
  const config = loadConfig({ files, env });
  return { config, plan: plan(config, getVenue(config.venue)!) };
}
