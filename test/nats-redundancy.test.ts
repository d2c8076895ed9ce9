import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { connect } from '@nats-io/transport-node';
import { run as audit } from '../src/cli/commands/audit.js';
import { readLedger } from '../src/ledger/report.js';
import type { GapEntry } from '../src/ledger/types.js';
import { startSimulator } from '../src/simulator/index.js';
import type { AuditReport } from '../src/sinks/nats/audit.js';
import { readStream, type StoredMessage } from '../src/sinks/nats/reader.js';
import { natsSkipReason, startNatsServer } from './nats-server.js';
import { readRecording, sleep, tempDir, until } from './helpers/stack.js';

// The first Done-when: two daemons (the real CLI, from source) with the same config and
// different collector.id publish into one stream from one simulator. One is SIGKILLed mid-run and
// restarted, later the other; the stream holds every trade and aggTrade ID the simulator sent
// exactly once, `feedkeeper audit` reports no merged hole, and each collector's own ledger shows
// its outage. The 10 s outages are compressed to 1.5 s: at 100 messages/s per stream that
// is ~150 IDs per stream each collector misses and the other covers, which proves the point.

const skip = natsSkipReason();
if (skip !== null) t.plan(0, skip);
// Four daemon starts from source: on a loaded machine each can take many seconds. The waits below
// end as soon as their condition holds; this only keeps a slow machine from failing the file.
t.setTimeout(300_000);
const WAIT_MS = 60_000;

const STREAMS = [
  ['btcusdt@trade', 't', 'md.binance-spot.trade.BTCUSDT'],
  ['ethusdt@trade', 't', 'md.binance-spot.trade.ETHUSDT'],
  ['btcusdt@aggTrade', 'a', 'md.binance-spot.aggTrade.BTCUSDT'],
  ['ethusdt@aggTrade', 'a', 'md.binance-spot.aggTrade.ETHUSDT'],
] as const;
const OUTAGE_MS = 1500;

function daemon(t: Test, file: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEEDKEEPER_')) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config', file], { stdio: 'ignore', env });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exited };
}

async function entries(path: string): Promise<GapEntry[]> {
  return readLedger(path).catch(() => []);
}

/** The daemon_down gap of every stream closed (the restarted collector delivers again). */
async function backAfterCrash(ledger: string): Promise<boolean> {
  const e = await entries(ledger);
  return STREAMS.every(([s]) => e.some((g) => g.stream === s && g.cause === 'daemon_down' && g.end !== null));
}

