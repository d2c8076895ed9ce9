import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every `event: '...'` a log line in src/ carries is explained in docs/troubleshooting.md. */
t.test('every log event is documented', async (t) => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  const events = new Set<string>();
  for (const f of walk(join(root, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/event: '([a-z_]+)'/g)) events.add(m[1]!);
  }
  t.ok(events.size > 15, `${events.size} events found`);
  const doc = readFileSync(join(root, 'docs', 'troubleshooting.md'), 'utf8');
  for (const e of [...events].sort()) t.ok(doc.includes(`\`${e}\``), `${e} is in docs/troubleshooting.md`);
});
