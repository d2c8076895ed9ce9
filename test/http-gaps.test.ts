import t from 'tap';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { ledgerGaps } from '../src/metrics/gaps-route.js';
import { createMetrics } from '../src/metrics/registry.js';
import { startHttpServer } from '../src/metrics/server.js';

// The example from docs/gap-ledger.md: a maintenance disconnect (two streams) and a sequence gap.
const LEDGER = [
  '{"id":"20260709T065959.870Z-000000","stream":"btcusdt@trade","connection":"c3","start":1783580399870,"end":null,"durationMs":null,"cause":"server_close","code":1001,"detail":null,"maintenance":null,"missed":null}',
  '{"id":"20260709T065959.870Z-000000","stream":"btcusdt@trade","connection":"c3","start":1783580399870,"end":1783580458112,"durationMs":58242,"cause":"server_close","code":1001,"detail":null,"maintenance":"Binance Spot API infrastructure upgrade","missed":{"field":"t","from":4820113,"to":4820790,"count":678}}',
  '{"id":"20260709T091502.004Z-000000","stream":"ethusdt@trade","connection":"c1","start":1783588502004,"end":1783588502004,"durationMs":0,"cause":"sequence","code":null,"detail":null,"maintenance":null,"missed":{"field":"t","from":991201,"to":991203,"count":3}}',
].join('\n');

const NOW = Date.parse('2026-07-09T12:00:00Z');

async function serve(t: { teardown(fn: () => unknown): void }, ledgerPath: string) {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics: createMetrics({ defaultMetrics: false }),
    health: { readiness: () => ({ ready: true, reasons: [], connections: { planned: 1, open: 1 } }) },
    gaps: ledgerGaps(ledgerPath, () => NOW),
    logger: silentLogger(),
  });
  t.teardown(() => server.close());
  return server;
}

interface Summary {
  totals: { all: { gaps: number; missed: number }; inMaintenance: { gaps: number }; outsideMaintenance: { gaps: number } };
  gaps: Array<{ stream: string }>;
}

t.test('GET /gaps answers the ledger summary, filtered by the query', async (t) => {
  const dir = t.testdir({ 'ledger.ndjson': LEDGER });
  const server = await serve(t, join(dir, 'ledger.ndjson'));

  let res = await fetch(`${server.url}/gaps`);
  t.equal(res.status, 200);
  let body = (await res.json()) as Summary;
  t.equal(body.totals.all.gaps, 2);
  t.equal(body.totals.all.missed, 681);
  t.equal(body.totals.inMaintenance.gaps, 1);
  t.equal(body.totals.outsideMaintenance.gaps, 1);

  res = await fetch(`${server.url}/gaps?stream=${encodeURIComponent('ethusdt@*')}&since=2026-07-09T08:00:00Z`);
  t.equal(res.status, 200);
  body = (await res.json()) as Summary;
  t.same(
    body.gaps.map((g) => g.stream),
    ['ethusdt@trade'],
  );
});

t.test('a bad time is a 400 naming the parameter', async (t) => {
  const dir = t.testdir({ 'ledger.ndjson': LEDGER });
  const server = await serve(t, join(dir, 'ledger.ndjson'));
  const res = await fetch(`${server.url}/gaps?since=yesterday-ish`);
  t.equal(res.status, 400);
  t.same(await res.json(), { error: 'since: not a time: yesterday-ish' });
});

t.test('no ledger yet means no gaps; an unreadable ledger is a 500 without details', async (t) => {
  const dir = t.testdir({ 'a-directory': {} });
  let server = await serve(t, join(dir, 'missing.ndjson'));
  let res = await fetch(`${server.url}/gaps`);
  t.equal(res.status, 200);
  t.equal(((await res.json()) as Summary).totals.all.gaps, 0);

  server = await serve(t, join(dir, 'a-directory')); // EISDIR
  res = await fetch(`${server.url}/gaps`);
  t.equal(res.status, 500);
  const text = await res.text();
  t.same(JSON.parse(text), { error: 'internal_error' });
  t.notMatch(text, /a-directory/);
});
