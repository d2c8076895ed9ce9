import { METRIC_LABEL_VALUES } from '../src/metrics/labels.js';
import { createMetrics } from '../src/metrics/registry.js';

/** Every metric name the registry exports (ours and prom-client's defaults, unprefixed), with its type. */
export async function registryMetrics(): Promise<Map<string, string>> {
  const m = createMetrics();
  const all = await m.registry.getMetricsAsJSON();
  return new Map(all.map((x) => [x.name, String(x.type)]));
}

/**
 * Problems with the metrics a PromQL text or a document refers to, feedkeeper's own (`feedkeeper_*`)
 * and the standard process and runtime ones (`process_*`, `nodejs_*`): names the registry does not
 * export (histogram series _bucket/_sum/_count allowed), and `label="value"` matchers whose value is
 * not one of the label's bounded values (src/metrics/labels.ts).
 */
export function checkMetricRefs(text: string, known: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const match of text.matchAll(/\b((?:feedkeeper|process|nodejs)_[a-z0-9_]+)(\{[^}]*\})?/g)) {
    const ref = match[1]!;
    if (ref.endsWith('_')) continue; // a prefix named in prose (feedkeeper_relay_, nodejs_active_*), not a metric
    const base = known.has(ref) ? ref : ref.replace(/_(bucket|sum|count)$/, '');
    if (!known.has(base) || (base !== ref && known.get(base) !== 'histogram')) {
      problems.push(`unknown metric ${ref}`);
      continue;
    }
    const bounded = (METRIC_LABEL_VALUES as Record<string, Record<string, readonly string[]>>)[base];
    for (const [, label, value] of (match[2] ?? '').matchAll(/(\w+)\s*=\s*"([^"]*)"/g)) {
      const allowed = bounded?.[label!];
      if (allowed !== undefined && !allowed.includes(value!)) problems.push(`${base}{${label}="${value}"}: not one of ${allowed.join(', ')}`);
    }
  }
  return problems;
}

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of markdown.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)) {
    anchors.add(
      heading!
        .toLowerCase()
        .replace(/`/g, '')
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return anchors;
}
