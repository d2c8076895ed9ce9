import t from 'tap';
import { formatRehearsal, rehearse } from '../src/rehearse/rehearse.js';
import { getScenario } from '../src/rehearse/scenarios.js';

// `feedkeeper rehearse --venue V`: the same scenarios against each venue's simulator dialect, in
// this process. Each checks the venue's own invariant (recorded + missed = sent) and expectations.

const cases: Array<[scenario: string, venue: string]> = [
  ['maintenance', 'okx'],
  ['server-shutdown', 'okx'],
  ['stall', 'bybit-spot'],
  ['rotation', 'bybit-linear'],
  ['maintenance', 'binance-coinm'],
];

for (const [scenario, venue] of cases) {
  t.test(`rehearse ${scenario} --venue ${venue}`, async (t) => {
    const r = await rehearse(scenario, { venue });
    t.ok(r.ok, formatRehearsal(r));
    t.equal(r.venue, venue);
    t.ok(r.checks.every((c) => c.ok), r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; '));
    if (venue !== 'bybit-spot' && venue !== 'bybit-linear') t.ok(r.invariant.streams.length > 0, `${r.invariant.streams.length} sequenced streams checked`);
    t.ok(Object.keys(r.summary.totals.byVenue).every((v) => v === venue), 'every gap is the venue\'s');
  });
}

t.test('a scenario a venue cannot play is refused, naming why', async (t) => {
  t.match(getScenario('server-shutdown')!.unavailable?.('bybit-spot'), /announces no restart/);
  await t.rejects(rehearse('server-shutdown', { venue: 'bybit-spot' }), /announces no restart/);
});
