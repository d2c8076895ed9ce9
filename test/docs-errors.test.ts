import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import { anchorsOf } from './metrics-names.js';

/** Every error code in src/errors.ts has its own section in docs/troubleshooting.md. */
const troubleshooting = readFileSync(fileURLToPath(new URL('../docs/troubleshooting.md', import.meta.url)), 'utf8');

t.test('every error code has a section in docs/troubleshooting.md', async (t) => {
  const anchors = anchorsOf(troubleshooting);
  const codes = Object.values(ErrorCodes);
  t.ok(codes.length > 0);
  const missing = codes.filter((c) => !anchors.has(c.toLowerCase()));
  t.same(missing, [], `add a "### CODE" section to docs/troubleshooting.md for: ${missing.join(', ')}`);
});

t.test('no section documents a code that does not exist', async (t) => {
  const codes = new Set<string>(Object.values(ErrorCodes));
  const documented = [...troubleshooting.matchAll(/^#{2,4} (FK_ERR_\w+)\s*$/gm)].map((m) => m[1]!);
  t.same(documented.filter((c) => !codes.has(c)), []);
});
