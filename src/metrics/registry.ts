import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { FastHistogram } from './fast-histogram.js';
import { relayMetrics } from '../relay/metrics.js';
import { natsMetrics } from '../sinks/nats/metrics.js';
import { recoveryMetrics } from '../recovery/metrics.js';
import { booksMetrics } from '../books/manager.js';

/**
 * feedkeeper's metrics, on a registry of its own (never prom-client's global one). Every metric here
 * is documented in docs/metrics.md; test/metrics-docs.test.ts fails when one is missing there.
 * Labels are bounded: no per-symbol or per-stream labels.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectStandardMetrics(registry);
  const r = [registry];
  /**
   * Counted once per message: plain numbers, folded into their counters at scrape time. One per
   * venue (venueMetrics); `hot` itself counts frames of no feed (tests that route by hand).
   */
  const hot = { received: 0 };
  const hotByVenue = new Map<string, { received: number }>();
  const m = {
    registry,
    hot,
    hotByVenue,
    connectionsOpen: new Gauge({ name: 'feedkeeper_connections_open', help: 'WebSocket connections currently open (replacements during a switch-over included).', labelNames: ['venue'] as const, registers: r }),
    connectionsPlanned: new Gauge({ name: 'feedkeeper_connections_planned', help: 'Connections in the plan.', labelNames: ['venue'] as const, registers: r }),
    streamsSubscribed: new Gauge({ name: 'feedkeeper_streams_subscribed', help: 'Streams confirmed subscribed on an open connection.', labelNames: ['venue'] as const, registers: r }),
    universeSymbols: new Gauge({ name: 'feedkeeper_universe_symbols', help: 'Symbols a universe (symbols from exchangeInfo) follows now.', labelNames: ['venue'] as const, registers: r }),
    universeChanges: new Counter({ name: 'feedkeeper_universe_changes_total', help: 'Symbols added to or removed from a universe while running (listings, delistings, reloads).', labelNames: ['venue', 'change'] as const, registers: r }),
    universeRefreshFailures: new Counter({ name: 'feedkeeper_universe_refresh_failures_total', help: 'Instrument list fetches that failed (the universe stays as it was).', labelNames: ['venue'] as const, registers: r }),
    streamSilences: new Counter({ name: 'feedkeeper_stream_silences_total', help: 'Streams with a fixed cadence found silent on a connection that delivers others (reconciled and resubscribed).', labelNames: ['venue'] as const, registers: r }),
    reloads: new Counter({ name: 'feedkeeper_reloads_total', help: 'Config reloads (SIGHUP, POST /admin/reload) by result: applied, unchanged, refused (needs a restart), invalid.', labelNames: ['result'] as const, registers: r }),
    messagesReceived: new Counter({
      name: 'feedkeeper_messages_received_total',
      help: 'Data messages received from the exchange, duplicates from a switch-over included.',
      labelNames: ['venue'] as const,
      registers: r,
      collect() {
        // The hot path counts in a plain number (hot.received); it is folded in at scrape time.
        if (hot.received > 0) {
          this.inc(hot.received);
          hot.received = 0;
        }
        for (const [venue, h] of hotByVenue) {
          if (h.received > 0) {
            this.inc({ venue }, h.received);
            h.received = 0;
          }
        }
      },
    }),
    messagesDuplicate: new Counter({ name: 'feedkeeper_messages_duplicate_total', help: 'Messages dropped because another connection already delivered them (switch-over overlap).', labelNames: ['venue'] as const, registers: r }),
    framesMalformed: new Counter({ name: 'feedkeeper_frames_malformed_total', help: 'Frames that could not be understood (counted, logged, skipped).', labelNames: ['venue'] as const, registers: r }),
    connectionStateChanges: new Counter({ name: 'feedkeeper_connection_state_changes_total', help: 'Connection state transitions, by the state entered.', labelNames: ['state', 'venue'] as const, registers: r }),
    reconnects: new Counter({ name: 'feedkeeper_reconnects_total', help: 'Connections replaced, by reason.', labelNames: ['reason', 'venue'] as const, registers: r }),
    connectionAttempts: new Counter({ name: 'feedkeeper_connection_attempts_total', help: 'WebSocket connection attempts, by outcome.', labelNames: ['outcome', 'venue'] as const, registers: r }),
    attemptBudgetRemaining: new Gauge({ name: 'feedkeeper_connection_attempt_budget_remaining', help: 'Connection attempts left in the current attempt window.', labelNames: ['venue'] as const, registers: r }),
    outgoingMessages: new Counter({ name: 'feedkeeper_outgoing_messages_total', help: 'Messages sent to the exchange (pongs and control messages), by kind.', labelNames: ['kind', 'venue'] as const, registers: r }),
    lastMessageAge: new Gauge({ name: 'feedkeeper_last_message_age_seconds', help: 'Seconds since the oldest-silent open connection last received a frame.', labelNames: ['venue'] as const, registers: r }),
    eventLag: new FastHistogram(
      'feedkeeper_event_lag_seconds',
      'Local receive time minus the exchange event time E.',
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registry,
    ),
    sinkDropped: new Counter({ name: 'feedkeeper_sink_dropped_total', help: 'Messages a secondary sink (relay, nats) could not take, by sink.', labelNames: ['sink'] as const, registers: r }),
    recorderWritten: new Counter({ name: 'feedkeeper_recorder_messages_written_total', help: 'Messages written to the recording.', labelNames: ['venue'] as const, registers: r }),
    recorderDropped: new Counter({ name: 'feedkeeper_recorder_dropped_total', help: 'Messages the recorder refused, by reason (buffer_full, malformed, closed).', labelNames: ['reason', 'venue'] as const, registers: r }),
    recorderWriteErrors: new Counter({ name: 'feedkeeper_recorder_write_errors_total', help: 'Failed writes to the recording (retried while the buffer lasts).', labelNames: ['venue'] as const, registers: r }),
    recorderBufferBytes: new Gauge({ name: 'feedkeeper_recorder_buffer_bytes', help: 'Bytes waiting to be written to the recording.', labelNames: ['venue'] as const, registers: r }),
    recorderBufferLimit: new Gauge({ name: 'feedkeeper_recorder_buffer_limit_bytes', help: 'recorder.maxBufferBytes: past this many buffered bytes, messages are dropped.', labelNames: ['venue'] as const, registers: r }),
    recorderReadsHeld: new Gauge({ name: 'feedkeeper_recorder_reads_held', help: '1 while the venue\'s connections stop reading because the recording is behind (recorder.holdReadsMs).', labelNames: ['venue'] as const, registers: r }),
    recorderReadHolds: new Counter({ name: 'feedkeeper_recorder_read_holds_total', help: 'Times the venue\'s connections stopped reading because the recorder buffer passed half of recorder.maxBufferBytes.', labelNames: ['venue'] as const, registers: r }),
    recorderReadHoldSeconds: new Counter({ name: 'feedkeeper_recorder_read_hold_seconds_total', help: 'Seconds reads were held, by how the hold ended: drained (the disk caught up) or max_hold (recorder.holdReadsMs ran out).', labelNames: ['end', 'venue'] as const, registers: r }),
    recorderCompressedFiles: new Counter({ name: 'feedkeeper_recorder_compressed_files_total', help: 'Closed recording files compressed (recorder.compress).', labelNames: ['venue'] as const, registers: r }),
    recorderCompressInBytes: new Counter({ name: 'feedkeeper_recorder_compress_in_bytes_total', help: 'Bytes of recording files compressed (before compression).', labelNames: ['venue'] as const, registers: r }),
    recorderCompressOutBytes: new Counter({ name: 'feedkeeper_recorder_compress_out_bytes_total', help: 'Bytes of the compressed files written.', labelNames: ['venue'] as const, registers: r }),
    recorderCompressSeconds: new Counter({ name: 'feedkeeper_recorder_compress_seconds_total', help: 'Wall-clock seconds spent compressing recording files (off the event loop).', labelNames: ['venue'] as const, registers: r }),
    recorderCompressFailures: new Counter({ name: 'feedkeeper_recorder_compress_failures_total', help: 'Recording compressions that failed (the file stays uncompressed and is retried).', labelNames: ['venue'] as const, registers: r }),
    gaps: new Counter({ name: 'feedkeeper_gaps_total', help: 'Gaps closed in the ledger, by cause and whether inside a maintenance window.', labelNames: ['cause', 'maintenance', 'venue'] as const, registers: r }),
    gapSeconds: new Counter({ name: 'feedkeeper_gap_seconds_total', help: 'Seconds of gaps closed in the ledger, by cause and maintenance.', labelNames: ['cause', 'maintenance', 'venue'] as const, registers: r }),
    missedMessages: new Counter({ name: 'feedkeeper_missed_messages_total', help: 'Sequenced messages known missed (sum of the ledger missed counts).', labelNames: ['maintenance', 'venue'] as const, registers: r }),
    gapsOpen: new Gauge({ name: 'feedkeeper_gaps_open', help: 'Gaps currently open.', registers: r }),
    maintenanceActive: new Gauge({ name: 'feedkeeper_maintenance_active', help: '1 while a maintenance window is in force (calendar, system status or serverShutdown).', labelNames: ['venue'] as const, registers: r }),
    ledgerWriteErrors: new Counter({ name: 'feedkeeper_ledger_write_errors_total', help: 'Ledger entries that could not be written.', registers: r }),
    listenKeyKeepalives: new Counter({ name: 'feedkeeper_listen_key_keepalives_total', help: 'Listen key keepalive PUTs, by outcome.', labelNames: ['outcome'] as const, registers: r }),
    listenKeyAge: new Gauge({ name: 'feedkeeper_listen_key_age_seconds', help: 'Seconds since the listen key was last created or extended.', registers: r }),
    listenKeyRenewals: new Counter({ name: 'feedkeeper_listen_key_renewals_total', help: 'Listen keys replaced by a new one (expired or unknown to the exchange).', registers: r }),
    restRequests: new Counter({ name: 'feedkeeper_rest_requests_total', help: 'REST requests, by status class.', labelNames: ['status'] as const, registers: r }),
    restUsedWeight: new Gauge({ name: 'feedkeeper_rest_used_weight', help: 'Last X-MBX-USED-WEIGHT-1M reported by the exchange.', registers: r }),
    restPaused: new Gauge({ name: 'feedkeeper_rest_paused', help: '1 while REST calls are paused after a 429 or 418.', registers: r }),
  };
  // The relay's metrics live with the relay (src/relay/metrics.ts) but on this registry from the
  // start, so every scrape and the docs checks see them whether the relay runs or not.
  relayMetrics(registry);
  natsMetrics(registry);
  recoveryMetrics(registry);
  booksMetrics(registry);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * prom-client's default process and runtime metrics under their standard names, no prefix
 * (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`, ...):
 * the names every Node service exports and operators' dashboards and alerts already query. Only
 * feedkeeper's own metrics carry `feedkeeper_`.
 *
 * Left out: the gauges prom-client names `*_total` (`nodejs_active_handles_total`,
 * `nodejs_active_requests_total`, `nodejs_active_resources_total`). `promtool check metrics` flags a
 * non-counter ending in `_total`, and each is only the sum of the per-type gauge that stays
 * (`sum without (type) (nodejs_active_handles)`). The rule, not a list, so a prom-client upgrade that
 * adds another such gauge cannot bring the lint back.
 */
function collectStandardMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const metric of registry.getMetricsAsArray()) {
    // prom-client's typings declare a numeric enum; at run time the type is the string.
    if (metric.name.endsWith('_total') && String(metric.type) !== 'counter') registry.removeSingleMetric(metric.name);
  }
}

/** The metrics that carry a `venue` label (docs/metrics.md): a feed sets it through venueMetrics(). */
export const VENUE_LABELLED = [
  'connectionsOpen',
  'universeSymbols',
  'universeChanges',
  'universeRefreshFailures',
  'streamSilences',
  'connectionsPlanned',
  'streamsSubscribed',
  'messagesDuplicate',
  'framesMalformed',
  'connectionStateChanges',
  'reconnects',
  'connectionAttempts',
  'attemptBudgetRemaining',
  'outgoingMessages',
  'lastMessageAge',
  'recorderWritten',
  'recorderDropped',
  'recorderWriteErrors',
  'recorderBufferBytes',
  'recorderBufferLimit',
  'recorderReadsHeld',
  'recorderReadHolds',
  'recorderReadHoldSeconds',
  'recorderCompressedFiles',
  'recorderCompressInBytes',
  'recorderCompressOutBytes',
  'recorderCompressSeconds',
  'recorderCompressFailures',
  'maintenanceActive',
] as const;

type Labels = Record<string, string | number>;
type Incrementable = { inc(...a: unknown[]): void; dec?(...a: unknown[]): void; set?(...a: unknown[]): void };

/** The metric with `venue` added to every call's labels (`inc()`, `inc(n)`, `inc(labels, n)`, same for dec and set). */
function withVenue<T extends object>(metric: T, venue: string): T {
  const view = Object.create(metric) as T & Incrementable;
  const m = metric as unknown as Incrementable;
  for (const op of ['inc', 'dec', 'set'] as const) {
    const fn = m[op];
    if (typeof fn !== 'function') continue;
    view[op] = (a?: unknown, b?: unknown): void => {
      if (typeof a === 'object' && a !== null) fn.call(metric, { ...(a as Labels), venue }, b);
      else if (a === undefined) fn.call(metric, { venue });
      else fn.call(metric, { venue }, a);
    };
  }
  return view;
}

/**
 * A feed's view of the daemon's metrics: the same registry, with `venue="<venue>"` on every metric
 * of VENUE_LABELLED and its own hot counter. Everything a feed owns (router, supervisor, workers,
 * sessions, recorder, calendar) gets this view, so a dashboard can tell the venues apart.
 */
export function venueMetrics(metrics: Metrics, venue: string): Metrics {
  let hot = metrics.hotByVenue.get(venue);
  if (hot === undefined) metrics.hotByVenue.set(venue, (hot = { received: 0 }));
  const view: Record<string, unknown> = { ...metrics, hot };
  for (const name of VENUE_LABELLED) view[name] = withVenue(metrics[name], venue);
  return view as Metrics;
}
