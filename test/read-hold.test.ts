import { Clock as TapClock } from '@tapjs/clock';
import t from 'tap';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { ReadHold, type ReadHolder } from '../src/pipeline/read-hold.js';
import { mockClock } from './helpers/clock.js';

// The read hold's state machine (src/pipeline/read-hold.ts) on a mock clock: free → held → free
// when the recorder drains; held → spent when recorder.holdReadsMs runs out, and no new hold until
// the buffer has drained. The recorder and the sessions behind it: test/read-hold-daemon.test.ts.

function rig(maxHoldMs = 1000) {
  const clock = new TapClock();
  const metrics = createMetrics({ defaultMetrics: false });
  const hold = new ReadHold({ venue: 'binance-spot', maxHoldMs, clock: mockClock(clock), logger: silentLogger(), metrics });
  const holder = (): ReadHolder & { calls: boolean[] } => {
    const h = { calls: [] as boolean[], holdReads: (on: boolean) => void h.calls.push(on) };
    return h;
  };
  const seconds = async (end: string) => (await metrics.recorderReadHoldSeconds.get()).values.find((v) => v.labels.end === end)?.value ?? 0;
  const gauge = async () => (await metrics.recorderReadsHeld.get()).values[0]?.value ?? 0;
  const holds = async () => (await metrics.recorderReadHolds.get()).values[0]?.value ?? 0;
  return { clock, hold, holder, seconds, gauge, holds };
}

t.test('a hold pauses every socket until the buffer drains', async (t) => {
  const { clock, hold, holder, seconds, gauge, holds } = rig();
  const a = holder();
  const b = holder();
  hold.join(a);
  hold.join(b);
  t.same(a.calls, [], 'joining while free holds nothing');
  hold.hold(1 << 20);
  t.ok(hold.held);
  t.same([a.calls, b.calls], [[true], [true]], 'both held');
  t.equal(await gauge(), 1);
  hold.hold(1 << 20);
  t.same(a.calls, [true], 'a second hold() while held changes nothing');
  const c = holder();
  hold.join(c);
  t.same(c.calls, [true], 'a socket that joins during a hold is held at once');
  clock.advance(300);
  hold.drained();
  t.notOk(hold.held);
  t.same([a.calls, b.calls, c.calls], [[true, false], [true, false], [true, false]], 'all released');
  t.equal(await gauge(), 0);
  t.equal(await holds(), 1);
  t.equal(await seconds('drained'), 0.3, 'the held time is counted');
  clock.advance(5000);
  t.same(a.calls, [true, false], 'no timer left behind');
});

t.test('a hold that lasts holdReadsMs ends; no new hold until the buffer has drained', async (t) => {
  const { clock, hold, holder, seconds } = rig(1000);
  const a = holder();
  hold.join(a);
  hold.hold(1);
  clock.advance(999);
  t.ok(hold.held, 'still held before holdReadsMs');
  clock.advance(1);
  t.notOk(hold.held, 'released at holdReadsMs');
  t.same(a.calls, [true, false]);
  t.equal(await seconds('max_hold'), 1);
  hold.hold(1);
  t.notOk(hold.held, 'spent: reads go on and the recorder drops when full');
  t.same(a.calls, [true, false]);
  hold.drained();
  hold.hold(1);
  t.ok(hold.held, 'once drained, the next pressure holds again');
  hold.stop();
  t.notOk(hold.held, 'stop() releases');
  t.same(a.calls, [true, false, true, false]);
});

t.test('a released socket that fills the buffer again at once: the new hold keeps the rest held', async (t) => {
  const { hold } = rig();
  const order: string[] = [];
  const refill: ReadHolder = {
    holdReads: (on) => {
      order.push(`refill ${on}`);
      if (!on) hold.hold(1); // what it had held fills the buffer past the mark again
    },
  };
  const other: ReadHolder = { holdReads: (on) => void order.push(`other ${on}`) };
  hold.join(refill);
  hold.join(other);
  hold.hold(1);
  hold.drained();
  t.ok(hold.held, 'held again');
  t.same(order, ['refill true', 'other true', 'refill false', 'refill true', 'other true'], 'other is never released while a hold is on');
});

t.test('holdReadsMs 0 never holds', async (t) => {
  const { hold, holder } = rig(0);
  const a = holder();
  hold.join(a);
  hold.hold(1);
  t.notOk(hold.held);
  t.same(a.calls, []);
});

t.test('a socket that left is not touched', async (t) => {
  const { hold, holder } = rig();
  const a = holder();
  hold.join(a);
  hold.leave(a);
  hold.hold(1);
  t.same(a.calls, []);
});
