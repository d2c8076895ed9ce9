import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import t from 'tap';

// `feedkeeper rehearse` and `feedkeeper simulate` as a user runs them: the built CLI, offline.

const CLI = 'dist/src/cli/main.js';
// `npm test` builds first; build here only when dist is missing (type errors elsewhere in the tree
// do not stop tsc from emitting).
if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });
if (!existsSync(CLI)) throw new Error(`${CLI} missing: build with npx tsc -p .`);

function cli(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const started = Date.now();
  const done = new Promise<{ code: number | null; ms: number }>((r) => child.once('exit', (code) => r({ code, ms: Date.now() - started })));
  return { child, done, out: () => stdout, err: () => stderr };
}

t.test('rehearse (default: maintenance): timeline, ledger report, invariant, exit 0, under 60 s', async (t) => {
  const p = cli(['rehearse']);
  t.teardown(() => void p.child.kill('SIGKILL'));
  const { code, ms } = await p.done;
  t.equal(code, 0, p.out() + p.err());
  t.ok(ms < 60_000, `took ${ms} ms`);
  const out = p.out();
  t.match(out, /^Rehearsal: maintenance on binance-spot\n/);
  t.match(out, /Gap ledger report, /, 'the ledger report');
  t.match(out, /By cause\n\s+CAUSE.*\n\s+maintenance\s+40\s+0\s/, '40 maintenance gaps, all closed');
  t.match(out, /By maintenance window\n.*\n\s+Binance Spot API infrastructure upgrade \(announced for 2026-07-09 07:00 UTC, up to 1 h\) \[rehearsal/, "tagged with the July window's reason");
  t.match(out, /Invariant .* over 30 sequenced streams: .*\n\s+HOLDS/);
  t.match(out, /\nPASS: invariant holds, 6\/6 checks passed/);
  t.match(p.err(), /\[\+\d+\.\ds\] exchange in maintenance/, 'the timeline as it happens, on stderr');
});

t.test('rehearse --scenario crash --json: the daemon is SIGKILLed and restarted as a child process', async (t) => {
  const p = cli(['rehearse', '--scenario', 'crash', '--json']);
  t.teardown(() => void p.child.kill('SIGKILL'));
  const { code, ms } = await p.done;
  t.equal(code, 0, p.err());
  t.ok(ms < 60_000, `took ${ms} ms`);
  const r = JSON.parse(p.out()) as { scenario: string; ok: boolean; invariant: { ok: boolean; streams: unknown[] }; summary: { totals: { byCause: Record<string, { gaps: number; open: number }> } }; steps: string[] };
  t.match(r, { scenario: 'crash', ok: true, invariant: { ok: true } });
  t.equal(r.invariant.streams.length, 30);
  t.same(Object.keys(r.summary.totals.byCause), ['daemon_down']);
  t.match(r.summary.totals.byCause['daemon_down'], { gaps: 40, open: 0 });
  t.ok(r.steps.some((s) => /daemon killed \(SIGKILL\)/.test(s)));
  t.equal(p.err(), '', 'nothing on stderr with --json');
});

t.test('rehearse: usage errors exit 2, --help lists the scenarios', async (t) => {
  const bad = cli(['rehearse', '--scenario', 'meteor']);
  t.equal((await bad.done).code, 2);
  t.match(bad.err(), /unknown scenario meteor \(maintenance, rotation, server-shutdown, stall, crash\)/);
  const help = cli(['rehearse', '--help']);
  t.equal((await help.done).code, 0);
  for (const s of ['maintenance', 'rotation', 'server-shutdown', 'stall', 'crash']) t.match(help.out(), new RegExp(`\\n  ${s} `));
  const top = cli(['--help']);
  await top.done;
  t.match(top.out(), /\n {2}rehearse +play a fault/);
  t.match(top.out(), /\n {2}simulate +run the loopback/);
});

t.test('simulate: the loopback exchange from the CLI, until SIGTERM', async (t) => {
  const p = cli(['simulate', '--port', '0', '--events-per-second', '5']);
  t.teardown(() => void p.child.kill('SIGKILL'));
  while (!p.out().includes('\n') && p.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  const info = JSON.parse(p.out().split('\n')[0]!) as { httpUrl: string; venue: string };
  t.equal(info.venue, 'binance-spot');
  t.same(await (await fetch(`${info.httpUrl}/sapi/v1/system/status`)).json(), { status: 0, msg: 'normal' });
  p.child.kill('SIGTERM');
  t.equal((await p.done).code, 0);
  const bad = cli(['simulate', '--venue', 'kraken']);
  t.equal((await bad.done).code, 2);
});
