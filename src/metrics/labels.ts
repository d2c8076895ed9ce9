import { Counter, type Registry } from 'prom-client';
import type { RotateReason, WorkerState } from '../connection/worker.js';
import { GAP_CAUSES } from '../ledger/types.js';
import type { GapCause as SessionEndCause } from '../pipeline/stream-router.js';
import type { DropReason } from '../recorder/recorder.js';

/**
 * The values each metric label takes, as the code that increments it sets them (registry.ts keeps
 * labels bounded: no per-symbol or per-stream label). docs/metrics.md lists each value in its
 * metric's row and test/metrics-docs.test.ts checks it; the alert and dashboard tests check that
 * every `label="value"` matcher uses one of them. Where the code's own type exists, `satisfies`
 * keeps this list from naming a value the code cannot produce.
 */
export const METRIC_LABEL_VALUES = {
  feedkeeper_connection_state_changes_total: {
    // 'idle' is only the state before the first transition: never entered, never counted.
    state: ['connecting', 'open', 'rotating', 'backoff', 'closed'] satisfies WorkerState[],
  },
  feedkeeper_reconnects_total: {
    // A planned switch-over counts its trigger (lifetime, server_shutdown); a lost connection its end cause.
    reason: ['lifetime', 'server_shutdown', 'listen_key_renewed', 'server_close', 'network_error', 'stale', 'rate_limited'] satisfies Array<
      SessionEndCause | RotateReason
    >,
  },
  feedkeeper_connection_attempts_total: {
    // http_<status> for any upgrade answered with a status instead of 101; these two matter most.
    outcome: ['ok', 'error', 'http_429', 'http_418'],
  },
  feedkeeper_outgoing_messages_total: {
    // request: a user-data protocol message (WebSocket API subscribe).
    kind: ['pong', 'subscribe', 'request'],
  },
  feedkeeper_recorder_dropped_total: {
    reason: ['buffer_full', 'malformed', 'closed'] satisfies DropReason[],
  },
  feedkeeper_gaps_total: {
    cause: GAP_CAUSES,
    maintenance: ['true', 'false'],
  },
  feedkeeper_gap_seconds_total: {
    cause: GAP_CAUSES,
    maintenance: ['true', 'false'],
  },
  feedkeeper_missed_messages_total: {
    maintenance: ['true', 'false'],
  },
  feedkeeper_listen_key_keepalives_total: {
    outcome: ['ok', 'error', 'unknown_key'],
  },
  feedkeeper_rest_requests_total: {
    status: ['2xx', '4xx', '429', '418', '5xx', 'error'],
  },
} as const satisfies Record<string, Record<string, readonly string[]>>;

/**
 * Creates every labelled counter series at 0. A counter series that first appears at 1 hides that
 * first increment from increase() and rate() (there is no earlier sample to compare it with), so the
 * first gap outside maintenance would not fire its alert. Idempotent; startHttpServer calls it.
 */
export function initLabelledSeries(registry: Registry): void {
  for (const [name, labels] of Object.entries(METRIC_LABEL_VALUES)) {
    const metric = registry.getSingleMetric(name);
    if (!(metric instanceof Counter)) continue;
    for (const combo of combinations(labels)) metric.inc(combo, 0);
  }
}

/** Every combination of one value per label: {a: [1, 2], b: [x]} → [{a: 1, b: x}, {a: 2, b: x}]. */
export function combinations(labels: Record<string, readonly string[]>): Array<Record<string, string>> {
  let out: Array<Record<string, string>> = [{}];
  for (const [label, values] of Object.entries(labels)) {
    out = out.flatMap((partial) => values.map((v) => ({ ...partial, [label]: v })));
  }
  return out;
}
