import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';

// Every path package.json names exists once built: `main` once pointed at dist/src/index.js, a file
// no build ever made.

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { main?: string; bin?: Record<string, string>; files?: string[]; exports?: unknown };
if (!existsSync('dist/src/cli/main.js')) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });

t.test('package.json: bin, main and files name paths that exist after the build', async (t) => {
  const paths = [...Object.values(pkg.bin ?? {}), ...(pkg.main === undefined ? [] : [pkg.main]), ...(pkg.files ?? [])];
  t.ok(Object.keys(pkg.bin ?? {}).includes('feedkeeper'), 'the feedkeeper bin');
  for (const p of paths) t.ok(existsSync(p), p);
  t.equal(pkg.exports, undefined, 'no exports map: feedkeeper is a command, not a library');
});
