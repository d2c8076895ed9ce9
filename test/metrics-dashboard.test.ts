import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkMetricRefs, registryMetrics } from './metrics-names.js';
import { promqlMetricNames, scrapeLiveDaemon, scrapedNames } from './metrics-scrape.js';
import { externalTool, run } from './metrics-tool.js';

/** deploy/grafana/feedkeeper-dashboard.json: valid JSON, a data source variable, real metrics only. */
interface Target {
  expr: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
  annotations: { list: Array<{ expr?: string }> };
}

const text = readFileSync(fileURLToPath(new URL('../deploy/grafana/feedkeeper-dashboard.json', import.meta.url)), 'utf8');
const dashboard = JSON.parse(text) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');
const exprs = [
  ...queryPanels.flatMap((p) => (p.targets ?? []).map((x) => ({ where: p.title, expr: x.expr }))),
  ...dashboard.annotations.list.filter((a) => a.expr !== undefined).map((a) => ({ where: 'annotation', expr: a.expr! })),
];
/** The variables' queries: `label_values(<selector>, <label>)`, the selector being PromQL. */
const variableSelectors = dashboard.templating.list
  .filter((v) => v.type === 'query')
  .map((v) => {
    const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    return { where: `variable ${v.name}`, expr: /^label_values\((.+),\s*\w+\)$/.exec(q)?.[1] ?? q };
  });

t.test('a Prometheus data source variable used by every panel', async (t) => {
  const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
  t.ok(ds, 'a datasource variable');
  t.equal(ds?.query, 'prometheus');
  for (const p of queryPanels) {
    t.equal(p.datasource?.uid, `\${${ds?.name}}`, `${p.title}: panel data source`);
    for (const x of p.targets ?? []) t.equal(x.datasource?.uid, `\${${ds?.name}}`, `${p.title}: target data source`);
  }
  t.equal(dashboard.uid, 'feedkeeper');
});

t.test('panels: unique ids, inside the 24-column grid, not overlapping', async (t) => {
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length);
  const owner = new Map<string, string>();
  const problems: string[] = [];
  for (const p of dashboard.panels) {
    if (p.gridPos.x + p.gridPos.w > 24) problems.push(`${p.title} is wider than the grid`);
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        const other = owner.get(`${x},${y}`);
        if (other !== undefined) problems.push(`${p.title} overlaps ${other} at ${x},${y}`);
        owner.set(`${x},${y}`, p.title);
      }
    }
  }
  t.same(problems, []);
});

t.test('every expression refers only to metrics and label values the registry has', async (t) => {
  const known = await registryMetrics();
  t.ok(exprs.length > 20, `${exprs.length} expressions`);
  for (const { where, expr } of exprs) t.same(checkMetricRefs(expr, known), [], `${where}: ${expr}`);
});

t.test('every feedkeeper metric is on the dashboard', async (t) => {
  const known = await registryMetrics();
  const all = exprs.map((e) => e.expr).join('\n');
  const ours = [...known.keys()].filter((n) => n.startsWith('feedkeeper_'));
  const absent = ours.filter((n) => !new RegExp(`\\b${n}(_bucket|_sum|_count)?\\b`).test(all));
  t.same(absent, [], 'metrics without a panel');
});

const promtool = externalTool('promtool', 'apt-get install prometheus');

t.test('every expression parses as PromQL (promtool)', promtool.testOpts, async (t) => {
  const bin = promtool.need(t);
  if (bin === undefined) return;
  // Grafana's variables replaced by what they expand to.
  const rules = exprs.map(({ expr }, i) => {
    const promql = expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*').replaceAll('$job', '.*');
    return `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(promql)}`;
  });
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-dash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
  const r = run(bin, ['check', 'rules', join(dir, 'rules.yml')]);
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

t.test("every metric a query or variable selects is in a live scrape of the daemon, under that name", async (t) => {
  const scraped = scrapedNames(await scrapeLiveDaemon(t));
  t.ok(scraped.has('process_cpu_seconds_total') && scraped.has('process_resident_memory_bytes'), 'the scrape has the standard process metrics');
  const selected = new Set<string>();
  for (const { where, expr } of [...exprs, ...variableSelectors]) {
    const names = promqlMetricNames(expr);
    t.ok(names.length > 0, `${where}: selects a metric: ${expr}`);
    for (const n of names) selected.add(n);
    t.same(names.filter((n) => !scraped.has(n)), [], `${where}: ${expr}`);
  }
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
    t.ok(selected.has(name), `the dashboard queries ${name}`);
  }
});

t.test('every selector is scoped to $job and $instance (standard names are exported by other targets too)', async (t) => {
  for (const { where, expr } of exprs) {
    for (const name of promqlMetricNames(expr)) {
      for (const m of expr.matchAll(new RegExp(`(?<![\\w:])${name}(\\{[^}]*\\})?(?![\\w:(])`, 'g'))) {
        const matchers = m[1] ?? '';
        t.ok(matchers.includes('job=~"$job"') && matchers.includes('instance=~"$instance"'), `${where}: ${name}${matchers}`);
      }
    }
  }
  const instance = variableSelectors.find((v) => v.where === 'variable instance');
  t.match(instance?.expr, /job=~"\$job"/, 'the instance variable lists the chosen jobs\' instances');
  const job = dashboard.templating.list.find((v) => v.name === 'job') as { allValue?: string } | undefined;
  t.ok(job !== undefined && job.allValue === undefined, "the job variable's All is its own values, never .*");
});

t.test('promqlMetricNames finds the metrics and only them', async (t) => {
  t.same(
    promqlMetricNames(
      'histogram_quantile(0.99, sum by (instance, le) (rate(a_seconds_bucket{x="y{z}"}[$__rate_interval]))) / on (instance) group_left () clamp_min(b_total offset 5m, 1e3) > bool 0 unless max without (kind) (c:rec)',
    ),
    ['a_seconds_bucket', 'b_total', 'c:rec'],
  );
  t.same(promqlMetricNames('up{job="feedkeeper"} == 0'), ['up']);
  t.same([...scrapedNames('# HELP h x\n# TYPE h histogram\n# TYPE g gauge\ng{a="1"} 2\nc_total 3\n')].sort(), ['c_total', 'g', 'h', 'h_bucket', 'h_count', 'h_sum']);
});
