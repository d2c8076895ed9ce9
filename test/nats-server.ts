import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real nats-server with JetStream for the NATS tests (Debian's `apt-get install -y nats-server`),
 * on a free loopback port with its store in a temporary directory. No mock broker.
 */

export const natsServerVersion: string | null = (() => {
  const r = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
})();

/**
 * The file-level guard: without nats-server the NATS tests are skipped with one line, except under
 * CI=true, where they fail (.ci/run installs it).
 */
export function natsSkipReason(): string | null {
  if (natsServerVersion !== null) return null;
  if (process.env.CI === 'true') throw new Error('nats-server is not installed (CI=true): .ci/run installs it with apt-get install -y nats-server');
  return 'nats-server not installed (apt-get install -y nats-server): NATS tests skipped';
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** SIGKILL the server (an outage); its store stays. */
  kill(): Promise<void>;
  /** Start it again on the same port and store. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsServer(t: { teardown(fn: () => unknown): void }): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'feedkeeper-nats-'));
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    child = spawn('nats-server', ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nats-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  t.teardown(async () => {
    await kill();
    rmSync(storeDir, { recursive: true, force: true });
  });
  return { url: `nats://127.0.0.1:${port}`, port, storeDir, kill, start, stop: kill };
}
