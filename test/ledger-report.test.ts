import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { run } from '../src/cli/commands/gaps.js';
import { formatDuration, formatReport, gapsAnswer, parseTimeArg, readLedger, summarize, type GapSummary } from '../src/ledger/report.js';
import { entryLine, GAP_CAUSES, type GapEntry } from '../src/ledger/types.js';

const H = 3_600_000;
const W = Date.parse('2026-07-09T07:00:00Z');
const NOW = W + 3 * H;
const M = 'Binance Spot API infrastructure upgrade';

function gap(over: Partial<GapEntry> & Pick<GapEntry, 'id' | 'stream' | 'start' | 'cause'>): GapEntry {
  const end = over.end ?? null;
  return {
    venue: 'binance-spot',
    connection: 'c1',
    end,
    durationMs: end === null ? null : end - over.start,
    code: null,
    detail: null,
    maintenance: null,
    missed: null,
    ...over,
  };
}

/** A ledger as the daemon writes it: open lines, close lines with the same id, a torn tail. */
function ledgerText(): { text: string; final: GapEntry[] } {
  const a = gap({ id: '20260709T065959.000Z-000000', stream: 'btcusdt@trade', start: W - 1000, cause: 'server_close', code: 1001, maintenance: M });
  const b = gap({ id: '20260709T065959.000Z-000001', stream: 'btcusdt@depth@100ms', start: W - 1000, cause: 'server_close', code: 1001, maintenance: M });
  const aClosed = { ...a, end: W + 59_000, durationMs: 60_000, missed: { field: 't', from: 101, to: 150, count: 50 } };
  const bClosed = { ...b, end: W + 59_000, durationMs: 60_000, missed: { field: 'U/u', from: 5001, to: 5100, count: null } };
  const c = gap({ id: '20260709T090000.000Z-000000', stream: 'ethusdt@trade', start: W + 2 * H, end: W + 2 * H + 5000, cause: 'stale', missed: { field: 't', from: 7, to: 9, count: 3 } });
  const d = gap({ id: '20260709T093000.000Z-000000', stream: 'ethusdt@trade', start: W + 2.5 * H, end: W + 2.5 * H, cause: 'sequence', connection: 'c2', missed: { field: 't', from: 20, to: 21, count: 2 } });
  const e = gap({ id: '20260709T094500.000Z-000000', stream: 'btcusdt@bookTicker', start: W + 2.75 * H, cause: 'network_error' }); // still open
  const text = [a, b, aClosed, c, bClosed, d, e].map(entryLine).join('') + '{"id":"20260709T095000.000Z-000000","stream":"x@tr';
  return { text, final: [aClosed, bClosed, c, d, e] };
}

t.test('readLedger merges open and close lines by id (last wins) and skips a torn last line', async (t) => {
  const path = join(t.testdir(), 'gaps.ndjson');
  const { text, final } = ledgerText();
  writeFileSync(path, text);
  t.same(await readLedger(path), final);
  await t.rejects(readLedger(join(t.testdir(), 'none.ndjson')), { code: 'ENOENT' });
});

t.test('summarize: totals by cause, stream, maintenance; range and stream filters', async (t) => {
  const { final } = ledgerText();
  const s = summarize(final, { now: NOW });
  t.same(s.totals.all, { gaps: 5, open: 1, seconds: 60 + 60 + 5 + 0 + 0.25 * 3600, missed: 55 });
  t.same(s.totals.inMaintenance, { gaps: 2, open: 0, seconds: 120, missed: 50 });
  t.same(s.totals.outsideMaintenance, { gaps: 3, open: 1, seconds: 905, missed: 5 });
  t.same(s.totals.byMaintenance, { [M]: { gaps: 2, open: 0, seconds: 120, missed: 50 } });
  t.same(s.totals.byCause.server_close, { gaps: 2, open: 0, seconds: 120, missed: 50 });
  t.same(s.totals.byCause.sequence, { gaps: 1, open: 0, seconds: 0, missed: 2 });
  t.same(s.totals.byStream['ethusdt@trade'], { gaps: 2, open: 0, seconds: 5, missed: 5 });
  t.same(
    s.gaps.map((g) => g.stream),
    ['btcusdt@trade', 'btcusdt@depth@100ms', 'ethusdt@trade', 'ethusdt@trade', 'btcusdt@bookTicker'],
    'by start, then id',
  );

  // Overlap with the range; seconds clipped to it.
  const r = summarize(final, { since: W, until: W + 30_000, now: NOW });
  t.equal(r.totals.all.gaps, 2);
  t.equal(r.totals.all.seconds, 60, 'two gaps, 30 s each inside the range');
  t.equal(r.totals.all.missed, 50, 'missed counts whole');
  t.equal(summarize(final, { since: W + 2.9 * H, now: NOW }).totals.all.gaps, 1, 'the open gap reaches now');

  t.equal(summarize(final, { stream: 'ethusdt@trade', now: NOW }).totals.all.gaps, 2);
  t.equal(summarize(final, { stream: 'btcusdt@*', now: NOW }).totals.all.gaps, 3);
  t.equal(summarize(final, { stream: '*@trade', now: NOW }).totals.all.gaps, 3);
  t.equal(summarize(final, { stream: 'btc', now: NOW }).totals.all.gaps, 0);
});

