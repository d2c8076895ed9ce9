import { startStack, until } from './helpers/stack.js';

/**
 * A live scrape: the real daemon (simulator on loopback), streaming, its /metrics fetched over HTTP
 * as Prometheus would. The operations tests check the dashboard, the alert rules and promtool
 * against this text, not against a registry built by hand.
 */
export async function scrapeLiveDaemon(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const { daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20, tickMs: 50 },
    config: { symbols: ['BTCUSDT'], streams: ['trade', 'bookTicker'] },
  });
  const flowing = await until(() => (daemon.router.stream('btcusdt@trade')?.received ?? 0) > 3, 8000);
  if (!flowing) throw new Error('the daemon received no trades from the simulator within 8 s');
  const res = await fetch(`${daemon.http!.url}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
}

/**
 * Every series name a scrape exposes: each sample's name, and each `# TYPE` family with the series
 * its type implies (a histogram's `_bucket`, `_sum`, `_count`), so that a family declared without a
 * sample yet (`nodejs_gc_duration_seconds` before the first GC) still counts as present.
 */
export function scrapedNames(body: string): Set<string> {
  const names = new Set<string>();
  for (const line of body.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)$/.exec(line);
    if (type !== null) {
      const [, family, kind] = type;
      names.add(family!);
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(family! + s);
      if (kind === 'summary') for (const s of ['_sum', '_count']) names.add(family! + s);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample !== null) names.add(sample[1]!);
  }
  return names;
}

/** PromQL words that are not metric names: aggregations (before `by`/`without`), keywords, numbers. */
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2',
  'inf', 'nan',
]);

/**
 * The metric names a PromQL expression selects (`rate(x_total{a="b"}[5m]) / on (i) y` → x_total, y).
 * Strings, label matchers, ranges and the label lists of by/without/on/ignoring/group_* are dropped
 * first; what is left that is not a function call, a keyword or a number is a metric name.
 */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1 ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const word = m[1]!;
    if (m[2] !== undefined || PROMQL_WORDS.has(word.toLowerCase())) continue;
    if (!names.includes(word)) names.push(word);
  }
  return names;
}
