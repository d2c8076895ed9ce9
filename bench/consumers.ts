import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import WebSocket from 'ws';
import { Daemon } from '../src/daemon.js';
import { readLedger } from '../src/ledger/report.js';
import { createLogger } from '../src/log.js';
import { plan } from '../src/plan/planner.js';
import { getVenue } from '../src/venues/index.js';
import { keyPattern, readInt } from '../src/venues/binance/frame.js';
import { benchConfig } from './bench-config.js';
import { nowMicros } from './frames.js';
import type { Integrity, PhaseSpec } from './protocol.js';
import { LatencySampler } from './stats.js';

/**
 * The two things measured against the same source: a bare `ws` client and the whole feedkeeper
 * daemon. Both subscribe the same streams over the same connections (the split of feedkeeper's
 * planner), both count the messages they have fully handled, and both can sample the latency from
 * the source's send time (`E`, µs on performance.timeOrigin + performance.now()) to the moment
 * they are done with the message (one message in LATENCY_EVERY).
 */
/**
 * Latency is sampled on one message in LATENCY_EVERY, on both sides alike: reading the send time
 * costs a few % of CPU per message (feedkeeper: a readInt of `E` and a clock read), which would
 * otherwise be billed to the consumer being measured. Odd and prime, so that the samples do not lock
 * onto one stream type of the source's round-robin over symbols × 4 types.
 */
export const LATENCY_EVERY = 7;

export interface Counters {
  /** Messages that reached the handler (feedkeeper: counted by the router). */
  received: number;
  /** feedkeeper: taken by the recorder (received - dropped: no duplicates without a rotation). */
  accepted: number;
  /** Fully handled: the baseline's parsed, feedkeeper's handed to the OS by the recorder. */
  handled: number;
  dropped: number;
  bufferedBytes: number;
}

export interface Consumer {
  start(): Promise<void>;
  /** Every subscribed stream has delivered at least one message. */
  allDelivered(): boolean;
  counters(): Counters;
  /** Bytes waiting in the consumer (feedkeeper's recorder buffer); cheap, sampled often. */
  bufferedBytes(): number;
  readonly latency: LatencySampler;
  readonly connections: number;
  /** Stops, and for feedkeeper checks what was recorded (null for the baseline). */
  stop(): Promise<Integrity | null>;
}

export function createConsumer(spec: PhaseSpec, dir: string): Consumer {
  return spec.role === 'feedkeeper' ? new FeedkeeperConsumer(spec, dir) : new BaselineConsumer(spec, dir, spec.role === 'floor');
}

interface CombinedMessage {
  stream?: string;
  data?: { E?: number };
}

/**
 * The bar to clear: `JSON.parse` of every message and nothing else (a count, and while the phase
 * waits for every stream, the set of streams seen, dropped once complete). It subscribes like
 * feedkeeper does: the first streamsPerSubscribe streams in the URL, the rest by SUBSCRIBE at
 * messagesPerSecond - 1 per second.
 */
