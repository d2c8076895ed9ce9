import t, { type Test } from 'tap';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, headers, nanos } from '@nats-io/transport-node';
import { run as audit } from '../src/cli/commands/audit.js';
import { UsageError } from '../src/cli/args.js';
import { entryLine, type GapEntry } from '../src/ledger/types.js';
import type { AuditReport } from '../src/sinks/nats/audit.js';
import { natsSkipReason, startNatsServer } from './nats-server.js';

// `feedkeeper audit` on a stream written by hand (a real nats-server): a merged hole outside
// maintenance is exit 1 with its exact range; one a collector's entry tags as maintenance is not;
// an ID stored twice (a republish after the duplicate window) is counted; what each collector
// missed and how much the others covered comes from <prefix>.<venue>._gaps.

const skip = natsSkipReason();
if (skip !== null) t.plan(0, skip);

const line = (t: number): string => `{"recv":${1_700_000_000_000 + t},"venue":"binance-spot","stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":${t},"p":"1","q":"1","T":1,"m":true,"M":true}}`;

function entry(over: Partial<GapEntry>): GapEntry {
  return { id: '20260709T070000.000Z-000001', venue: 'binance-spot', stream: 'btcusdt@trade', connection: null, start: 1, end: 2, durationMs: 1, cause: 'daemon_down', code: null, detail: null, maintenance: null, missed: null, ...over };
}

async function scenario(t: Test, opts: { maintenance: string | null; twice?: number }) {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'FEEDKEEPER', subjects: ['md.>'], storage: StorageType.File, duplicate_window: nanos(120_000) });
  const js = jetstream(nc);
  const pub = async (subject: string, data: string, id: string, collector: string): Promise<void> => {
    const h = headers();
    h.set('Feedkeeper-Collector', collector);
    await js.publish(subject, data, { msgID: id, headers: h });
  };
  // sg-1 has 1..10 and 14..20; tk-1 was down through 11..16 and 18 (so 11..13 nobody has).
  for (const id of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 19, 20]) await pub('md.binance-spot.trade.BTCUSDT', line(id), `binance-spot:btcusdt@trade:${id}`, 'sg-1');
  if (opts.twice !== undefined) await pub('md.binance-spot.trade.BTCUSDT', line(opts.twice), `other-window:${opts.twice}`, 'tk-1');
  const e1 = entry({ id: 'A', missed: { field: 't', from: 11, to: 13, count: 3 }, maintenance: opts.maintenance });
  await pub('md.binance-spot._gaps', entryLine({ ...e1, end: null, missed: null }).trimEnd(), 'sg-1:gap:A:open', 'sg-1');
  await pub('md.binance-spot._gaps', entryLine(e1).trimEnd(), 'sg-1:gap:A:closed', 'sg-1');
  await pub('md.binance-spot._gaps', entryLine(entry({ id: 'B', missed: { field: 't', from: 11, to: 16, count: 6 } })).trimEnd(), 'tk-1:gap:B:closed', 'tk-1');
  let out = '';
  const code = await audit(['--nats', nats.url, '--json'], { stdout: (s) => (out += s), env: {} });
  let text = '';
  await audit(['--nats', nats.url, '--stream', 'FEEDKEEPER'], { stdout: (s) => (text += s), env: {} });
  return { code, report: JSON.parse(out) as AuditReport, text, url: nats.url };
}

t.test('a hole every collector missed: exit 1, its exact range', { skip: skip ?? false }, async (t) => {
  const { code, report, text } = await scenario(t, { maintenance: null });
  t.equal(code, 1, 'exit 1');
  t.equal(report.holes, 1);
  t.match(report.subjects, [{ subject: 'md.binance-spot.trade.BTCUSDT', field: 't', first: 1, last: 20, ids: 17, duplicates: 0, holes: [{ from: 11, to: 13, count: 3, maintenance: null }], kept: { 'sg-1': 17 } }]);
  const tk = report.collectors.find((c) => c.collector === 'tk-1')!;
  t.match(tk, { missed: 6, covered: 3 }, 'tk-1 missed 11..16, the merged stream holds 14..16');
  const sg = report.collectors.find((c) => c.collector === 'sg-1')!;
  t.equal(sg.gaps.length, 1, 'the open and closed lines of one entry count once');
  t.match(text, /hole t 11\.\.13 \(3 missing\)/);
  t.match(text, /1 hole in the merged stream outside maintenance windows/);
});

t.test('a hole inside a maintenance window: exit 0; an ID stored twice is counted', { skip: skip ?? false }, async (t) => {
  const { code, report, text } = await scenario(t, { maintenance: 'Spot API upgrade', twice: 5 });
  t.equal(code, 0, 'exit 0');
  t.equal(report.holesInMaintenance, 1);
  t.equal(report.subjects[0]!.duplicates, 1, 'ID 5 stored twice');
  t.match(text, /in maintenance: Spot API upgrade/);
  t.match(text, /1 stored twice/);
});

t.test('--since / --until select by the time JetStream stored the messages', { skip: skip ?? false }, async (t) => {
  const { url } = await scenario(t, { maintenance: null });
  const read = async (...args: string[]): Promise<AuditReport> => {
    let out = '';
    await audit(['--nats', url, '--json', ...args], { stdout: (s) => (out += s), env: {} });
    return JSON.parse(out) as AuditReport;
  };
  t.equal((await read('--since', '1h')).messages, 20, 'everything of the last hour');
  t.equal((await read('--until', '2000-01-01T00:00:00Z')).messages, 0, 'nothing stored before 2000');
  t.match((await read('--since', '1h', '--until', 'now')).range, { since: Number, until: Number });
});

t.test('usage errors', { skip: skip ?? false }, async (t) => {
  await t.rejects(audit([], { stdout: () => {} }), UsageError, 'no --nats');
  await t.rejects(audit(['--nats', 'nats://u:p@127.0.0.1:4222'], { stdout: () => {} }), UsageError, 'credentials in the URL');
  await t.rejects(audit(['--nats', 'nats://127.0.0.1:1', '--since', 'yesterday-ish'], { stdout: () => {} }), UsageError, 'bad time');
  const nats = await startNatsServer(t);
  await t.rejects(audit(['--nats', nats.url, '--stream', 'NOPE'], { stdout: () => {} }), /no JetStream stream NOPE/, 'a missing stream');
});
