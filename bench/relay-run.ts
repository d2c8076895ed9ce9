import { fork, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FloodServer, SourceMode } from './flood-server.js';
import type { SourceStats } from './protocol.js';
import { LightClientPool } from './relay-clients.js';
import { RelayDaemon } from './relay-phase.js';
import type { ClientsCommand, ClientsReply, ClientsSnapshot, DaemonCommand, DaemonReply, DaemonSnapshot } from './relay-protocol.js';
import type { ClientsHandle, DaemonHandle, RelayDriver, RelayIntegrity } from './relay-suite.js';

/**
 * The two drivers of bench/relay-suite.ts: child processes (bench/run.ts: the flood source, the
 * daemon and the clients each in a process of its own, so that none shares an event loop with the
 * relay being measured) and one process (test/bench.test.ts, toy scale).
 */

const HERE = dirname(fileURLToPath(import.meta.url));

/** A child answering request/reply over IPC (`id` ties them). */
class Child<Cmd extends { cmd: string }, Reply extends { id: number; type: string }> {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    private readonly what: string,
  ) {
    child.on('message', (raw) => {
      const r = raw as Reply;
      const w = this.waiting.get(r.id);
      if (w) {
        this.waiting.delete(r.id);
        w(r);
      }
    });
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  request(cmd: Cmd, timeoutMs = 60_000): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolveReq, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.what} did not answer ${cmd.cmd} within ${timeoutMs} ms`)), timeoutMs);
      const gone = (): void => reject(new Error(`${this.what} exited before answering ${cmd.cmd}`));
      this.child.once('exit', gone);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        this.child.off('exit', gone);
        if (r.type === 'error') reject(new Error(`${this.what}: ${(r as unknown as { message: string }).message}`));
        else resolveReq(r);
      });
      this.child.send({ ...cmd, id });
    });
  }

  async kill(): Promise<void> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.disconnect?.();
    await this.exited;
    clearTimeout(t);
  }
}

export interface SourceControl {
  url: string;
  setMode(mode: SourceMode): Promise<void>;
  sourceStats(): Promise<SourceStats>;
}

/** Daemon and clients in child processes of their own; `cpuProf`: a V8 CPU profile of each daemon. */
export function processRelayDriver(source: SourceControl, cpuProf: string | null = null): RelayDriver {
  let runs = 0;
  return {
    url: source.url,
    setMode: (m) => source.setMode(m),
    sourceStats: () => source.sourceStats(),
    async startDaemon(spec): Promise<DaemonHandle> {
      const execArgv = cpuProf === null ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', `feedkeeper-relay-${++runs}-${Date.now()}.cpuprofile`];
      const c = new Child<DaemonCommand, DaemonReply>(fork(resolve(HERE, 'relay-phase.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv }), 'relay daemon');
      const started = (await c.request({ cmd: 'start', spec })) as { url: string; streams: string[] };
      return {
        url: started.url,
        streams: started.streams,
        ready: async () => ((await c.request({ cmd: 'ready' })) as { ready: boolean }).ready,
        sample: async (on) => void (await c.request({ cmd: 'sample', on })),
        snapshot: async () => ((await c.request({ cmd: 'snapshot' })) as { snapshot: DaemonSnapshot }).snapshot,
        async stop(): Promise<RelayIntegrity> {
          try {
            return ((await c.request({ cmd: 'stop' })) as { integrity: RelayIntegrity }).integrity;
          } finally {
            await c.kill();
          }
        },
      };
    },
    async startClients(url, clients): Promise<ClientsHandle> {
      const c = new Child<ClientsCommand, ClientsReply>(fork(resolve(HERE, 'relay-clients.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'relay clients');
      await c.request({ cmd: 'open', url, clients }).catch(async (err: unknown) => {
        await c.kill();
        throw err;
      });
      return {
        ready: async () => ((await c.request({ cmd: 'ready' })) as { ready: boolean }).ready,
        sample: async (on) => void (await c.request({ cmd: 'sample', on })),
        snapshot: async () => ((await c.request({ cmd: 'snapshot' })) as { snapshot: ClientsSnapshot }).snapshot,
        async close(): Promise<void> {
          try {
            await c.request({ cmd: 'close' }, 10_000);
          } finally {
            await c.kill();
          }
        },
      };
    },
  };
}

/** Everything in this process (test/bench.test.ts). */
export function inProcessRelayDriver(server: FloodServer): RelayDriver {
  return {
    url: server.url,
    setMode: async (m) => server.setMode(m),
    sourceStats: async () => server.stats(),
    async startDaemon(spec): Promise<DaemonHandle> {
      const d = new RelayDaemon();
      const { url, streams } = await d.start(spec);
      return { url, streams, ready: async () => d.ready(), sample: async (on) => d.sample(on), snapshot: () => d.snapshot(), stop: () => d.stop() };
    },
    async startClients(url, clients): Promise<ClientsHandle> {
      const p = await LightClientPool.open(url, clients);
      return {
        ready: async () => p.ready(),
        sample: async (on) => void (p.latency.on = on),
        snapshot: async () => p.snapshot(),
        close: () => p.close(),
      };
    },
  };
}
