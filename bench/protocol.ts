/**
 * What bench/run.ts and its two kinds of child process (the flood source and a consumer) say to
 * each other over the fork IPC channel, and the shape of one measured phase.
 */
import type { SourceMode } from './flood-server.js';

/**
 * baseline: `ws` + JSON.parse of every message (the bar to clear); feedkeeper: the whole daemon;
 * floor: `ws` counting messages and nothing else (the ceiling any `ws` consumer has on this machine).
 */
export type Role = 'baseline' | 'feedkeeper' | 'floor';
export type PhaseKind = 'throughput' | 'latency' | 'rss';

export interface SourceStats {
  sent: number;
  skipped: number;
  connections: number;
  /** process.cpuUsage() user + system, µs. */
  cpuMicros: number;
  /** performance.now() of the source when the stats were taken. */
  at: number;
}

export type SourceCommand = { cmd: 'mode'; mode: SourceMode } | { cmd: 'stats' } | { cmd: 'close' };
export type SourceRequest = SourceCommand & { id: number };

export type SourceReply =
  | { id: number; type: 'ok' }
  | { id: number; type: 'stats'; stats: SourceStats }
  | { id: 0; type: 'listening'; port: number; url: string };

/** One consumer run against the source: connect, wait until every stream delivered, measure, stop. */
export interface PhaseSpec {
  role: Role;
  kind: PhaseKind;
  /** The source's base URL (ws://127.0.0.1:port). */
  url: string;
  /** Streams subscribed in total (symbols × 4 types). */
  streams: number;
  /** Connections wanted; limits.streamsPerConnection is derived from it (feedkeeper's planner splits). */
  connections: number;
  /** After every stream delivered, run this long before measuring. */
  warmupMs: number;
  windowMs: number;
  /** Give up when the streams have not all delivered by then. */
  readyTimeoutMs: number;
  /** Where the feedkeeper consumer puts its temporary directory (default: os.tmpdir()). */
  tmpRoot?: string;
}

export interface LatencySummary {
  samples: number;
  minMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** What the feedkeeper consumer checked after stopping: nothing lost, nothing doubled. */
export interface Integrity {
  /** Messages the router counted (every stream's `received`). */
  received: number;
  /** Lines the recorder handed to the OS by the end (after stop: all it accepted). */
  written: number;
  /** Messages the recorder refused (each inside a `recorder_dropped` gap). written + dropped = received. */
  dropped: number;
  /** Ledger entries other than the `shutdown` gaps every stop opens, by cause. */
  gaps: Record<string, number>;
  /** Bytes of the recording files at the end (every line written, compressed or not). */
  recordedBytes: number;
  /** Warnings and errors feedkeeper logged (first few). */
  warnings: string[];
  /** Read holds (recorder.holdReadsMs) over the whole phase, and the seconds the sockets were held. */
  readHolds: number;
  readHeldSeconds: number;
}

export interface PhaseResult {
  role: Role;
  kind: PhaseKind;
  streams: number;
  connections: number;
  /** ms from start until every stream had delivered at least once. */
  readyMs: number;
  /**
   * Messages fully handled in the window: the baseline's parsed, feedkeeper's written to the
   * recording (handed to the OS). What a consumer sustains, not what it buffers.
   */
  messages: number;
  seconds: number;
  /** messages / seconds. */
  rate: number;
  /** Messages that reached the consumer's handler (feedkeeper: the router) per second. */
  receivedRate: number;
  /** feedkeeper: messages the recorder took (received - dropped), per second (baseline: = rate). */
  acceptedRate: number;
  /** feedkeeper: messages the recorder dropped in the window (buffer full: each a gap in the ledger). */
  dropped: number;
  /** feedkeeper: the most bytes the recorder held unwritten during the window. */
  maxBufferedMb: number;
  /**
   * Event-loop delay over the window (perf_hooks.monitorEventLoopDelay sampling every 10 ms, the
   * 10 ms taken off): how long a timer or a file-write completion waits behind one loop turn.
   */
  loopDelayMs: { p50: number; p99: number; max: number };
  cpuSeconds: number;
  /** CPU seconds per million messages received (the work per arriving message). */
  cpuSecPerMillion: number;
  latency: LatencySummary | null;
  /** Largest RSS sampled during the window, and the last sample. */
  rssMb: number;
  rssEndMb: number;
  heapUsedMb: number;
  integrity: Integrity | null;
}

export type ConsumerRequest = { cmd: 'run'; spec: PhaseSpec };
export type ConsumerEvent =
  | { type: 'window'; edge: 'start' | 'end' }
  | { type: 'result'; result: PhaseResult }
  | { type: 'error'; message: string };
