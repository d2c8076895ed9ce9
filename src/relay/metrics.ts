import { Counter, Gauge, type Registry } from 'prom-client';
import { METHODS } from './protocol.js';

/** Why the relay closed a client it had accepted (`feedkeeper_relay_clients_dropped_total{reason}`). */
export const DROP_REASONS = ['slow', 'pong_timeout', 'rate_limited', 'payload_too_large', 'protocol_error', 'internal_error'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Why an upgrade was answered with an HTTP status instead of 101 (`feedkeeper_relay_refused_total{reason}`). */
export const REFUSE_REASONS = ['not_allowed', 'not_found', 'bad_request', 'max_clients', 'upstream_refused', 'bad_handshake', 'closing'] as const;
export type RefuseReason = (typeof REFUSE_REASONS)[number];

/** `outcome` of a control request: answered with a result, with an error (codes 0–3), or refused upstream. */
export const CONTROL_OUTCOMES = ['ok', 'error', 'refused'] as const;
export type ControlOutcome = (typeof CONTROL_OUTCOMES)[number];

/**
 * Every label value the relay's metrics take, in the shape of src/metrics/labels.ts
 * METRIC_LABEL_VALUES (to be spread into it where the relay's metrics join createMetrics()).
 */
export const RELAY_LABEL_VALUES = {
  feedkeeper_relay_clients_dropped_total: { reason: DROP_REASONS },
  feedkeeper_relay_refused_total: { reason: REFUSE_REASONS },
  feedkeeper_relay_control_requests_total: { method: [...METHODS, 'invalid'] as const, outcome: CONTROL_OUTCOMES },
} as const;

/** What each relay on a registry reports at scrape time. */
export interface RelaySource {
  clientCount(): number;
  streamCount(): number;
  maxBufferedBytes(): number;
}

export interface RelayMetrics {
  clientsConnected: Gauge;
  streams: Gauge;
  clientBufferMax: Gauge;
  messagesSent: Counter;
  bytesSent: Counter;
  gapNotices: Counter;
  clientsDropped: Counter<'reason'>;
  refused: Counter<'reason'>;
  controlRequests: Counter<'method' | 'outcome'>;
  /** The hot path counts in plain numbers, folded into their counters at scrape time. */
  hot: { messages: number; bytes: number };
  sources: Set<RelaySource>;
}

const byRegistry = new WeakMap<Registry, RelayMetrics>();

/**
 * The relay's metrics on `registry`, created on first use: one set per registry, however many relays
 * (or a createMetrics() that registers them up front) ask for it. Labels are bounded: no client, no
 * stream in a label. Every labelled series starts at 0.
 */
export function relayMetrics(registry: Registry): RelayMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const r = [registry];
  const hot = { messages: 0, bytes: 0 };
  const sources = new Set<RelaySource>();
  const sum = (f: (s: RelaySource) => number): number => {
    let n = 0;
    for (const s of sources) n += f(s);
    return n;
  };
  const m: RelayMetrics = {
    hot,
    sources,
    clientsConnected: new Gauge({
      name: 'feedkeeper_relay_clients_connected',
      help: 'Relay clients connected now.',
      registers: r,
      collect() {
        this.set(sum((s) => s.clientCount()));
      },
    }),
    streams: new Gauge({
      name: 'feedkeeper_relay_streams',
      help: 'Streams at least one relay client is subscribed to.',
      registers: r,
      collect() {
        this.set(sum((s) => s.streamCount()));
      },
    }),
    clientBufferMax: new Gauge({
      name: 'feedkeeper_relay_client_buffer_max_bytes',
      help: 'The largest send buffer of any relay client now (bytes waiting to be sent).',
      registers: r,
      collect() {
        let max = 0;
        for (const s of sources) max = Math.max(max, s.maxBufferedBytes());
        this.set(max);
      },
    }),
    messagesSent: new Counter({
      name: 'feedkeeper_relay_messages_sent_total',
      help: 'Data messages sent to relay clients (one per client per message).',
      registers: r,
      collect() {
        if (hot.messages > 0) {
          this.inc(hot.messages);
          hot.messages = 0;
        }
      },
    }),
    bytesSent: new Counter({
      name: 'feedkeeper_relay_bytes_sent_total',
      help: 'Bytes of data messages sent to relay clients (payloads, before WebSocket framing).',
      registers: r,
      collect() {
        if (hot.bytes > 0) {
          this.inc(hot.bytes);
          hot.bytes = 0;
        }
      },
    }),
    gapNotices: new Counter({ name: 'feedkeeper_relay_gap_notices_total', help: 'Gap notices sent to relay clients that asked for them.', registers: r }),
    clientsDropped: new Counter({
      name: 'feedkeeper_relay_clients_dropped_total',
      help: 'Relay clients closed by the relay, by reason.',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    refused: new Counter({
      name: 'feedkeeper_relay_refused_total',
      help: 'Relay connections refused before the upgrade (an HTTP status instead of 101), by reason.',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    controlRequests: new Counter({
      name: 'feedkeeper_relay_control_requests_total',
      help: 'Control messages from relay clients, by method and outcome.',
      labelNames: ['method', 'outcome'] as const,
      registers: r,
    }),
  };
  for (const reason of DROP_REASONS) m.clientsDropped.inc({ reason }, 0);
  for (const reason of REFUSE_REASONS) m.refused.inc({ reason }, 0);
  for (const method of RELAY_LABEL_VALUES.feedkeeper_relay_control_requests_total.method) {
    for (const outcome of CONTROL_OUTCOMES) m.controlRequests.inc({ method, outcome }, 0);
  }
  byRegistry.set(registry, m);
  return m;
}
