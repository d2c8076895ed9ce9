import t from 'tap';
import type { InstantGapInput } from '../src/ledger/ledger.js';
import type { Recovered } from '../src/ledger/recovery.js';
import { reconcileWithLedger } from '../src/ledger/resume.js';
import type { Missed } from '../src/ledger/types.js';

// After a crash the ledger (written at once) can run ahead of the recording (written up to a flush
// later): ranges it reports may lie past the last recorded ID, with unrecorded IDs before them.
// reconcileWithLedger() reports those once and moves the stream past what the ledger has.

function setup(ranges: Record<string, Missed[]>, keys: Record<string, number>) {
  const written: InstantGapInput[] = [];
  const recovered: Recovered = {
    streams: new Map(Object.entries(keys).map(([s, key]) => [s, { key, recv: 1000 }])),
    clean: false,
    stoppedAt: 5000,
    exact: true,
    linesScanned: 0,
  };
  const ledger = {
    missedAfter: (stream: string, key: number) => (ranges[stream] ?? []).filter((m) => m.from > key),
    instant: (e: InstantGapInput) => {
      written.push(e);
      return `id${written.length}`;
    },
  };
  const n = reconcileWithLedger({ ledger, recovered, at: 5000 });
  return { n, written, key: (s: string) => recovered.streams.get(s)!.key };
}

const t_ = (from: number, to: number): Missed => ({ field: 't', from, to, count: to - from + 1 });

t.test('IDs received before a reported range but not recorded: one daemon_down entry; the stream continues after the range', async (t) => {
  // Recorded up to 100; 101-102 received, then 103-107 skipped (sequence gap written), 108 received; crash.
  const { n, written, key } = setup({ 'a@trade': [t_(50, 60), t_(103, 107)] }, { 'a@trade': 100 });
  t.equal(n, 1);
  t.match(written, [{ stream: 'a@trade', connection: null, at: 5000, cause: 'daemon_down', missed: { field: 't', from: 101, to: 102, count: 2 } }]);
  t.equal(key('a@trade'), 107, 'the next gap starts at 108');
});

t.test('a range right after the last recorded ID: nothing to add, the stream moves past it', async (t) => {
  const { n, key } = setup({ 'a@trade': [t_(101, 105)] }, { 'a@trade': 100 });
  t.equal(n, 0);
  t.equal(key('a@trade'), 105);
});

t.test('several ranges, depth update IDs (count null), streams without ranges untouched', async (t) => {
  const d = (from: number, to: number): Missed => ({ field: 'U/u', from, to, count: null });
  const { written, key } = setup({ 'a@depth@100ms': [d(210, 230), d(241, 250)], 'b@trade': [t_(1, 5)] }, { 'a@depth@100ms': 200, 'b@trade': 9, 'c@trade': 7 });
  t.same(
    written.map((e) => e.missed),
    [
      { field: 'U/u', from: 201, to: 209, count: null },
      { field: 'U/u', from: 231, to: 240, count: null },
    ],
  );
  t.equal(key('a@depth@100ms'), 250);
  t.equal(key('b@trade'), 9, 'a range before the last recorded ID changes nothing');
  t.equal(key('c@trade'), 7);
});
