import { readFileSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { Daemon } from '../src/daemon.js';
import { readLedger } from '../src/ledger/report.js';
import type { GapEntry } from '../src/ledger/types.js';
import { silentLogger } from '../src/log.js';
import { startSimulator, type BinanceSimulator } from '../src/simulator/index.js';
import { checkExactlyOnce, recordedIds } from './helpers/backfill.js';
import { startStack, tempDir, testConfig, until, type Stack } from './helpers/stack.js';

// The failure paths of REST backfill against the simulator: 429 and 418 with Retry-After, history
// that aged out (complete: false with what remains), a crash between writing the REST lines and
// the ledger line (nothing written twice), and SIGKILL + restart (daemon_down ranges backfilled).

const SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
const STREAMS = ['trade', 'aggTrade'];
const NAMES = SYMBOLS.flatMap((s) => STREAMS.map((k) => `${s.toLowerCase()}@${k}`));
const FAST = { connection: { backoff: { initialMs: 100, maxMs: 500 }, probeIntervalMs: 200 } };

function recoveredEntries(s: Stack, n: number): Promise<GapEntry[]> {
  const got: GapEntry[] = [];
  return new Promise((resolve) => {
    const off = s.daemon.ledger.listen((e) => {
      if (e.recovered == null) return;
      got.push(e);
      if (got.length >= n) {
        off();
        resolve(got);
      }
    });
  });
}

async function windowAndRecover(t: Test, s: Stack, ms: number): Promise<GapEntry[]> {
  t.ok(await until(() => NAMES.every((n) => s.daemon.router.stream(n)!.received > 5), 10_000), 'every stream delivers');
  const recovered = recoveredEntries(s, NAMES.length);
  s.sim.maintenance(ms);
  t.ok(await until(() => NAMES.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10), 'every stream goes dark');
  return recovered;
}

t.test('429 and 418 with Retry-After: the backfill stops, waits, and finishes', async (t) => {
  const s = await startStack(t, { sim: { eventsPerSecond: 40, tickMs: 20 }, config: { symbols: SYMBOLS, streams: STREAMS, ...FAST, backfill: { enabled: true } } });
  const sim = s.sim as BinanceSimulator;
  const recovered = windowAndRecover(t, s, 1000);
  // The next REST requests: two 429s (Retry-After 1 s), then a 418 (Retry-After 2 s).
  const limited = new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (NAMES.every((n) => s.daemon.router.stream(n)!.gapOpen)) {
        clearInterval(tick);
        sim.refuseRest(2, 429, 1);
        resolve();
      }
    }, 5);
  });
  await limited;
  const entries = await recovered;
  t.ok(entries.every((e) => e.recovered!.complete && e.recovered!.count === e.missed!.count), 'every range recovered in the end');
  const answers = sim.restAnswers;
  const i429 = answers.map((a, i) => (a.status === 429 ? i : -1)).filter((i) => i >= 0);
  t.equal(i429.length, 2, 'two 429s answered');
  const after = answers[i429[1]! + 1]!;
  t.ok(after.at - answers[i429[1]!]!.at >= 950, `the next request came ${after.at - answers[i429[1]!]!.at} ms after the 429 with Retry-After 1 (none in between)`);
  t.ok(i429[1] === i429[0]! + 1 || answers[i429[0]! + 1]!.at - answers[i429[0]!]!.at >= 950, 'the first Retry-After was honoured too');

  // A ban: the whole host pauses for its Retry-After.
  const recovered2 = recoveredEntries(s, NAMES.length);
  s.sim.maintenance(800);
  t.ok(await until(() => NAMES.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10));
  sim.refuseRest(1, 418, 2);
  const again = await recovered2;
  t.ok(again.every((e) => e.recovered!.complete), 'recovered after the ban');
  const i418 = sim.restAnswers.findIndex((a) => a.status === 418);
  const next = sim.restAnswers[i418 + 1]!;
  t.ok(next.at - sim.restAnswers[i418]!.at >= 1950, `first request after the 418 came ${next.at - sim.restAnswers[i418]!.at} ms later (Retry-After 2 s)`);
  t.ok((await s.daemon.metrics.registry.getSingleMetricAsString('feedkeeper_backfill_requests_total')).includes('status="429"} 2'), 'the 429s are counted');
  await s.daemon.stop('test over');
  checkExactlyOnce(t, sim, s.config.recorder.dir, NAMES);
});