t.test('formatReport: a readable table', async (t) => {
  const { final } = ledgerText();
  const out = formatReport(summarize(final, { now: NOW }));
  t.match(out, /Gap ledger report, beginning \.\. now, all streams/);
  t.match(out, /\n {2}all\s+5\s+1\s+1025\.0\s+55\n/);
  t.match(out, /in maintenance\s+2\s+0\s+120\.0\s+50/);
  t.match(out, /By cause\n {2}CAUSE\s+GAPS\s+OPEN\s+SECONDS\s+MISSED\n {2}network_error\s+1\s+1\s+900\.0\s+0/);
  t.match(out, /By maintenance window\n.*\n {2}Binance Spot API infrastructure upgrade\s+2/);
  t.match(out, /2026-07-09T06:59:59Z\s+2026-07-09T07:00:59Z\s+1m00s\s+binance-spot\s+btcusdt@trade\s+server_close \(1001\)\s+t 101\.\.150 \(50\)\s+Binance Spot/);
  t.match(out, /U\/u 5001\.\.5100 /);
  t.match(out, /2026-07-09T09:45:00Z\s+open\s+15m00s\+\s+binance-spot\s+btcusdt@bookTicker\s+network_error\s+-\s+-/);
  t.equal(formatReport(summarize([], { now: NOW })).trim().split('\n').at(-1), 'No gaps.');
  t.equal(formatDuration(450), '450ms');
  t.equal(formatDuration(4_500), '4.5s');
  t.equal(formatDuration(3_725_000), '1h02m05s');
  t.equal(formatDuration(90_000_000), '1d01h00m');
});

t.test('time arguments', async (t) => {
  t.equal(parseTimeArg('2026-07-09T07:00:00Z', NOW), W);
  t.equal(parseTimeArg('2026-07-09', NOW), Date.parse('2026-07-09T00:00:00Z'));
  t.equal(parseTimeArg(String(W), NOW), W);
  t.equal(parseTimeArg('now', NOW), NOW);
  t.equal(parseTimeArg('24h', NOW), NOW - 24 * H);
  t.equal(parseTimeArg('90s', NOW), NOW - 90_000);
  t.equal(parseTimeArg('7d', NOW), NOW - 7 * 24 * H);
  t.equal(parseTimeArg('yesterday', NOW), null);
  t.equal(parseTimeArg('2026-13-45', NOW), null);
});

t.test('GET /gaps answer: same JSON, 400 on a bad time, no file = no gaps', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'gaps.ndjson');
  writeFileSync(path, ledgerText().text);
  const ok = await gapsAnswer(path, { since: '2026-07-09T06:00:00Z', stream: 'btcusdt@*' }, NOW);
  t.equal(ok.status, 200);
  t.equal((ok.body as GapSummary).totals.all.gaps, 3);
  t.same(await gapsAnswer(path, { until: 'soon' }, NOW), { status: 400, body: { error: 'until: not a time: soon' } });
  const none = await gapsAnswer(join(dir, 'missing.ndjson'), {}, NOW);
  t.equal(none.status, 200);
  t.equal((none.body as GapSummary).totals.all.gaps, 0);
});

t.test('feedkeeper gaps on a real ledger file (run() called directly)', async (t) => {
  const dir = t.testdir();
  const ledgerPath = join(dir, 'state', 'gaps.ndjson');
  const config = join(dir, 'feedkeeper.json');
  writeFileSync(
    config,
    JSON.stringify({ venue: 'binance-spot', symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade'], ledger: { path: ledgerPath, statePath: join(dir, 'state', 'cp.json') } }),
  );
  const io = () => {
    const o = { out: '', err: '' };
    return { o, io: { stdout: (s: string) => void (o.out += s), stderr: (s: string) => void (o.err += s), env: {}, now: NOW } };
  };

  // No ledger yet.
  let c = io();
  t.equal(await run(['--config', config], c.io), 0);
  t.match(c.o.out, /No gaps\./);

  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'state'));
  writeFileSync(ledgerPath, ledgerText().text);

  c = io();
  t.equal(await run(['--config', config], c.io), 0);
  t.match(c.o.out, /By cause/);
  t.match(c.o.out, /server_close\s+2\s+0\s+120\.0\s+50/);

  c = io();
  t.equal(await run(['-c', config, '--json', '--since', '2026-07-09T08:00:00Z', '--stream', 'ethusdt@trade'], c.io), 0);
  const json = JSON.parse(c.o.out) as GapSummary;
  t.same(json.totals.all, { gaps: 2, open: 0, seconds: 5, missed: 5 });
  t.same(json.range, { since: Date.parse('2026-07-09T08:00:00Z'), until: null, stream: 'ethusdt@trade' });
  t.same(json, (await gapsAnswer(ledgerPath, { since: '2026-07-09T08:00:00Z', stream: 'ethusdt@trade' }, NOW)).body, 'same JSON as GET /gaps');

  c = io();
  t.equal(await run(['--help'], c.io), 0);
  t.match(c.o.out, /Usage: feedkeeper gaps/);

  await t.rejects(run([], io().io), { name: 'UsageError' });
  await t.rejects(run(['--config', config, '--since', 'whenever'], io().io), { name: 'UsageError', message: /since: not a time/ });
  await t.rejects(run(['--config', config, '--bogus'], io().io), { name: 'UsageError' });
  await t.rejects(run(['--config', join(dir, 'nope.json')], io().io), { code: 'FK_ERR_CONFIG' });
});

t.test('docs/gap-ledger.md documents every cause and every gap metric', async (t) => {
  const doc = readFileSync(new URL('../docs/gap-ledger.md', import.meta.url), 'utf8');
  for (const cause of GAP_CAUSES) t.match(doc, new RegExp('`' + cause + '`'), cause);
  for (const m of ['feedkeeper_gaps_total', 'feedkeeper_gap_seconds_total', 'feedkeeper_missed_messages_total', 'feedkeeper_gaps_open', 'feedkeeper_maintenance_active', 'feedkeeper_ledger_write_errors_total']) {
    t.match(doc, m, m);
  }
});
