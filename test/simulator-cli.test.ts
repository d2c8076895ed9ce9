import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { connect } from './fixtures/sim-client.js';

const runner = fileURLToPath(new URL('./fixtures/run-simulator-cli.ts', import.meta.url));

function run(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', runner, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exit, out: () => stdout, err: () => stderr };
}

t.test('simulate: prints the URLs as one JSON line, serves, reports violations, exits 0 on SIGTERM', async (t) => {
  const p = run(['--port', '0', '--venue', 'binance-spot', '--events-per-second', '20', '--messages-per-second', '1']);
  t.teardown(() => {
    p.child.kill('SIGKILL');
  });
  while (!p.out().includes('\n') && p.child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  const info = JSON.parse(p.out().split('\n')[0]!) as { wsUrl: string; httpUrl: string; port: number; venue: string };
  t.match(info, { wsUrl: /^ws:\/\/127\.0\.0\.1:\d+$/, httpUrl: /^http:\/\/127\.0\.0\.1:\d+$/, venue: 'binance-spot' });
  t.ok(info.port > 0);
  t.same(await (await fetch(`${info.httpUrl}/sapi/v1/system/status`)).json(), { status: 0, msg: 'normal' });

  const c = await connect(`${info.wsUrl}/ws/btcusdt@trade`);
  await c.next(() => true);
  const rude = await connect(`${info.wsUrl}/ws`);
  rude.send({ method: 'LIST_SUBSCRIPTIONS', id: 1 });
  rude.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
  t.equal((await rude.closed).code, 1008);
  while (!p.err().includes('\n')) await new Promise((r) => setTimeout(r, 20));
  t.equal(JSON.parse(p.err().split('\n')[0]!).violation.rule, 'messages_per_second', 'violations as JSON lines on stderr');

  p.child.kill('SIGTERM');
  const [code] = await p.exit;
  t.equal(code, 0);
  t.equal((await c.closed).code, 1006, 'connections cut at shutdown');
});

t.test('simulate: bad arguments exit 2', async (t) => {
  const cases = [['--venue', 'kraken'], ['--port', 'abc'], ['--bogus'], ['--tick-ms', '0']];
  const runs = cases.map((args) => ({ args, p: run(args) }));
  for (const { args, p } of runs) {
    const [code] = await p.exit;
    t.equal(code, 2, args.join(' '));
    t.match(p.err(), /feedkeeper simulate:/);
  }
});