t.test('history that aged out: complete false, with what remains missing', async (t) => {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 40, tickMs: 20, tradeHistory: { maxAgeMs: 600 } },
    config: { symbols: SYMBOLS, streams: STREAMS, ...FAST, backfill: { enabled: true } },
  });
  const entries = await windowAndRecover(t, s, 2000);
  for (const e of entries) {
    const r = e.recovered!;
    const gone = r.remaining.reduce((n, x) => n + x.count, 0);
    t.equal(r.complete, false, `${e.stream}: not complete`);
    t.ok(gone > 0 && r.count > 0, `${e.stream}: ${r.count} recovered, ${gone} no longer served`);
    t.equal(r.count + gone, e.missed!.count, `${e.stream}: recovered + remaining = missed`);
    t.equal(r.remaining[0]!.from, e.missed!.from, `${e.stream}: the oldest part is what aged out`);
  }
  await s.daemon.stop('test over');
  const rec = recordedIds(s.config.recorder.dir);
  for (const n of NAMES) {
    const ids = rec.get(n)!.ids;
    t.equal(new Set(ids).size, ids.length, `${n}: no ID twice`);
  }
});

t.test('a crash after the REST lines reached the disk but before the ledger said so: finished without writing an ID twice', async (t) => {
  const dir = tempDir(t);
  const sim = (await startSimulator({ eventsPerSecond: 40, tickMs: 20 })) as BinanceSimulator;
  t.teardown(() => sim.close());
  const config = testConfig(dir, sim, { symbols: SYMBOLS, streams: STREAMS, ...FAST, backfill: { enabled: true } });
  const d1 = new Daemon(config, { logger: silentLogger(), configFiles: [] });
  await d1.start();
  const s1 = { daemon: d1, sim } as unknown as Stack;
  const entries = await windowAndRecover(t, s1, 1000);
  await d1.stop('test');
  // As if the process died right after the recorder's flush: the ledger lacks the recovered lines.
  const ids = new Set(entries.map((e) => e.id));
  const lines = readFileSync(config.ledger.path, 'utf8').split('\n');
  writeFileSync(config.ledger.path, lines.filter((l) => !(l.includes('"recovered"') && ids.has((JSON.parse(l) as { id: string }).id))).join('\n'));
  const before = recordedIds(config.recorder.dir);

  const d2 = new Daemon(config, { logger: silentLogger(), configFiles: [] });
  t.teardown(() => d2.stop('test over'));
  await d2.start();
  t.ok(await until(async () => (await readLedger(config.ledger.path)).filter((e) => ids.has(e.id) && e.recovered != null).length === ids.size, 10_000), 'the ranges are resumed and marked recovered');
  for (const e of (await readLedger(config.ledger.path)).filter((x) => ids.has(x.id))) {
    t.equal(e.recovered!.count, e.missed!.count, `${e.stream}: counted whole`);
  }
  // The shutdown gaps of the restart are backfilled too.
  t.ok(await until(async () => (await readLedger(config.ledger.path)).every((e) => e.end === null || (e.missed?.count ?? 0) === 0 || e.recovered != null), 10_000), 'every range recovered');
  await d2.stop('test over');
  const after = recordedIds(config.recorder.dir);
  for (const n of NAMES) t.ok(after.get(n)!.rest >= before.get(n)!.rest, `${n}: ${before.get(n)!.rest} REST lines before the restart, ${after.get(n)!.rest} after (the restart's own shutdown gap)`);
  // No ID twice: the resumed ranges wrote nothing the first run had written.
  checkExactlyOnce(t, sim, config.recorder.dir, NAMES);
});
