import type { Metrics } from '../metrics/registry.js';
import type { FrameSink } from './stream-router.js';
import type { StreamRef } from './stream-ref.js';

/**
 * A secondary output of the daemon (the relay; the NATS sink of the scale-out issue). It gets each
 * accepted message once, after the recorder, with the stream's prepared StreamRef: positional
 * arguments, nothing re-scanned per sink, nothing allocated by the fan-out.
 */
export interface Sink {
  /** Bounded metric label: `relay`, `nats`. */
  readonly name: string;
  /**
   * Takes one message; false when it dropped it (its own bounded queue is full). Never throws.
   * `first`/`last`: its sequence keys as the router read them (FrameKeys), absent when the frame
   * has none (no key rule, or a frame the key reader could not read): nothing to scan again.
   */
  write(frame: Buffer, recvMs: number, stream: StreamRef, first?: number, last?: number): boolean;
  /** A ledger entry was written (a gap opened or closed): its parsed fields and its line. */
  gap?(entry: { venue: string | null; stream: string }, line: string): void;
  /** Up and taking messages (for /readyz and metrics). */
  healthy(): boolean;
}

/**
 * The router's output: the recorder first (the primary: its back-pressure and drops are what the
 * ledger's `recorder_dropped` means), then every secondary sink, each counting its own drops in
 * `feedkeeper_sink_dropped_total{sink}`. A secondary's drop is never a recorder gap, and a
 * secondary never slows the recorder down. In the style of pino's multistream.
 */
export class SinkFanout implements FrameSink {
  private readonly dropped: Array<{ inc(n?: number): void }>;

  constructor(
    private readonly primary: FrameSink,
    private readonly sinks: readonly Sink[],
    metrics: Pick<Metrics, 'sinkDropped'>,
  ) {
    // Each configured sink's series exists from the start, at 0: a dashboard or an alert on it
    // sees "nothing dropped", not "no data" (prom-client creates a series on its first inc()).
    this.dropped = sinks.map((s) => {
      const c = metrics.sinkDropped.labels({ sink: s.name });
      c.inc(0);
      return c;
    });
  }

  write(frame: Buffer, recvMs: number, stream?: StreamRef, first?: number, last?: number): boolean {
    const ok = this.primary.write(frame, recvMs, stream);
    if (stream === undefined) return ok;
    const sinks = this.sinks;
    for (let i = 0; i < sinks.length; i++) if (!sinks[i]!.write(frame, recvMs, stream, first, last)) this.dropped[i]!.inc();
    return ok;
  }
}
