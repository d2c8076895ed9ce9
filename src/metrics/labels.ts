import { Counter, type Registry } from 'prom-client';
import type { RotateReason, WorkerState } from '../connection/worker.js';
import { GAP_CAUSES } from '../ledger/types.js';
import { venues } from '../venues/index.js';
import { RELAY_LABEL_VALUES } from '../relay/metrics.js';
import { BACKFILL_OUTCOMES, BACKFILL_STATUSES } from '../recovery/metrics.js';
import { RESYNC_REASONS } from '../books/manager.js';
import type { GapCause as SessionEndCause } from '../pipeline/stream-router.js';
import type { DropReason } from '../recorder/recorder.js';
import { HOLD_ENDS } from '../pipeline/read-hold.js';

/** `venue`: every registered venue (src/venues/index.ts); a feed's metrics carry its own. */
const VENUES = [...venues.keys()];

/** The causes the gap metrics count: a secondary sink's drops (`sink_dropped`) are no gap of the recording. */
const COUNTED_CAUSES = GAP_CAUSES.filter((c) => c !== 'sink_dropped');

/**
 * The values each metric label takes, as the code that increments it sets them (registry.ts keeps
 * labels bounded: no per-symbol or per-stream label). docs/metrics.md lists each value in its
 * metric's row and test/metrics-docs.test.ts checks it; the alert and dashboard tests check that
 * every `label="value"` matcher uses one of them. Where the code's own type exists, `satisfies`
 * keeps this list from naming a value the code cannot produce.
 */
export const METRIC_LABEL_VALUES = {
  feedkeeper_connections_open: { venue: VENUES },
  feedkeeper_connections_planned: { venue: VENUES },
  feedkeeper_streams_subscribed: { venue: VENUES },
  feedkeeper_messages_received_total: { venue: VENUES },
  feedkeeper_messages_duplicate_total: { venue: VENUES },
  feedkeeper_frames_malformed_total: { venue: VENUES },
  feedkeeper_connection_attempt_budget_remaining: { venue: VENUES },
  feedkeeper_last_message_age_seconds: { venue: VENUES },
  feedkeeper_recorder_messages_written_total: { venue: VENUES },
  feedkeeper_recorder_write_errors_total: { venue: VENUES },
  feedkeeper_recorder_buffer_bytes: { venue: VENUES },
  feedkeeper_recorder_buffer_limit_bytes: { venue: VENUES },
  feedkeeper_recorder_reads_held: { venue: VENUES },
  feedkeeper_recorder_read_holds_total: { venue: VENUES },
  feedkeeper_recorder_read_hold_seconds_total: { end: HOLD_ENDS, venue: VENUES },
  feedkeeper_recorder_compressed_files_total: { venue: VENUES },
  feedkeeper_recorder_compress_in_bytes_total: { venue: VENUES },
  feedkeeper_recorder_compress_out_bytes_total: { venue: VENUES },
  feedkeeper_recorder_compress_seconds_total: { venue: VENUES },
  feedkeeper_recorder_compress_failures_total: { venue: VENUES },
  feedkeeper_maintenance_active: { venue: VENUES },
  feedkeeper_universe_symbols: { venue: VENUES },
  feedkeeper_universe_changes_total: { change: ['added', 'removed'], venue: VENUES },
  feedkeeper_universe_refresh_failures_total: { venue: VENUES },
  feedkeeper_stream_silences_total: { venue: VENUES },
  feedkeeper_reloads_total: { result: ['applied', 'unchanged', 'refused', 'invalid'] },
  feedkeeper_connection_state_changes_total: {
    // 'idle' is only the state before the first transition: never entered, never counted.
    state: ['connecting', 'open', 'rotating', 'backoff', 'closed'] satisfies WorkerState[],
    venue: VENUES,
  },
  feedkeeper_reconnects_total: {
    // A planned switch-over counts its trigger (lifetime, server_shutdown); a lost connection its end cause.
    reason: ['lifetime', 'server_shutdown', 'listen_key_renewed', 'silent_stream', 'server_close', 'network_error', 'stale', 'rate_limited'] satisfies Array<
      SessionEndCause | RotateReason
    >,
    venue: VENUES,
  },
  feedkeeper_connection_attempts_total: {
    // http_<status> for any upgrade answered with a status instead of 101; these two matter most.
    outcome: ['ok', 'error', 'http_429', 'http_418'],
    venue: VENUES,
  },
  feedkeeper_outgoing_messages_total: {
    // request: a user-data protocol message (WebSocket API subscribe).
    // ping: a venue's client heartbeat (Bybit, OKX); unsubscribe: a live change (relay, universe).
    kind: ['pong', 'ping', 'subscribe', 'unsubscribe', 'request'],
    venue: VENUES,
  },
  feedkeeper_sink_dropped_total: {
    sink: ['relay', 'nats'],
  },
  feedkeeper_recorder_dropped_total: {
    reason: ['buffer_full', 'malformed', 'closed'] satisfies DropReason[],
    venue: VENUES,
  },
  feedkeeper_gaps_total: {
    cause: COUNTED_CAUSES,
    maintenance: ['true', 'false'],
    venue: VENUES,
  },
  feedkeeper_gap_seconds_total: {
    cause: COUNTED_CAUSES,
    maintenance: ['true', 'false'],
    venue: VENUES,
  },
  feedkeeper_missed_messages_total: {
    maintenance: ['true', 'false'],
    venue: VENUES,
  },
  feedkeeper_listen_key_keepalives_total: {
    outcome: ['ok', 'error', 'unknown_key'],
  },
  feedkeeper_rest_requests_total: {
    status: ['2xx', '4xx', '429', '418', '5xx', 'error'],
  },
  feedkeeper_backfill_requests_total: { venue: VENUES, status: BACKFILL_STATUSES },
  feedkeeper_backfill_weight_used_total: { venue: VENUES },
  feedkeeper_backfill_messages_recovered_total: { venue: VENUES },
  feedkeeper_backfill_ranges_total: { venue: VENUES, outcome: BACKFILL_OUTCOMES },
  feedkeeper_backfill_ranges_open: { venue: VENUES },
  feedkeeper_book_resyncs_total: { venue: VENUES, reason: RESYNC_REASONS },
  feedkeeper_books_synced: { venue: VENUES },
  feedkeeper_book_snapshot_requests_total: { venue: VENUES },
  ...RELAY_LABEL_VALUES,
} as const satisfies Record<string, Record<string, readonly string[]>>;

/**
 * Creates every labelled counter series at 0. A counter series that first appears at 1 hides that
 * first increment from increase() and rate() (there is no earlier sample to compare it with), so the
 * first gap outside maintenance would not fire its alert. Idempotent; startHttpServer calls it.
 */
export function initLabelledSeries(registry: Registry, venues: readonly string[] = []): void {
  for (const [name, labels] of Object.entries(METRIC_LABEL_VALUES)) {
    const metric = registry.getSingleMetric(name);
    if (!(metric instanceof Counter)) continue;
    // A venue-labelled counter gets its series for each of the daemon's venues.
    const byVenue = (metric as unknown as { labelNames: readonly string[] }).labelNames.includes('venue');
    const all = byVenue && venues.length > 0 ? { ...labels, venue: venues } : labels;
    for (const combo of combinations(all)) metric.inc(combo, 0);
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
