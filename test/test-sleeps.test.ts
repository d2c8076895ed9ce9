import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

// Issue 15: tests await events instead of sleeping. The review of 01e2b72 counted 76 fixed sleeps
// totalling 49.7 s; the bound here is under half of that, so the suite cannot drift back. A fixed
// sleep is a literal `sleep(N)` or an awaited `new Promise((r) => setTimeout(r, N))`; waits for an
// event with a ceiling (`until`, `within`) are not sleeps. This file's own patterns are skipped.
const BOUND_MS = 24_000;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const SLEEP = /\bsleep\((\d[\d_]*)\)|new Promise\(\(\s*(\w+)\s*\)\s*=>\s*setTimeout\(\s*\2\s*,\s*(\d[\d_]*)\s*\)\)/g;

t.test(`fixed sleeps in test/ total under ${BOUND_MS / 1000} s`, (t) => {
  let total = 0;
  const each: string[] = [];
  for (const f of files('test')) {
    if (f.endsWith('test-sleeps.test.ts')) continue;
    for (const m of readFileSync(f, 'utf8').matchAll(SLEEP)) {
      const ms = Number((m[1] ?? m[3])!.replace(/_/g, ''));
      total += ms;
      each.push(`${f}: ${ms} ms`);
    }
  }
  t.ok(each.length > 0, 'the pattern finds the sleeps there are');
  t.ok(total < BOUND_MS, `${each.length} fixed sleeps, ${(total / 1000).toFixed(1)} s in all`);
  t.end();
});
