import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { startSimulator, type Simulator } from '../src/simulator/index.js';
import { testConfig, until } from './helpers/stack.js';

// A failed connection attempt says what failed (docs/troubleshooting.md, "Error codes"): the
// backoff line carries the error code and a reason named after it, for each way an attempt fails.

type Line = Record<string, unknown>;

async function run(t: { teardown(fn: () => unknown): void }, sim: Simulator, over: Record<string, unknown>): Promise<Line[]> {
  const lines: Line[] = [];
  const logger = createLogger('info', { write: (s: string) => lines.push(JSON.parse(s) as Line) });
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-test-'));
  const daemon = new Daemon(testConfig(dir, sim, { symbols: ['BTCUSDT'], streams: ['trade'], ...over }), { logger, configFiles: [], env: {} });
  t.teardown(async () => {
    await daemon.stop('test over');
    rmSync(dir, { recursive: true, force: true });
  });
  await daemon.start();
  return lines;
}

const backoff = (lines: Line[], reason: string): Line | undefined => lines.find((l) => l.event === 'connection_state' && l.state === 'backoff' && l.reason === reason);

t.test('a handshake that never completes: connect_timeout, FK_ERR_CONNECT_TIMEOUT', async (t) => {
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  // A TCP server that accepts and never answers the upgrade.
  const sockets: Socket[] = [];
  const silent: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const lines = await run(t, sim, { endpoints: { stream: `ws://127.0.0.1:${port}` }, connection: { handshakeTimeoutMs: 300 } });
  t.ok(await until(() => backoff(lines, 'connect_timeout') !== undefined, 5000));
  t.match(backoff(lines, 'connect_timeout'), { error: 'FK_ERR_CONNECT_TIMEOUT', detail: /handshake has timed out/ });
});

t.test('nothing listening: network_error, FK_ERR_CONNECT', async (t) => {
  const sim = await startSimulator();
  t.teardown(() => sim.close());
  const closed: Server = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const lines = await run(t, sim, { endpoints: { stream: `ws://127.0.0.1:${port}` } });
  t.ok(await until(() => backoff(lines, 'network_error') !== undefined, 5000));
  t.match(backoff(lines, 'network_error'), { error: 'FK_ERR_CONNECT', detail: /ECONNREFUSED/ });
});

t.test('a SUBSCRIBE the exchange refuses: subscribe_refused, FK_ERR_SUBSCRIBE', async (t) => {
  // The exchange takes one stream per connection; the daemon believes two fit, one in the URL and
  // one by SUBSCRIBE, which is refused.
  const sim = await startSimulator({ limits: { streamsPerConnection: 1 } });
  t.teardown(() => sim.close());
  const lines = await run(t, sim, { streams: ['trade', 'aggTrade'], limits: { streamsPerSubscribe: 1 } });
  t.ok(await until(() => backoff(lines, 'subscribe_refused') !== undefined, 5000));
  t.match(backoff(lines, 'subscribe_refused'), { error: 'FK_ERR_SUBSCRIBE', detail: /exchange refused request/ });
});
