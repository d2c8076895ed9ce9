import { spawn, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';

/** The built CLI the crash tests run (build with `npx tsc -p .` first). */
export const CLI = 'dist/src/cli/main.js';

export interface DaemonProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `feedkeeper run --config <configFile>` as a child process of its own (output ignored), without
 * the FEEDKEEPER_ variables of this environment, SIGKILLed at teardown if still running: the daemon
 * the crash tests kill and restart.
 */
export function runDaemon(t: Pick<Test, 'teardown'>, configFile: string): DaemonProcess {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FEEDKEEPER_')) env[k] = v;
  const child = spawn(process.execPath, [CLI, 'run', '--config', configFile], { stdio: 'ignore', env });
  const exited = new Promise<DaemonProcess['exited'] extends Promise<infer R> ? R : never>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, exited };
}