export class BaselineConsumer implements Consumer {
  handled = 0;
  readonly latency = new LatencySampler();
  connections = 0;
  private sampleTurn = 0;
  private readonly sockets: WebSocket[] = [];
  private seen: Set<string> | null = new Set();
  private total = Infinity;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    private readonly spec: PhaseSpec,
    private readonly dir: string,
    /** The floor: once every stream has delivered, count messages and nothing else (no JSON.parse). */
    private readonly countOnly = false,
  ) {}

  async start(): Promise<void> {
    const { config } = benchConfig(this.dir, this.spec.url, this.spec.streams, this.spec.connections);
    const p = plan(config, getVenue(config.venue)!);
    this.total = p.totalStreams;
    this.connections = p.connections.length;
    const url = `${config.endpoints.stream}/stream`;
    const per = config.limits.streamsPerSubscribe;
    const rate = config.limits.messagesPerSecond - 1;
    await Promise.all(p.connections.map((c) => this.open(url, c.streams, per, rate)));
  }

  private readonly onMessage = (data: WebSocket.RawData): void => {
    if (this.countOnly && this.seen === null) {
      this.handled++;
      return;
    }
    const m = JSON.parse((data as Buffer).toString()) as CombinedMessage;
    this.handled++;
    if (this.seen !== null && m.stream !== undefined) {
      this.seen.add(m.stream);
      if (this.seen.size >= this.total) this.seen = null;
    }
    if (this.latency.on && ++this.sampleTurn === LATENCY_EVERY) {
      this.sampleTurn = 0;
      const e = m.data?.E;
      if (e !== undefined) this.latency.add(nowMicros() - e);
    }
  };

  private open(url: string, streams: string[], per: number, rate: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}?streams=${streams.slice(0, per).join('/')}`, { perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
      this.sockets.push(ws);
      ws.on('message', this.onMessage);
      ws.once('error', reject);
      ws.once('open', () => {
        this.connections = this.sockets.length;
        let id = 1;
        const rest = streams.slice(per);
        const next = (): void => {
          if (rest.length === 0 || ws.readyState !== WebSocket.OPEN) return;
          ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: rest.splice(0, per), id: id++ }));
          const t = setTimeout(() => {
            this.timers.delete(t);
            next();
          }, 1000 / rate);
          this.timers.add(t);
        };
        next();
        resolve();
      });
    });
  }

  allDelivered(): boolean {
    return this.seen === null;
  }

  counters(): Counters {
    return { received: this.handled, accepted: this.handled, handled: this.handled, dropped: 0, bufferedBytes: 0 };
  }

  bufferedBytes(): number {
    return 0;
  }

  async stop(): Promise<null> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(
      this.sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const cut = setTimeout(() => ws.terminate(), 2000);
            ws.once('close', () => {
              clearTimeout(cut);
              resolve();
            });
            ws.close(1000, 'bench over');
          }),
      ),
    );
    return null;
  }
}

const E_KEY = keyPattern('E');

/**
 * The whole daemon (supervisor, sessions, router with sequence tracking, gap ledger, checkpoints,
 * metrics and its HTTP endpoint, recorder writing to `dir`), built from a config file by the real
 * loader. Counts come from the daemon itself (the router's per-stream `received`, the recorder's
 * stats). The only bench instrumentation, in the latency phase alone: daemon.recorder.write is
 * wrapped after start to take the latency at the moment it returns. The router calls that same
 * Recorder object, so the wrapper sits exactly at the end of the hot path.
 */
export class FeedkeeperConsumer implements Consumer {
  readonly latency = new LatencySampler();
  connections = 0;
  private daemon: Daemon | null = null;
  private names: string[] = [];
  private cursor = 0;
  private logFile = '';

  constructor(
    private readonly spec: PhaseSpec,
    private readonly dir: string,
  ) {}

  async start(): Promise<void> {
    const { config, file, logFile } = benchConfig(this.dir, this.spec.url, this.spec.streams, this.spec.connections);
    this.logFile = logFile;
    const logger = createLogger('warn', pino.destination({ dest: logFile, sync: true }));
    const daemon = new Daemon(config, { logger, configFiles: [file] });
    this.daemon = daemon;
    this.connections = daemon.plan.connections.length;
    this.names = daemon.plan.connections.flatMap((c) => c.streams);
    await daemon.start();
    if (this.spec.kind === 'latency') this.sampleWrites(daemon);
  }

  private sampleWrites(daemon: Daemon): void {
    const recorder = daemon.recorder;
    const write = recorder.write.bind(recorder);
    const latency = this.latency;
    let turn = 0;
    recorder.write = (frame: Buffer, recvMs: number): boolean => {
      const ok = write(frame, recvMs);
      if (ok && latency.on && ++turn === LATENCY_EVERY) {
        turn = 0;
        const e = readInt(frame, E_KEY, 0);
        if (e === e) latency.add(nowMicros() - e);
      }
      return ok;
    };
  }

  allDelivered(): boolean {
    const router = this.daemon?.router;
    if (router === undefined) return false;
    while (this.cursor < this.names.length && (router.stream(this.names[this.cursor]!)?.received ?? 0) > 0) this.cursor++;
    return this.cursor === this.names.length;
  }

  counters(): Counters {
    const d = this.daemon;
    if (d === null) return { received: 0, accepted: 0, handled: 0, dropped: 0, bufferedBytes: 0 };
    const stats = d.recorder.stats;
    const received = this.received();
    return { received, accepted: received - stats.dropped, handled: stats.written, dropped: stats.dropped, bufferedBytes: stats.bufferedBytes };
  }

  bufferedBytes(): number {
    return this.daemon?.recorder.stats.bufferedBytes ?? 0;
  }

  private received(): number {
    let n = 0;
    const router = this.daemon!.router;
    for (const name of this.names) n += router.stream(name)?.received ?? 0;
    return n;
  }

  async stop(): Promise<Integrity | null> {
    const daemon = this.daemon;
    if (daemon === null) return null;
    await daemon.stop('bench over');
    const received = this.received();
    const gaps: Record<string, number> = {};
    for (const g of await readLedger(daemon.config.ledger.path).catch(() => [])) {
      if (g.cause !== 'shutdown') gaps[g.cause] = (gaps[g.cause] ?? 0) + 1;
    }
    const stats = daemon.recorder.stats;
    const sum = async (m: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> => (await m.get()).values.reduce((n, v) => n + v.value, 0);
    const readHolds = await sum(daemon.metrics.recorderReadHolds);
    const readHeldSeconds = Math.round((await sum(daemon.metrics.recorderReadHoldSeconds)) * 1000) / 1000;
    return { received, written: stats.written, dropped: stats.dropped, gaps, recordedBytes: dirBytes(daemon.config.recorder.dir), warnings: readWarnings(this.logFile), readHolds, readHeldSeconds };
  }
}

/** Bytes of the files under `dir`, recursively (the recording). */
function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath ?? e.path, e.name)).size;
  return n;
}

function readWarnings(file: string): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n').filter((l) => l !== '');
  return lines.slice(0, 5).map((l) => {
    try {
      const o = JSON.parse(l) as { level?: string; msg?: string; event?: string };
      return [`${o.level ?? '?'}:`, o.event, o.msg].filter((x) => x !== undefined && x !== '').join(' ');
    } catch {
      return l.slice(0, 200);
    }
  }).concat(lines.length > 5 ? [`... ${lines.length - 5} more`] : []);
}
