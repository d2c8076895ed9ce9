import t from 'tap';
import { readFileSync } from 'node:fs';
import { configKeys, NON_CONFIG_ENV } from '../src/config/schema.js';

// Every key is documented: a heading of its own, its environment variable next to it.
const doc = readFileSync('docs/configuration.md', 'utf8');
const sections = new Map<string, string>();
for (const part of doc.split(/^### /m).slice(1)) {
  const m = /^`([^`]+)`\n([\s\S]*)$/.exec(part);
  if (m) sections.set(m[1]!, m[2]!);
}

for (const { key, env } of configKeys()) {
  t.test(key, async (t) => {
    const section = sections.get(key);
    t.ok(section, `docs/configuration.md has a "### \`${key}\`" section`);
    t.match(section ?? '', `Env: \`${env}\``, `names ${env}`);
    t.match(section ?? '', /Default: /, 'gives the default');
  });
}

t.test('no section for a key that does not exist', async (t) => {
  const keys = new Set(configKeys().map((k) => k.key));
  for (const documented of sections.keys()) t.ok(keys.has(documented), `${documented} is a schema key`);
});

t.test('the credential variables are documented', async (t) => {
  for (const name of NON_CONFIG_ENV) t.match(doc, name);
});
