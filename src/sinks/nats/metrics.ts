import { Counter, Gauge, type Registry } from 'prom-client';

/** What each NATS sink on a registry reports at scrape time. */
export interface NatsSource {
  connected(): boolean;
  pendingMessages(): number;
  pendingBytes(): number;
  inFlight(): number;
  /** sinks.nats.maxBufferBytes. */
  bufferLimitBytes(): number;
}

export interface NatsMetrics {
  connected: Gauge;
  pendingMessages: Gauge;
  pendingBytes: Gauge;
  inFlight: Gauge;
  bufferLimitBytes: Gauge;
  acked: Counter;
  duplicates: Counter;
  publishFailures: Counter;
  gapEntriesDropped: Counter;
  /** Counted per ack in plain numbers, folded into their counters at scrape time. */
  hot: { acked: number; duplicates: number };
  sources: Set<NatsSource>;
}

const byRegistry = new WeakMap<Registry, NatsMetrics>();

/**
 * The NATS sink's metrics on `registry`, created on first use (createMetrics registers them up
 * front, so every scrape and the docs checks see them whether the sink runs or not). No labels.
 */
export function natsMetrics(registry: Registry): NatsMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const r = [registry];
  const hot = { acked: 0, duplicates: 0 };
  const sources = new Set<NatsSource>();
  const sum = (f: (s: NatsSource) => number): number => {
    let n = 0;
    for (const s of sources) n += f(s);
    return n;
  };
  const m: NatsMetrics = {
    hot,
    sources,
    connected: new Gauge({
      name: 'feedkeeper_nats_connected',
      help: '1 while the NATS sink is connected to a broker (0 when enabled and down; absent sink: 0).',
      registers: r,
      collect() {
        this.set(sum((s) => (s.connected() ? 1 : 0)));
      },
    }),
    pendingMessages: new Gauge({
      name: 'feedkeeper_nats_pending_messages',
      help: 'Messages and ledger entries not yet acknowledged by JetStream (in flight and buffered).',
      registers: r,
      collect() {
        this.set(sum((s) => s.pendingMessages()));
      },
    }),
    pendingBytes: new Gauge({
      name: 'feedkeeper_nats_pending_bytes',
      help: 'Bytes not yet acknowledged by JetStream; sinks.nats.maxBufferBytes is the limit.',
      registers: r,
      collect() {
        this.set(sum((s) => s.pendingBytes()));
      },
    }),
    inFlight: new Gauge({
      name: 'feedkeeper_nats_inflight',
      help: 'Publishes awaiting their JetStream ack (at most sinks.nats.maxInflight).',
      registers: r,
      collect() {
        this.set(sum((s) => s.inFlight()));
      },
    }),
    bufferLimitBytes: new Gauge({
      name: 'feedkeeper_nats_buffer_limit_bytes',
      help: 'sinks.nats.maxBufferBytes while the NATS sink is enabled (0 when it is not): the limit of feedkeeper_nats_pending_bytes.',
      registers: r,
      collect() {
        this.set(sum((s) => s.bufferLimitBytes()));
      },
    }),
    acked: new Counter({
      name: 'feedkeeper_nats_acked_total',
      help: 'Publishes acknowledged by JetStream, duplicates included.',
      registers: r,
      collect() {
        if (hot.acked > 0) {
          this.inc(hot.acked);
          hot.acked = 0;
        }
      },
    }),
    duplicates: new Counter({
      name: 'feedkeeper_nats_duplicates_total',
      help: 'Publishes JetStream acknowledged as duplicates (its Nats-Msg-Id was already in the stream: another collector, or a republish).',
      registers: r,
      collect() {
        if (hot.duplicates > 0) {
          this.inc(hot.duplicates);
          hot.duplicates = 0;
        }
      },
    }),
    publishFailures: new Counter({ name: 'feedkeeper_nats_publish_failures_total', help: 'Publishes that failed (broker down, ack timeout, no stream): sent again.', registers: r }),
    gapEntriesDropped: new Counter({ name: 'feedkeeper_nats_gap_entries_dropped_total', help: 'Ledger entries not published to <prefix>.<venue>._gaps because the buffer was full.', registers: r }),
  };
  byRegistry.set(registry, m);
  return m;
}
