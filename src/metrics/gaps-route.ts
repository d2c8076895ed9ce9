import { gapsAnswer } from '../ledger/report.js';
import { systemClock } from '../clock.js';
import { GapsQueryError } from './server.js';

/**
 * The `gaps` handler for startHttpServer, over the ledger file: `GET /gaps?since=&until=&stream=`
 * answers what `feedkeeper gaps --json` prints (docs/gap-ledger.md, "Reports"). A bad time is a 400
 * naming the parameter; an unreadable ledger a 500 (the details go to the log, not the client).
 */
export function ledgerGaps(ledgerPath: string, now: () => number = systemClock.now): (query: URLSearchParams) => Promise<unknown> {
  return async (query) => {
    const answer = await gapsAnswer(ledgerPath, { since: query.get('since'), until: query.get('until'), stream: query.get('stream') }, now());
    if (answer.status === 200) return answer.body;
    if (answer.status === 400) throw new GapsQueryError(answer.body.error);
    throw new Error(answer.body.error);
  };
}
