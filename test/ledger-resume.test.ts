import { appendFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { systemClock, type Clock } from '../src/clock.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { GapLedger } from '../src/ledger/ledger.js';
import { MaintenanceCalendar } from '../src/ledger/maintenance.js';
import { missedBetween, readKeys } from '../src/ledger/missed.js';
import { Checkpointer, recoverLastSeen, venueKeyOf, type Recovered } from '../src/ledger/recovery.js';
import { readLedger } from '../src/ledger/report.js';
import { resumeGaps } from '../src/ledger/resume.js';
import { binanceSpot } from '../src/venues/binance/spot.js';

const T0 = Date.parse('2026-03-02T10:15:00Z');

function ledgerAt(t: { teardown(fn: () => unknown): void }, path: string, now: number) {
  const metrics = createMetrics({ defaultMetrics: false });
  const clock: Clock = { ...systemClock, now: () => now };
  const calendar = new MaintenanceCalendar({ windows: [], logger: silentLogger(), metrics, clock });
  const ledger = new GapLedger({ path, logger: silentLogger(), metrics, calendar, clock });
  t.teardown(() => ledger.close());
  t.teardown(() => calendar.close());
  return ledger;
}

function recovered(streams: Record<string, number>, over: Partial<Recovered> = {}): Recovered {
  return {
    streams: new Map(Object.entries(streams).map(([s, key]) => [s, { key, recv: T0 - 1000 }])),
    clean: false,
    stoppedAt: T0,
    exact: true,
    linesScanned: 0,
    ...over,
  };
}

t.test('after a crash: daemon_down for streams the previous run saw; gaps it left open continue', async (t) => {
  const path = join(t.testdir(), 'gaps.ndjson');
  const a = ledgerAt(t, path, T0 - 60_000);
  await a.open();
  const left = a.openGap({ stream: 'ethusdt@trade', connection: 'c7', start: T0 - 60_000, cause: 'network_error' });
  await a.close();

  const b = ledgerAt(t, path, T0 + 30_000);
  await b.open();
  const r = resumeGaps({
    ledger: b,
    recovered: recovered({ 'btcusdt@trade': 100, 'ethusdt@trade': 50, 'btcusdt@bookTicker': 999, 'gone@trade': 1 }),
    streams: ['btcusdt@trade', 'ethusdt@trade', 'btcusdt@bookTicker', 'new@trade'],
    now: T0 + 30_000,
  });
  t.same([...r.keys()].sort(), ['btcusdt@bookTicker', 'btcusdt@trade', 'ethusdt@trade']);
  t.same(r.get('ethusdt@trade'), { id: left, stream: 'ethusdt@trade', cause: 'network_error', lastKey: 50 }, 'one period without data, one entry');
  t.equal(r.get('btcusdt@trade')!.cause, 'daemon_down');
  t.equal(r.get('btcusdt@trade')!.lastKey, 100);
  const open = b.openGaps();
  const bt = open.find((e) => e.stream === 'btcusdt@trade')!;
  t.equal(bt.start, T0, 'from the last sign of life');
  t.equal(bt.connection, null);
  t.notOk(open.some((e) => e.stream === 'new@trade' || e.stream === 'gone@trade'), 'nothing for a new or unsubscribed stream');
});

t.test('after a clean stop: the shutdown gaps continue; a gap on an unsubscribed stream is closed', async (t) => {
  const path = join(t.testdir(), 'gaps.ndjson');
  const a = ledgerAt(t, path, T0);
  await a.open();
  const s1 = a.openGap({ stream: 'btcusdt@trade', connection: 'c1', start: T0, cause: 'shutdown' });
  const s2 = a.openGap({ stream: 'dropped@trade', connection: 'c1', start: T0, cause: 'shutdown' });
  await a.close();

  const b = ledgerAt(t, path, T0 + 600_000);
  await b.open();
  const r = resumeGaps({
    ledger: b,
    recovered: recovered({ 'btcusdt@trade': 100, 'dropped@trade': 5, 'ethusdt@trade': 7 }, { clean: true }),
    streams: ['btcusdt@trade', 'ethusdt@trade'],
    now: T0 + 600_000,
  });
  t.equal(r.get('btcusdt@trade')!.id, s1);
  t.equal(r.get('ethusdt@trade')!.cause, 'shutdown', 'a clean stop whose entry is missing');
  const all = await readLedger(path);
  const d = all.find((e) => e.id === s2)!;
  t.equal(d.end, T0);
  t.match(d.detail, /no longer subscribed/);
});

t.test('end to end: crash, restart, first message closes daemon_down with the exact missed range', async (t) => {
  const dir = t.testdir();
  const recDir = join(dir, 'rec');
  const statePath = join(dir, 'cp.json');
  const ledgerPath = join(dir, 'gaps.ndjson');
  const file = join(recDir, 'binance-spot', '2026-03-02', 'binance-spot-2026-03-02T10.ndjson');
  mkdirSync(dirname(file), { recursive: true });
  const line = (recv: number, stream: string, data: string) => appendFileSync(file, `{"recv":${recv},"stream":"${stream}","data":${data}}\n`);

  // Run 1: checkpoint after trade 100 and depth u=5000, then more recorded, then killed.
  line(T0 - 5000, 'btcusdt@trade', '{"e":"trade","t":100}');
  line(T0 - 5000, 'btcusdt@depth@100ms', '{"e":"depthUpdate","U":4990,"u":5000}');
  const { size } = statSync(file);
  await new Checkpointer({ statePath }).save({
    savedAt: T0 - 4000,
    recording: { file, offset: size },
    streams: { 'btcusdt@trade': { key: 100, recv: T0 - 5000 }, 'btcusdt@depth@100ms': { key: 5000, recv: T0 - 5000 } },
    clean: false,
  });
  line(T0 - 2000, 'btcusdt@trade', '{"e":"trade","t":101}');
  line(T0 - 1000, 'btcusdt@trade', '{"e":"trade","t":102}');
  line(T0 - 1000, 'btcusdt@depth@100ms', '{"e":"depthUpdate","U":5001,"u":5010}');

  // Run 2.
  const now = T0 + 120_000;
  const ledger = ledgerAt(t, ledgerPath, now);
  await ledger.open();
  const rec = await recoverLastSeen({ statePath, recorderDir: recDir, venue: 'binance-spot', keyOf: venueKeyOf(binanceSpot) });
  const resumed = resumeGaps({ ledger, recovered: rec, streams: ['btcusdt@trade', 'btcusdt@depth@100ms'], now });

  // The router, on each stream's first message of run 2:
  const first = {
    'btcusdt@trade': { recv: now + 500, data: { e: 'trade', t: 250 } },
    'btcusdt@depth@100ms': { recv: now + 600, data: { e: 'depthUpdate', U: 7001, u: 7003 } },
  };
  for (const [stream, m] of Object.entries(first)) {
    const g = resumed.get(stream)!;
    const type = binanceSpot.streamType(binanceSpot.typeOf(stream))!;
    ledger.closeGap(g.id, { end: m.recv, missed: missedBetween(type.sequence, g.lastKey, readKeys(type, JSON.stringify(m.data))) });
  }
  await ledger.flush();

  const all = await readLedger(ledgerPath);
  t.equal(all.length, 2);
  const trade = all.find((e) => e.stream === 'btcusdt@trade')!;
  t.equal(trade.cause, 'daemon_down');
  t.equal(trade.start, T0 - 1000, 'from the last line recorded');
  t.equal(trade.end, now + 500);
  t.same(trade.missed, { field: 't', from: 103, to: 249, count: 147 }, 'exact: not from the checkpoint (101), from the recording (103)');
  const depth = all.find((e) => e.stream === 'btcusdt@depth@100ms')!;
  t.same(depth.missed, { field: 'U/u', from: 5011, to: 7000, count: null });
});
