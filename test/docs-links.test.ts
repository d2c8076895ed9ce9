import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { anchorsOf } from './metrics-names.js';

/** Links between the operations docs land on a file and a heading that exist. */
const docs = fileURLToPath(new URL('../docs/', import.meta.url));

for (const file of ['operations.md', 'metrics.md', 'troubleshooting.md']) {
  t.test(`docs/${file}: every relative link resolves`, async (t) => {
    const text = readFileSync(`${docs}${file}`, 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // http:, https:, file:
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const linked = path === '' ? file : path;
      t.ok(existsSync(`${docs}${linked}`), `${target}: docs/${linked} exists`);
      if (anchor !== undefined && existsSync(`${docs}${linked}`)) {
        t.ok(anchorsOf(readFileSync(`${docs}${linked}`, 'utf8')).has(anchor), `${target}: heading #${anchor} exists`);
      }
    }
  });
}