t.test('two collectors, each SIGKILLed in turn: one stream with every ID once, no merged hole', { skip: skip ?? false }, async (t) => {
  const dir = tempDir(t);
  const nats = await startNatsServer(t);
  const sim = await startSimulator({ eventsPerSecond: 100, tickMs: 10 });
  t.teardown(() => sim.close());
  const file = (id: string): string => {
    const d = join(dir, id);
    mkdirSync(d, { recursive: true });
    const f = join(d, 'config.json');
    writeFileSync(
      f,
      JSON.stringify({
        endpoints: { stream: sim.wsUrl, rest: sim.httpUrl },
        symbols: ['BTCUSDT', 'ETHUSDT'],
        streams: ['trade', 'aggTrade'],
        recorder: { dir: join(d, 'rec'), flushIntervalMs: 20 },
        ledger: { path: join(d, 'ledger.ndjson') },
        metrics: { enabled: false },
        log: { level: 'warn' },
        maintenance: { statusPollMs: 0, windows: [] },
        connection: { backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } },
        collector: { id },
        sinks: { nats: { enabled: true, servers: [nats.url], reconnectWaitMs: 100, ackTimeoutMs: 1000 } },
      }),
    );
    return f;
  };
  const fa = file('sg-1');
  const fb = file('tk-1');
  const la = join(dir, 'sg-1', 'ledger.ndjson');
  const lb = join(dir, 'tk-1', 'ledger.ndjson');

  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const count = async (): Promise<number> => {
    const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(nc);
    return (await jsm.streams.info('FEEDKEEPER').catch(() => null))?.state.messages ?? 0;
  };

  let a = daemon(t, fa);
  const b = daemon(t, fb);
  // Each collector has recorded every stream for a while (so a kill leaves a daemon_down gap), and
  // the stream has their messages.
  const going = (id: string): boolean => {
    const lines = readRecording(join(dir, id, 'rec'));
    return STREAMS.every(([s]) => lines.filter((l) => l.stream === s).length >= 50);
  };
  t.ok(await until(async () => going('sg-1') && going('tk-1') && (await count()) > 400, WAIT_MS, 100), 'both collectors recording and publishing');
  await sleep(300);

  a.child.kill('SIGKILL');
  t.match(await a.exited, { signal: 'SIGKILL' }, 'sg-1 SIGKILLed');
  await sleep(OUTAGE_MS);
  a = daemon(t, fa);
  t.ok(await until(() => backAfterCrash(la), WAIT_MS, 100), 'sg-1 back: its daemon_down gaps closed');
  await sleep(500);

  b.child.kill('SIGKILL');
  t.match(await b.exited, { signal: 'SIGKILL' }, 'tk-1 SIGKILLed');
  await sleep(OUTAGE_MS);
  const b2 = daemon(t, fb);
  t.ok(await until(() => backAfterCrash(lb), WAIT_MS, 100), 'tk-1 back: its daemon_down gaps closed');
  await sleep(500);

  a.child.kill('SIGTERM');
  b2.child.kill('SIGTERM');
  t.match(await a.exited, { code: 0 }, 'sg-1 stops cleanly');
  t.match(await b2.exited, { code: 0 }, 'tk-1 stops cleanly');

  const msgs: StoredMessage[] = [];
  await readStream(nc, 'FEEDKEEPER', { onMessage: (m) => msgs.push(m) });
  for (const [stream, field, subject] of STREAMS) {
    const ids = msgs.filter((m) => m.subject === subject).map((m) => (JSON.parse(Buffer.from(m.data).toString()) as { data: Record<string, number> }).data[field]!);
    const sorted = [...ids].sort((x, y) => x - y);
    const lo = sorted[0]!;
    const hi = sorted[sorted.length - 1]!;
    const sent = sim.sentIds(stream).filter((id) => id >= lo && id <= hi);
    t.same(sorted, sent, `${stream}: every ID the simulator sent between ${lo} and ${hi} once (${ids.length})`);
    t.equal(new Set(ids).size, ids.length, `${stream}: no ID twice`);
    const kept = new Set(msgs.filter((m) => m.subject === subject).map((m) => m.collector));
    t.same([...kept].sort(), ['sg-1', 'tk-1'], `${stream}: copies of both collectors kept`);
  }

  for (const [who, ledger] of [
    ['sg-1', la],
    ['tk-1', lb],
  ] as const) {
    const own = (await entries(ledger)).filter((e) => e.cause === 'daemon_down' && e.end !== null);
    for (const [stream] of STREAMS) {
      const g = own.find((e) => e.stream === stream);
      t.ok(g !== undefined && g.missed !== null && (g.missed.count ?? 0) > 50, `${who}'s own ledger shows its outage on ${stream} (${g?.missed?.count ?? 0} missed)`);
    }
  }

  let out = '';
  const code = await audit(['--nats', nats.url, '--json'], { stdout: (s) => (out += s), env: {} });
  const report = JSON.parse(out) as AuditReport;
  t.equal(code, 0, 'audit: exit 0');
  t.equal(report.holes, 0, 'audit: no hole in the merged stream');
  t.equal(report.subjects.length, STREAMS.length, 'audit: every subject with contiguous IDs');
  t.ok(report.subjects.every((s) => s.duplicates === 0), 'audit: nothing stored twice');
  for (const who of ['sg-1', 'tk-1']) {
    const c = report.collectors.find((x) => x.collector === who);
    t.ok(c !== undefined && c.gaps.some((g) => g.cause === 'daemon_down'), `audit: ${who}'s daemon_down entries from _gaps`);
    t.ok(c !== undefined && c.missed > 0 && c.covered === c.missed, `audit: all ${c?.missed} IDs ${who} missed are covered by the other`);
  }
  let text = '';
  t.equal(await audit(['--nats', nats.url], { stdout: (s) => (text += s), env: {} }), 0);
  t.match(text, /No hole in the merged stream/, 'audit text verdict');
});
