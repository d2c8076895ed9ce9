import t from 'tap';
import { formatRehearsal, rehearse } from '../src/rehearse/rehearse.js';
import { getScenario } from '../src/rehearse/scenarios.js';

// `feedkeeper rehearse --venue gate-spot|coinbase`: the scenarios against the Gate.io and Coinbase
// dialects, each checking the venue's invariant (recorded + missed = sent) where its IDs allow one.

// One scenario per venue and fault kind; SIGKILL and restart of Coinbase is venues-crash-gate-coinbase's.
const cases: Array<[scenario: string, venue: string]> = [
  ['crash', 'gate-spot'],
  ['stall', 'gate-spot'],
  ['stall', 'coinbase'],
];

for (const [scenario, venue] of cases) {
  t.test(`rehearse ${scenario} --venue ${venue}`, async (t) => {
    const r = await rehearse(scenario, { venue });
    t.ok(r.ok, formatRehearsal(r));
    t.ok(r.checks.every((c) => c.ok), r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; '));
    t.ok(Object.keys(r.summary.totals.byVenue).every((v) => v === venue), "every gap is the venue's");
  });
}

t.test('gate-spot and coinbase announce no restart: server-shutdown is refused, naming why', async (t) => {
  t.match(getScenario('server-shutdown')!.unavailable?.('gate-spot'), /announces no restart/);
  t.match(getScenario('server-shutdown')!.unavailable?.('coinbase'), /announces no restart/);
});
