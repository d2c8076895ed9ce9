import t from 'tap';
import { formatRehearsal, rehearse } from '../src/rehearse/rehearse.js';
import { getScenario } from '../src/rehearse/scenarios.js';

// `feedkeeper rehearse --venue kucoin-spot|bitget-*`: the scenarios against the KuCoin and Bitget
// dialects, each checking the venue's invariant (recorded + missed = sent). `crash` SIGKILLs the
// daemon (a child process) and restarts it: daemon_down gaps, exact where the IDs allow it.

// One or two scenarios per venue: the rest of each venue's faults are covered by its daemon and
// crash tests (kucoin-daemon, bitget-daemon, venues-crash-kucoin-bitget), which run the same paths
// in a third of the time.
const cases: Array<[scenario: string, venue: string]> = [
  ['crash', 'kucoin-spot'],
  ['stall', 'kucoin-spot'],
  ['crash', 'bitget-spot'],
  ['rotation', 'bitget-usdt-futures'],
];

for (const [scenario, venue] of cases) {
  t.test(`rehearse ${scenario} --venue ${venue}`, async (t) => {
    const r = await rehearse(scenario, { venue });
    t.ok(r.ok, formatRehearsal(r));
    t.ok(r.checks.every((c) => c.ok), r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join('; '));
    t.ok(r.invariant.streams.length > 0, `${r.invariant.streams.length} sequenced streams checked`);
    t.ok(Object.keys(r.summary.totals.byVenue).every((v) => v === venue), "every gap is the venue's");
  });
}

t.test('kucoin-spot and bitget announce no restart: server-shutdown is refused, naming why', async (t) => {
  for (const v of ['kucoin-spot', 'bitget-spot', 'bitget-usdt-futures']) t.match(getScenario('server-shutdown')!.unavailable?.(v), /announces no restart/);
});
