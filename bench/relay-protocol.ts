/**
 * What bench/run.ts says to the relay bench's two kinds of child (bench/relay-phase.ts: the daemon
 * with its relay; bench/relay-clients.ts: the clients) over the fork IPC channel, and what they
 * report. bench/relay-suite.ts drives both through RelayDriver, in child processes (bench/run.ts) or
 * in one process (test/bench.test.ts).
 */
import type { LatencySummary } from './protocol.js';

export interface ClientsSnapshot {
  at: number;
  /** process.cpuUsage() user + system, µs (the clients' process). */
  cpuMicros: number;
  /** Text messages each client has received since it connected. */
  received: number[];
  bytes: number;
  /** Clients whose connection ended: the close code the relay sent (null: none, the socket just ended). */
  closed: Array<{ code: number | null; reason: string }>;
  /** End-to-end: the source's send time (`E`) to this process reading the message. */
  latency: LatencySummary | null;
}

export type ClientsCommand =
  | { cmd: 'open'; url: string; clients: number }
  | { cmd: 'ready' }
  | { cmd: 'sample'; on: boolean }
  | { cmd: 'snapshot' }
  | { cmd: 'close' };
export type ClientsRequest = ClientsCommand & { id: number };
export type ClientsReply =
  | { id: number; type: 'ok' }
  | { id: number; type: 'ready'; ready: boolean }
  | { id: number; type: 'snapshot'; snapshot: ClientsSnapshot }
  | { id: number; type: 'error'; message: string };

export interface RelayDaemonSpec {
  /** The flood source's base URL. */
  sourceUrl: string;
  /** Streams the daemon carries (and every client subscribes to), on `connections` upstream connections. */
  streams: number;
  connections: number;
  /** relay.clientBufferBytes (default: the config's). */
  clientBufferBytes?: number;
  tmpRoot?: string;
}

export interface DaemonSnapshot {
  at: number;
  cpuMicros: number;
  /** Largest RSS sampled (every 100 ms) since sampling was last switched on; now when never. */
  rssMaxMb: number;
  /** Messages the router counted, the recorder dropped. */
  received: number;
  recorderDropped: number;
  /** feedkeeper_relay_messages_sent_total / bytes_sent_total. */
  relaySent: number;
  relayBytes: number;
  relayClients: number;
  /** feedkeeper_relay_clients_dropped_total by reason (only the non-zero ones). */
  clientsDropped: Record<string, number>;
  /** The relay's largest client send buffer seen while sampling (bytes). */
  maxBufferedBytes: number;
  /** Added latency inside the daemon: relay.write() → the client's socket write returned (RelayServer.probe, one message in 31, every client). */
  added: LatencySummary | null;
  /** The upstream hop: the source's send time (`E`) → relay.write() (one frame in 7). */
  upstream: LatencySummary | null;
  /** Event-loop delay p99 while sampling (ms). */
  loopDelayP99Ms: number;
}

export type DaemonCommand =
  | { cmd: 'start'; spec: RelayDaemonSpec }
  | { cmd: 'ready' }
  | { cmd: 'sample'; on: boolean }
  | { cmd: 'snapshot' }
  | { cmd: 'stop' };
export type DaemonRequest = DaemonCommand & { id: number };
export type DaemonReply =
  | { id: number; type: 'ok' }
  | { id: number; type: 'started'; url: string; streams: string[] }
  | { id: number; type: 'ready'; ready: boolean }
  | { id: number; type: 'snapshot'; snapshot: DaemonSnapshot }
  | { id: number; type: 'stopped'; integrity: { received: number; written: number; dropped: number; gaps: Record<string, number>; warnings: string[] } }
  | { id: number; type: 'error'; message: string };
