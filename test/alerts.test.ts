import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { anchorsOf, checkMetricRefs, registryMetrics } from './metrics-names.js';
import { promqlMetricNames, scrapeLiveDaemon, scrapedNames } from './metrics-scrape.js';
import { externalTool, run } from './metrics-tool.js';

const dir = fileURLToPath(new URL('../deploy/prometheus/', import.meta.url));
const rules = readFileSync(`${dir}alerts.yml`, 'utf8');
const unitTests = readFileSync(`${dir}alerts.test.yml`, 'utf8');
const troubleshooting = readFileSync(fileURLToPath(new URL('../docs/troubleshooting.md', import.meta.url)), 'utf8');
const alertNames = [...rules.matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((m) => m[1]!);

/** Each rule's `expr:`, one line or a folded block (`>-` and the more indented lines under it). */
function ruleExprs(yaml: string): Array<{ alert: string; expr: string }> {
  const out: Array<{ alert: string; expr: string }> = [];
  const lines = yaml.split('\n');
  let alert = '';
  for (let i = 0; i < lines.length; i++) {
    const name = /^\s*- alert: (\w+)/.exec(lines[i]!);
    if (name !== null) alert = name[1]!;
    const m = /^(\s*)expr: (.*)$/.exec(lines[i]!);
    if (m === null) continue;
    if (!/^[>|]-?$/.test(m[2]!.trim())) {
      out.push({ alert, expr: m[2]! });
      continue;
    }
    const body: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > m[1]!.length)) body.push(lines[++i]!.trim());
    out.push({ alert, expr: body.join(' ').trim() });
  }
  return out;
}
const exprs = ruleExprs(rules);

t.test('the rules refer only to metrics and label values the registry has', async (t) => {
  t.ok(alertNames.length >= 10, `${alertNames.length} alerts`);
  const exprs = rules.replace(/^\s*#.*$/gm, '');
  t.same(checkMetricRefs(exprs, await registryMetrics()), []);
});

t.test('every metric a rule selects is in a live scrape of the daemon, under that name', async (t) => {
  t.equal(exprs.length, alertNames.length, 'one expr per alert');
  const scraped = scrapedNames(await scrapeLiveDaemon(t));
  for (const { alert, expr } of exprs) {
    // `up` is written by Prometheus for every target, never part of a scrape.
    const names = promqlMetricNames(expr).filter((n) => n !== 'up');
    t.same(names.filter((n) => !scraped.has(n)), [], `${alert}: ${expr}`);
  }
  const selected = exprs.flatMap(({ expr }) => promqlMetricNames(expr));
  for (const name of ['process_start_time_seconds', 'nodejs_eventloop_lag_p99_seconds']) t.ok(selected.includes(name), `a rule on ${name}`);
});

t.test('rules on standard names (process_*, nodejs_*, up) select job="feedkeeper": other targets export them too', async (t) => {
  let seen = 0;
  for (const { alert, expr } of exprs) {
    for (const m of expr.matchAll(/(?<![\w:])((?:process|nodejs)_\w+|up)(\{[^}]*\})?(?![\w:(])/g)) {
      seen++;
      t.match(m[2] ?? '', /job="feedkeeper"/, `${alert}: ${m[0]}`);
    }
  }
  t.ok(seen >= 3, `${seen} selectors on standard names`);
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
