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

/**
 * Every log call in src/ carries an `event` (found through the TypeScript AST, so a call spread over
 * lines or with a computed message is seen too): a log line without one cannot be filtered or looked
 * up in docs/troubleshooting.md.
 */
t.test('every log call in src/ has an event', async (t) => {
  const ts = (await import('typescript')).default;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  const levels = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
  const missing: string[] = [];
  let calls = 0;
  for (const f of walk(join(root, 'src'))) {
    const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.ES2022, true);
    const visit = (n: import('typescript').Node): void => {
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && levels.has(n.expression.name.text)) {
        // log, logger, this.log, opts.logger, childLogger...: what pino loggers are called here.
        if (/(^|\.)(log|logger|\w*[lL]ogger|\w*Log)$/.test(n.expression.expression.getText(sf))) {
          calls++;
          const a = n.arguments[0];
          const ok = a !== undefined && ts.isObjectLiteralExpression(a) && a.properties.some((p) => p.name !== undefined && p.name.getText(sf) === 'event');
          if (!ok) missing.push(`${f.slice(root.length)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`);
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  t.ok(calls > 150, `${calls} log calls found`);
  t.same(missing, [], 'log calls without an event');
});
