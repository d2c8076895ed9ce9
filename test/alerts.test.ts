import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { anchorsOf, checkMetricRefs, registryMetrics } from './metrics-names.js';
import { externalTool, run } from './metrics-tool.js';

const dir = fileURLToPath(new URL('../deploy/prometheus/', import.meta.url));
const rules = readFileSync(`${dir}alerts.yml`, 'utf8');
const unitTests = readFileSync(`${dir}alerts.test.yml`, 'utf8');
const troubleshooting = readFileSync(fileURLToPath(new URL('../docs/troubleshooting.md', import.meta.url)), 'utf8');
const alertNames = [...rules.matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((m) => m[1]!);

t.test('the rules refer only to metrics and label values the registry has', async (t) => {
  t.ok(alertNames.length >= 10, `${alertNames.length} alerts`);
  const exprs = rules.replace(/^\s*#.*$/gm, '');
  t.same(checkMetricRefs(exprs, await registryMetrics()), []);
});

t.test('every alert has severity, summary, description and a runbook anchor that exists', async (t) => {
  const anchors = anchorsOf(troubleshooting);
  const blocks = rules.split(/^\s*- alert: /m).slice(1);
  t.equal(blocks.length, alertNames.length);
  for (const block of blocks) {
    const name = block.split('\n')[0]!.trim();
    t.match(block, /severity: (critical|warning)/, `${name} severity`);
    t.match(block, /summary: /, `${name} summary`);
    t.match(block, /description: /, `${name} description`);
    const runbook = /runbook_url: docs\/troubleshooting\.md#([\w-]+)/.exec(block)?.[1];
    t.equal(runbook, name.toLowerCase(), `${name} runbook anchor is its own section`);
    t.ok(runbook !== undefined && anchors.has(runbook), `docs/troubleshooting.md has a section ${name}`);
  }
});

t.test('alerts.test.yml has a firing and a quiet case for every alert', async (t) => {
  for (const name of alertNames) {
    const cases = [...unitTests.matchAll(new RegExp(`alertname: ${name}\\n\\s*exp_alerts:( \\[\\])?`, 'g'))];
    t.ok(cases.some((c) => c[1] === undefined), `${name} fires in a test`);
    t.ok(cases.some((c) => c[1] !== undefined), `${name} stays quiet in a test`);
  }
});

const promtool = externalTool('promtool', 'apt-get install prometheus');

t.test('promtool check rules', promtool.testOpts, async (t) => {
  const path = promtool.need(t);
  if (path === undefined) return;
  const r = run(path, ['check', 'rules', 'alerts.yml'], { cwd: dir });
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  t.match(r.stdout, new RegExp(`SUCCESS: ${alertNames.length} rules found`));
});

t.test('promtool test rules: every case in alerts.test.yml passes', promtool.testOpts, async (t) => {
  const path = promtool.need(t);
  if (path === undefined) return;
  const r = run(path, ['test', 'rules', 'alerts.test.yml'], { cwd: dir });
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  t.match(r.stdout, /SUCCESS/);
});
