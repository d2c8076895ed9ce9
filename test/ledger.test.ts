import { appendFileSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { systemClock, type Clock } from '../src/clock.js';
import { silentLogger } from '../src/log.js';
import { createMetrics, type Metrics } from '../src/metrics/registry.js';
import { GapLedger, nodeLedgerIo, type LedgerIo } from '../src/ledger/ledger.js';
import { MaintenanceCalendar } from '../src/ledger/maintenance.js';
import { readLedger } from '../src/ledger/report.js';
import type { GapEntry } from '../src/ledger/types.js';

const W_START = Date.parse('2026-07-09T07:00:00Z');
const W_END = Date.parse('2026-07-09T08:00:00Z');
const REASON = 'Binance spot maintenance';

function lines(path: string): GapEntry[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as GapEntry);
}

function clockAt(ms: number): Clock & { set(ms: number): void } {
  let now = ms;
  return { ...systemClock, now: () => now, set: (v: number) => void (now = v) };
}

/** Counts fdatasync calls; can fail writes and syncs on demand. */
function spyIo(): LedgerIo & { syncs: number; failWrites: number; failSyncs: number; partialNext: boolean } {
  const io = {
    syncs: 0,
    failWrites: 0,
    failSyncs: 0,
    partialNext: false,
    open: nodeLedgerIo.open,
    close: nodeLedgerIo.close,
    write(fd: number, data: Buffer): number {
      if (io.partialNext) {
        // Half the line reaches the file, then the disk fills up.
        io.partialNext = false;
        io.failWrites = Math.max(io.failWrites, 1);
        return nodeLedgerIo.write(fd, data.subarray(0, Math.floor(data.length / 2)));
      }
      if (io.failWrites > 0) {
        io.failWrites--;
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return nodeLedgerIo.write(fd, data);
    },
    fdatasync(fd: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
      io.syncs++;
      if (io.failSyncs > 0) {
        io.failSyncs--;
        setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
        return;
      }
      nodeLedgerIo.fdatasync(fd, cb);
    },
  };
  return io;
}

/** The parts of a tap test that setup() needs. */
interface TestLike {
  testdir(): string;
  teardown(fn: () => unknown): void;
}

function setup(
  t: TestLike,
  opts: { now?: number; io?: LedgerIo; dir?: string; retryMs?: number } = {},
): { ledger: GapLedger; path: string; metrics: Metrics; clock: ReturnType<typeof clockAt>; calendar: MaintenanceCalendar } {
  const dir = opts.dir ?? t.testdir();
  const path = join(dir, 'state', 'gaps.ndjson');
  const metrics = createMetrics({ defaultMetrics: false });
  const clock = clockAt(opts.now ?? W_START - 3_600_000);
  const calendar = new MaintenanceCalendar({
    windows: [{ start: '2026-07-09T07:00:00Z', end: '2026-07-09T08:00:00Z', reason: REASON }],
    logger: silentLogger(),
    metrics,
    clock,
  });
  t.teardown(() => calendar.close());
  const ledger = new GapLedger({ path, logger: silentLogger(), metrics, calendar, clock, io: opts.io, retryMs: opts.retryMs });
  t.teardown(() => ledger.close());
  return { ledger, path, metrics, clock, calendar };
}

type Readable = { get(): Promise<{ values: ReadonlyArray<{ value: number; labels: Partial<Record<string, string | number>> }> }> };

async function value(metric: Readable, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const v = values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

t.test('a gap is written when it opens and again, complete, when it closes, with the same id', async (t) => {
  const io = spyIo();
  const { ledger, path } = setup(t, { io });
  await ledger.open();
  const start = W_START - 600_000;
  const id = ledger.openGap({ stream: 'btcusdt@trade', connection: 'c1', start, cause: 'server_close', code: 1006, detail: 'closed by peer' });

  // Written before openGap returned, without awaiting anything.
  let l = lines(path);
  t.equal(l.length, 1);
  t.same(l[0], {
    id,
    venue: null,
    stream: 'btcusdt@trade',
    connection: 'c1',
    start,
    end: null,
    durationMs: null,
    cause: 'server_close',
    code: 1006,
    detail: 'closed by peer',
    maintenance: null,
    missed: null,
  });
  t.same(Object.keys(l[0]!), ['id', 'venue', 'stream', 'connection', 'start', 'end', 'durationMs', 'cause', 'code', 'detail', 'maintenance', 'missed'], 'fixed key order');

  ledger.closeGap(id, { end: start + 4_500, missed: { field: 't', from: 101, to: 120, count: 20 } });
  l = lines(path);
  t.equal(l.length, 2);
  t.equal(l[1]!.id, id, 'same id on the close line');
  t.equal(l[1]!.end, start + 4_500);
  t.equal(l[1]!.durationMs, 4_500);
  t.same(l[1]!.missed, { field: 't', from: 101, to: 120, count: 20 });
  t.equal(l[1]!.detail, 'closed by peer');

  await ledger.flush();
  t.ok(io.syncs >= 1, 'flush() fdatasyncs');
  const merged = await readLedger(path);
  t.equal(merged.length, 1);
  t.equal(merged[0]!.end, start + 4_500);
});

t.test('fdatasync runs in the background within a few ms, batched for a burst', async (t) => {
  const io = spyIo();
  const { ledger, path } = setup(t, { io });
  await ledger.open();
  ledger.openGap({ stream: 'a@trade', connection: 'c1', start: 1, cause: 'stale' });
  t.equal(io.syncs, 0, 'not on the hot path');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(io.syncs, 1, 'synced in the background without flush()');

  // A connection with 1024 streams drops: 1024 gaps open in one tick.
  const before = io.syncs;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 1024; i++) ledger.openGap({ stream: `s${i}@trade`, connection: 'c2', start: 2, cause: 'network_error' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  t.equal(lines(path).length, 1025, 'every line written before the calls returned');
  t.ok(ms < 1000, `1024 openGap calls took ${ms.toFixed(1)} ms`);
  await ledger.flush();
  t.ok(io.syncs - before <= 3, `one or two fdatasyncs for the burst (got ${io.syncs - before})`);
  t.equal(ledger.openGaps().length, 1025);
});

t.test('ids are unique, sortable and keep increasing across a restart with the clock stepped back', async (t) => {
  const dir = t.testdir();
  const a = setup(t, { dir, now: W_START });
  await a.ledger.open();
  const first = [0, 1, 2].map((i) => a.ledger.openGap({ stream: `s${i}@trade`, connection: 'c', start: W_START, cause: 'stale' }));
  t.equal(new Set(first).size, 3);
  t.same([...first].sort(), first, 'sorted in creation order');
  t.match(first[0], /^20260709T070000\.000Z-\d{6}$/);
  await a.ledger.close();

  const b = setup(t, { dir, now: W_START - 3_600_000 }); // NTP stepped the clock back an hour
  await b.ledger.open();
  const later = b.ledger.openGap({ stream: 's9@trade', connection: 'c', start: W_START, cause: 'stale' });
  t.ok(later > first[2]!, `${later} sorts after ${first[2]}`);
  b.clock.set(W_START + 86_400_000);
  const next = b.ledger.openGap({ stream: 's9@trade', connection: 'c', start: W_START, cause: 'stale' });
  t.ok(next > later);
  t.match(next, /^20260710T070000\.000Z-000000$/);
});

t.test('open() keeps the gaps a previous run left open; they can be closed', async (t) => {
  const dir = t.testdir();
  const a = setup(t, { dir });
  await a.ledger.open();
  const keep = a.ledger.openGap({ stream: 'btcusdt@trade', connection: 'c1', start: 1000, cause: 'network_error' });
  const done = a.ledger.openGap({ stream: 'ethusdt@trade', connection: 'c1', start: 1000, cause: 'network_error' });
  a.ledger.closeGap(done, { end: 2000, missed: null });
  await a.ledger.close();

  const b = setup(t, { dir });
  await b.ledger.open();
  t.same(
    b.ledger.previousRunOpen().map((e) => e.id),
    [keep],
  );
  t.same(
    b.ledger.openGaps().map((e) => e.id),
    [keep],
  );
  t.equal(await value(b.metrics.gapsOpen), 1, 'feedkeeper_gaps_open counts it');
  b.ledger.closeGap(keep, { end: 5000, missed: { field: 't', from: 7, to: 9, count: 3 } });
  t.same(b.ledger.previousRunOpen(), []);
  t.equal(await value(b.metrics.gapsOpen), 0);
  const all = await readLedger(b.path);
  t.same(
    all.map((e) => [e.id, e.end]),
    [
      [keep, 5000],
      [done, 2000],
    ],
  );
});

t.test('a torn last line (crash mid-write) is ignored and the next entry starts on a line of its own', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'state', 'gaps.ndjson');
  mkdirSync(join(dir, 'state'));
  const good = {
    id: '20260709T060000.000Z-000000',
    stream: 'btcusdt@trade',
    connection: 'c1',
    start: 1,
    end: null,
    durationMs: null,
    cause: 'stale',
    code: null,
    detail: null,
    maintenance: null,
    missed: null,
  };
  writeFileSync(path, JSON.stringify(good) + '\n');
  appendFileSync(path, '{"id":"20260709T060001.000Z-000000","stream":"ethusdt@tr');
  const { ledger } = setup(t, { dir });
  await ledger.open();
  t.same(
    ledger.previousRunOpen().map((e) => e.id),
    [good.id],
  );
  const id = ledger.openGap({ stream: 'x@trade', connection: 'c2', start: 5, cause: 'stale' });
  const text = readFileSync(path, 'utf8');
  t.match(text, /"stream":"ethusdt@tr\n\{"id":/, 'the torn fragment is ended with a newline');
  const all = await readLedger(path);
  t.same(
    all.map((e) => e.id),
    [good.id, id],
  );
});

t.test('a write failure is counted and logged, never thrown; lines are written later, in order', async (t) => {
  const io = spyIo();
  const { ledger, path, metrics } = setup(t, { io, retryMs: 20 });
  await ledger.open();
  io.failWrites = 2;
  const a = ledger.openGap({ stream: 'a@trade', connection: 'c', start: 1, cause: 'stale' });
  ledger.closeGap(a, { end: 3, missed: null }); // queued behind the failed line: order kept
  t.equal(lines(path).length, 0);
  t.equal(await value(metrics.ledgerWriteErrors), 1);
  await new Promise((r) => setTimeout(r, 100));
  const l = lines(path);
  t.same(
    l.map((e) => [e.id, e.end]),
    [
      [a, null],
      [a, 3],
    ],
  );
  t.equal(await value(metrics.ledgerWriteErrors), 1, 'the line failed twice (first write, first retry) but is counted once');

  // Half a line reaches the file before the error: the retry starts on a fresh line.
  io.partialNext = true;
  const b = ledger.instant({ stream: 'b@trade', connection: 'c', at: 10, cause: 'sequence', missed: { field: 't', from: 5, to: 6, count: 2 } });
  await new Promise((r) => setTimeout(r, 100));
  await ledger.flush();
  const all = await readLedger(path);
  t.same(
    all.map((e) => e.id),
    [a, b],
  );
  t.equal(all[1]!.durationMs, 0);
});

t.test('a failed fdatasync writes the unsynced lines again; readers see the right final state', async (t) => {
  const io = spyIo();
  const { ledger, path, metrics } = setup(t, { io });
  await ledger.open();
  io.failSyncs = 1;
  const a = ledger.openGap({ stream: 'a@trade', connection: 'c', start: 1, cause: 'stale' });
  ledger.closeGap(a, { end: 2, missed: null });
  await ledger.flush();
  t.ok(io.syncs >= 2, 'synced again after the failure');
  t.equal(await value(metrics.ledgerWriteErrors), 2);
  t.equal(lines(path).length, 4, 'open and close lines rewritten, in order');
  const all = await readLedger(path);
  t.equal(all.length, 1);
  t.equal(all[0]!.end, 2, 'the close line is still the last one');
});

t.test('maintenance tag and metrics by cause, counted apart in and out of maintenance', async (t) => {
  const { ledger, path, metrics, clock } = setup(t, { now: W_START + 60_000 });
  await ledger.open();
  // Opened inside the window: tagged at once.
  const inside = ledger.openGap({ stream: 'btcusdt@trade', connection: 'c1', start: W_START + 30_000, cause: 'server_close', code: 1001 });
  t.equal(lines(path)[0]!.maintenance, REASON);
  // Opened before the window, closed inside: overlap tags it on close.
  const before = ledger.openGap({ stream: 'btcusdt@depth@100ms', connection: 'c1', start: W_START - 10_000, cause: 'network_error' });
  t.equal(lines(path)[1]!.maintenance, REASON, 'open gap overlaps the window up to now');
  clock.set(W_END + 10_000);
  ledger.closeGap(inside, { end: W_START + 90_000, missed: { field: 't', from: 1, to: 10, count: 10 } });
  ledger.closeGap(before, { end: W_START + 5_000, missed: { field: 'U/u', from: 50, to: 80, count: null } });
  // Outside any window.
  const out = ledger.openGap({ stream: 'ethusdt@trade', connection: 'c2', start: W_END + 1_000, cause: 'stale' });
  t.equal(lines(path).at(-1)!.maintenance, null);
  ledger.closeGap(out, { end: W_END + 3_000, missed: { field: 't', from: 5, to: 7, count: 3 } });
  ledger.instant({ stream: 'ethusdt@trade', connection: 'c2', at: W_END + 4_000, cause: 'sequence', missed: { field: 't', from: 9, to: 9, count: 1 } });
  ledger.instant({ stream: 'ethusdt@trade', connection: 'c2', at: W_START + 4_000, cause: 'sequence', missed: { field: 't', from: 2, to: 3, count: 2 } });

  t.equal(await value(metrics.gaps, { cause: 'server_close', maintenance: 'true' }), 1);
  t.equal(await value(metrics.gaps, { cause: 'network_error', maintenance: 'true' }), 1);
  t.equal(await value(metrics.gaps, { cause: 'stale', maintenance: 'false' }), 1);
  t.equal(await value(metrics.gaps, { cause: 'sequence', maintenance: 'false' }), 1);
  t.equal(await value(metrics.gaps, { cause: 'sequence', maintenance: 'true' }), 1);
  t.equal(await value(metrics.gapSeconds, { cause: 'server_close', maintenance: 'true' }), 60);
  t.equal(await value(metrics.gapSeconds, { cause: 'network_error', maintenance: 'true' }), 15);
  t.equal(await value(metrics.gapSeconds, { cause: 'stale', maintenance: 'false' }), 2);
  t.equal(await value(metrics.missedMessages, { maintenance: 'true' }), 12, 'depth adds nothing (count null)');
  t.equal(await value(metrics.missedMessages, { maintenance: 'false' }), 4);
  t.equal(await value(metrics.gapsOpen), 0);
});

t.test('closeGap with an unknown or closed id is ignored; a clock stepped back gives no negative duration', async (t) => {
  const { ledger, path } = setup(t);
  await ledger.open();
  t.doesNotThrow(() => ledger.closeGap('nope', { end: 1, missed: null }));
  const id = ledger.openGap({ stream: 'a@trade', connection: 'c', start: 5000, cause: 'stale' });
  ledger.closeGap(id, { end: 4000, missed: null, detail: 'clock stepped' });
  ledger.closeGap(id, { end: 9000, missed: null });
  const l = lines(path);
  t.equal(l.length, 2);
  t.equal(l[1]!.durationMs, 0);
  t.equal(l[1]!.detail, 'clock stepped');
});

t.test('entries made before open() are written by open(); open() on a bad path rejects with FK_ERR_LEDGER_WRITE', async (t) => {
  const { ledger, path } = setup(t);
  const id = ledger.openGap({ stream: 'a@trade', connection: null, start: 1, cause: 'daemon_down' });
  await ledger.open();
  t.same(
    lines(path).map((e) => e.id),
    [id],
  );

  const dir = t.testdir({ file: 'not a directory' });
  const metrics = createMetrics({ defaultMetrics: false });
  const calendar = new MaintenanceCalendar({ windows: [], logger: silentLogger(), metrics });
  const bad = new GapLedger({ path: join(dir, 'file', 'gaps.ndjson'), logger: silentLogger(), metrics, calendar });
  await t.rejects(bad.open(), { code: 'FK_ERR_LEDGER_WRITE' });
});
