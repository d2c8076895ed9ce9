import t from 'tap';
import { rehearse, formatRehearsal } from '../src/rehearse/rehearse.js';

// The other rehearsals, in-process (test/rehearse.test.ts runs maintenance and crash through the
// built CLI): each passes (invariant and checks) well within the 60 s a rehearsal may take.

for (const name of ['rotation', 'server-shutdown', 'stall']) {
  t.test(`rehearse ${name}`, async (t) => {
    const r = await rehearse(name);
    t.ok(r.ok, formatRehearsal(r));
    t.ok(r.invariant.ok && r.invariant.streams.length === 30, 'the invariant holds on 30 streams');
    t.ok(r.durationMs < 60_000, `${r.durationMs} ms`);
    t.match(formatRehearsal(r), /Gap ledger report/);
  });
}

t.test('an unknown scenario is refused', async (t) => {
  await t.rejects(rehearse('meteor'), RangeError);
});
