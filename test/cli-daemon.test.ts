import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../src/simulator/index.js';
import { writeTestConfig } from './helpers/stack.js';

const CLI = new URL('../dist/src/cli/main.js', import.meta.url).pathname;

t.test('a metrics port already taken: exit 2 naming metrics.port, before anything connects', async (t) => {
  const sim = await startSimulator({ eventsPerSecond: 2 });
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-cli-'));
  t.teardown(async () => {
    blocker.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = writeTestConfig(dir, sim, { symbols: ['BTCUSDT'], streams: ['trade'], metrics: { port }, log: { level: 'info' } });
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 2, 'exit code 2');
  t.match(out, /metrics\.port/, 'the key is named');
  t.match(out, /daemon_start_failed/);
  t.equal(sim.totalConnections, 0, 'nothing connected: the port is checked before the connections start');
});
