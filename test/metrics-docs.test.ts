import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { METRIC_LABEL_VALUES } from '../src/metrics/labels.js';
import { createMetrics } from '../src/metrics/registry.js';
import { anchorsOf, checkMetricRefs, registryMetrics } from './metrics-names.js';

/** Every metric the registry exports is documented in docs/metrics.md, with its label values. */
const doc = (name: string): string => readFileSync(fileURLToPath(new URL(`../docs/${name}`, import.meta.url)), 'utf8');
const metricsDoc = doc('metrics.md');

/** The table row documenting a metric: the line that starts with its name. */
function row(name: string): string | undefined {
  return metricsDoc.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
}

t.test('every metric in the registry has a row in docs/metrics.md', async (t) => {
  const names = [...(await registryMetrics()).keys()];
  t.ok(names.length > 50, `${names.length} metrics, prom-client defaults included`);
  const missing = names.filter((n) => row(n) === undefined);
  t.same(missing, [], `add a row to docs/metrics.md for: ${missing.join(', ')}`);
});

t.test('every documented label value is listed in its metric row', async (t) => {
  for (const [name, labels] of Object.entries(METRIC_LABEL_VALUES)) {
    const r = row(name) ?? '';
    for (const [label, values] of Object.entries(labels)) {
      t.match(r, `\`${label}\``, `${name}: label ${label}`);
      const missing = (values as readonly string[]).filter((v) => !r.includes(`\`${v}\``));
      t.same(missing, [], `${name}{${label}}: values missing from the row`);
    }
  }
});

t.test('labels.ts names exactly the labels each metric has', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const labelNames = [...((m.registry.getSingleMetric(metric.name) as unknown as { labelNames?: string[] }).labelNames ?? [])].sort();
    const listed = Object.keys((METRIC_LABEL_VALUES as Record<string, Record<string, unknown>>)[metric.name] ?? {}).sort();
    t.same(listed, labelNames, `${metric.name}: labels`);
  }
});

t.test('the docs name no metric the registry lacks', async (t) => {
  const known = await registryMetrics();
  for (const file of ['metrics.md', 'troubleshooting.md', 'operations.md']) {
    t.same(checkMetricRefs(doc(file), known), [], `docs/${file}`);
  }
});

t.test('the checkers catch what they are for', async (t) => {
  const known = await registryMetrics();
  t.same(
    checkMetricRefs('feedkeeper_nope + feedkeeper_gaps_total{maintenance="maybe"} + feedkeeper_event_lag_seconds_bucket + feedkeeper_gaps_open_bucket', known),
    ['unknown metric feedkeeper_nope', 'feedkeeper_gaps_total{maintenance="maybe"}: not one of true, false', 'unknown metric feedkeeper_gaps_open_bucket'],
  );
  t.same([...anchorsOf('### FeedkeeperFeedDown\n## rate_limited (1008, 429)\n### `missed`')], ['feedkeeperfeeddown', 'rate_limited-1008-429', 'missed']);
});
