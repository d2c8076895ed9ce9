import { Counter, Gauge, type Registry } from 'prom-client';

/** `status` of feedkeeper_backfill_requests_total: the answer's class, or no answer. */
export const BACKFILL_STATUSES = ['2xx', '4xx', '429', '418', '5xx', 'error'] as const;
export type BackfillStatus = (typeof BACKFILL_STATUSES)[number];

/** `outcome` of feedkeeper_backfill_ranges_total: every ID recovered, or part of the range no longer served. */
export const BACKFILL_OUTCOMES = ['complete', 'partial'] as const;
export type BackfillOutcome = (typeof BACKFILL_OUTCOMES)[number];

export interface RecoveryMetrics {
  requests: Counter<'venue' | 'status'>;
  weight: Counter<'venue'>;
  recovered: Counter<'venue'>;
  ranges: Counter<'venue' | 'outcome'>;
  open: Gauge<'venue'>;
}

const byRegistry = new WeakMap<Registry, RecoveryMetrics>();

/** The backfill's metrics on `registry` (one set per registry, created on first use). docs/metrics.md. */
export function recoveryMetrics(registry: Registry): RecoveryMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const r = [registry];
  const m: RecoveryMetrics = {
    requests: new Counter({ name: 'feedkeeper_backfill_requests_total', help: 'REST requests made by the backfill, by status class.', labelNames: ['venue', 'status'] as const, registers: r }),
    weight: new Counter({ name: 'feedkeeper_backfill_weight_used_total', help: 'Request weight spent by the backfill (the endpoints\' weights, answered requests only).', labelNames: ['venue'] as const, registers: r }),
    recovered: new Counter({ name: 'feedkeeper_backfill_messages_recovered_total', help: 'Missed messages fetched over REST and written to the recording.', labelNames: ['venue'] as const, registers: r }),
    ranges: new Counter({ name: 'feedkeeper_backfill_ranges_total', help: 'Missed ranges the backfill finished, by outcome (complete, partial: part no longer served).', labelNames: ['venue', 'outcome'] as const, registers: r }),
    open: new Gauge({ name: 'feedkeeper_backfill_ranges_open', help: 'Missed ranges waiting for or under backfill.', labelNames: ['venue'] as const, registers: r }),
  };
  byRegistry.set(registry, m);
  return m;
}
