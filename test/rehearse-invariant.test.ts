import t from 'tap';
import type { GapEntry, Missed } from '../src/ledger/types.js';
import { checkInvariant, formatInvariant, type RecordedMessage } from '../src/rehearse/invariant.js';

// The checker must be right before any integration test can lean on it: each fault it exists to
// catch, built by hand.

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function trades(stream: string, ids: number[]): RecordedMessage[] {
  return ids.map((id) => ({ recv: 0, stream, data: { e: 'trade', t: id } }));
}

let n = 0;
function gap(stream: string, missed: Missed | null, cause: GapEntry['cause'] = 'server_close'): GapEntry {
  return { id: `g${n++}`, venue: 'binance-spot', stream, connection: 'c0', start: 0, end: 1, durationMs: 1, cause, code: null, detail: null, maintenance: null, missed };
}
const tMissed = (from: number, to: number): Missed => ({ field: 't', from, to, count: to - from + 1 });

const S = 'btcusdt@trade';
const sent = new Map([[S, range(100, 119)]]);

t.test('holds: recorded + missed tile what was sent', async (t) => {
  const r = checkInvariant({
    venue: 'binance-spot',
    recording: trades(S, [...range(100, 104), ...range(110, 115)]),
    ledger: [gap(S, tMissed(105, 109)), gap(S, { field: 't', from: 116, to: 115, count: 0 }), gap(S, null, 'shutdown')],
    sent,
  });
  t.ok(r.ok);
  t.match(r.streams[0], { stream: S, field: 't', from: 100, to: 115, sent: 16, recorded: 11, missed: 5, gaps: 1, discrepancies: [] });
  t.match(formatInvariant(r), /HOLDS/);
});

t.test('each fault is found and located', async (t) => {
  const cases: Array<[string, RecordedMessage[], GapEntry[], object]> = [
    ['lost without an entry', trades(S, [...range(100, 104), ...range(110, 115)]), [], { kind: 'lost', from: 105, to: 109, events: 5 }],
    ['recorded twice', trades(S, [...range(100, 105), 105, ...range(106, 110)]), [], { kind: 'recorded_twice', from: 105, to: 105 }],
    ['recorded and missed', trades(S, range(100, 110)), [gap(S, tMissed(104, 106))], { kind: 'recorded_and_missed', from: 104, to: 106, events: 3 }],
    ['in two missed ranges', trades(S, [...range(100, 103), ...range(110, 112)]), [gap(S, tMissed(104, 109)), gap(S, tMissed(106, 109))], { kind: 'missed_twice', from: 106, to: 109 }],
    ['a missed range past what was sent', trades(S, range(100, 119)), [gap(S, tMissed(120, 125))], { kind: 'not_sent', from: 120, to: 125 }],
    ['a recorded ID never sent', trades(S, [...range(100, 110), 5000]), [], { kind: 'not_sent', from: 5000 }],
    ['nothing recorded', [], [], { kind: 'nothing_recorded', events: 20 }],
  ];
  for (const [name, recording, ledger, want] of cases) {
    const r = checkInvariant({ venue: 'binance-spot', recording, ledger, sent });
    t.notOk(r.ok, `${name}: fails`);
    t.match(r.streams[0]!.discrepancies, [want], name);
  }
  const r = checkInvariant({ venue: 'binance-spot', recording: trades(S, range(100, 104)), ledger: [], sent: new Map([[S, [100, 101, 102, 103, 104, 106]]]) });
  t.ok(r.ok, 'the interval ends at the last recorded ID: later sends are not held against the run');
  t.match(formatInvariant(checkInvariant({ venue: 'binance-spot', recording: trades(S, range(100, 104)), ledger: [gap(S, tMissed(107, 108))], sent })), /FAILS on 1 stream\(s\)[\s\S]*105\.\.106: 2 event\(s\) lost without a ledger entry/);
});

t.test('diff depth: events cover (previous u, u]; missed ranges must fall on event boundaries', async (t) => {
  const D = 'btcusdt@depth@100ms';
  // Events: [10;12] [13;13] [14;20] [21;22] [23;30] [31;31]
  const us = [12, 13, 20, 22, 30, 31];
  const U = [10, 13, 14, 21, 23, 31];
  const ev = (i: number): RecordedMessage => ({ recv: 0, stream: D, data: { e: 'depthUpdate', U: U[i], u: us[i] } });
  const depthGap = (from: number, to: number): GapEntry => gap(D, { field: 'U/u', from, to, count: null });
  const depthSent = new Map([[D, us]]);
  const check = (recorded: number[], ledger: GapEntry[]) => checkInvariant({ venue: 'binance-spot', recording: recorded.map(ev), ledger, sent: depthSent }).streams[0]!;

  t.match(check([0, 1, 4, 5], [depthGap(14, 22)]), { ok: true, from: 10, to: 31, sent: 6, recorded: 4, missed: 2 }, 'two whole events missed');
  t.match(check([0, 1, 4, 5], [depthGap(15, 22)]), { ok: false, discrepancies: [{ kind: 'misaligned', from: 15, to: 22 }] }, 'a range starting inside an event');
  t.match(check([0, 1, 4, 5], [depthGap(14, 21)]), { ok: false, discrepancies: [{ kind: 'misaligned' }] }, 'a range ending inside an event');
  t.match(check([0, 1, 4, 5], []), { ok: false, discrepancies: [{ kind: 'lost', from: 14, to: 22, events: 2 }] }, 'lost events reported as update IDs');
  t.match(check([0, 1, 2, 4, 5], [depthGap(21, 22)]), { ok: true }, 'one event missed');
  const bad = checkInvariant({
    venue: 'binance-spot',
    recording: [ev(0), ev(1), { recv: 0, stream: D, data: { U: 15, u: 20 } }],
    ledger: [],
    sent: depthSent,
  }).streams[0]!;
  t.match(bad.discrepancies, [{ kind: 'misaligned', from: 15, to: 20 }], "a recorded event whose U does not follow the previous event's u");
});

t.test('aggTrade is checked on a; bookTicker and other unsequenced streams are not checked', async (t) => {
  const A = 'ethusdt@aggTrade';
  const r = checkInvariant({
    venue: 'binance-spot',
    recording: [
      ...range(1, 5).map((a) => ({ recv: 0, stream: A, data: { e: 'aggTrade', a } })),
      { recv: 0, stream: 'ethusdt@bookTicker', data: { u: 1 } },
      { recv: 0, stream: 'ethusdt@bookTicker', data: { u: 90 } },
    ],
    ledger: [],
    sent: new Map([
      [A, range(1, 5)],
      ['ethusdt@bookTicker', [1, 90]],
    ]),
  });
  t.ok(r.ok);
  t.same(
    r.streams.map((s) => [s.stream, s.field]),
    [[A, 'a']],
  );
});
