import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * External checkers (promtool, systemd-analyze) for the operations tests. CI must have them
 * (.ci/run installs them), so a missing tool fails there; on a developer machine it skips, saying so.
 */
export function findTool(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export interface ExternalTool {
  name: string;
  path: string | undefined;
  /** Options for t.test(): a skip, saying why, when the tool is missing outside CI. */
  testOpts: { skip?: string };
  /** The tool's path inside a test; fails the test when it is missing (only reached in CI). */
  need(t: { fail(message: string): unknown }): string | undefined;
}

/** `install` says how to get the tool, for the skip and failure messages. */
export function externalTool(name: string, install: string): ExternalTool {
  const path = findTool(name);
  const missing = `${name} is not installed (${install})`;
  return {
    name,
    path,
    testOpts: path === undefined && !process.env.CI ? { skip: `${missing}; with CI set this is a failure` } : {},
    need(t) {
      if (path === undefined) t.fail(`${missing}, and CI is set: the operations checks must run in CI (.ci/run installs it)`);
      return path;
    },
  };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): RunResult {
  const r = spawnSync(cmd, args, { input: opts.input, cwd: opts.cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
