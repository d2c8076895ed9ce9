import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { nowMicros, streamTemplate, writeFrame, type StreamTemplate } from './frames.js';
import type { SourceRequest, SourceReply, SourceStats } from './protocol.js';

/**
 * The flood source: a Binance-compatible combined-stream endpoint on loopback (`/stream?streams=`,
 * SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS answered as Binance does, client pings answered by
 * ws) that writes pre-encoded frames (bench/frames.ts) in one of two modes:
 *
 *  - flood: on every connection, as fast as the socket drains. A connection keeps at most
 *    MAX_INFLIGHT batches handed to the socket and not yet written to the kernel (the send callback
 *    of a batch's last frame), so it runs exactly at the speed the consumer reads;
 *  - paced: a fixed total rate over all connections, in 1 ms ticks, each frame stamped when built.
 *    A connection whose ws bufferedAmount is over PACED_MAX_BUFFERED (the consumer is not keeping
 *    up) is skipped for that tick and the frames are counted as skipped.
 *
 * Frames of a connection go round-robin over its subscribed streams, so after one round every
 * stream has delivered. Run it in a process of its own (bench/run.ts forks this file) so that it
 * never shares an event loop with the consumer being measured; tests start it in-process.
 */

export type SourceMode = { kind: 'idle' } | { kind: 'flood' } | { kind: 'paced'; rate: number };

const BATCH_FRAMES = 64;
const MAX_INFLIGHT = 4;
const PACED_MAX_BUFFERED = 4 * 1024 * 1024;
/** After a stall (GC, a busy machine), a paced source sends at most this much backlog at once. */
const PACED_MAX_CATCHUP_MS = 50;

class FloodConnection {
  readonly templates: StreamTemplate[] = [];
  private readonly byName = new Map<string, StreamTemplate>();
  private rr = 0;
  private maxLen = 0;
  private inflight = 0;
  private pumpQueued = false;
  open = true;

  constructor(
    private readonly server: FloodServer,
    readonly ws: WebSocket,
    private readonly socket: Socket,
  ) {}

  subscribe(names: readonly string[]): void {
    for (const name of names) {
      if (this.byName.has(name)) continue;
      const t = streamTemplate(name);
      if (t === null) continue; // a type the source does not send: subscribed, silent
      this.byName.set(name, t);
      this.templates.push(t);
      if (t.bytes.length > this.maxLen) this.maxLen = t.bytes.length;
    }
  }

  unsubscribe(names: readonly string[]): void {
    for (const name of names) {
      const t = this.byName.get(name);
      if (t === undefined) continue;
      this.byName.delete(name);
      this.templates.splice(this.templates.indexOf(t), 1);
    }
    this.rr = 0;
  }

  get subscriptions(): string[] {
    return [...this.byName.keys()];
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount + this.socket.writableLength;
  }

  /** Flood: keep MAX_INFLIGHT batches in the socket. */
  pump(): void {
    this.pumpQueued = false;
    while (this.open && this.server.mode.kind === 'flood' && this.inflight < MAX_INFLIGHT && this.templates.length > 0) {
      this.inflight++;
      this.send(BATCH_FRAMES, this.onBatchWritten);
    }
  }

  private readonly onBatchWritten = (err?: Error | null): void => {
    this.inflight--;
    if (err || this.pumpQueued) return;
    // A write that completes at once calls back on process.nextTick: pumping from there would
    // starve the event loop (SUBSCRIBE, close, IPC). setImmediate lets I/O in between rounds.
    this.pumpQueued = true;
    setImmediate(this.pumpNow);
  };

  private readonly pumpNow = (): void => this.pump();

  /**
   * `n` frames, round-robin over the subscribed streams, each a whole WebSocket text frame (header
   * and payload: a server's frames are not masked) built into one batch buffer (never reused: the
   * socket keeps a reference until the kernel has the bytes) and written to the socket in one call.
   * ws handles the handshake and the control replies; they are written whole, between batches. The
   * source must cost the consumer nothing: one ws.send() per frame cost it about 1.3 µs a message,
   * as much as the consumer being measured, so feedkeeper hit the source's ceiling before its own.
   */
  send(n: number, cb?: (err?: Error | null) => void): number {
    const tpls = this.templates;
    if (tpls.length === 0 || !this.open) return 0;
    const buf = Buffer.allocUnsafeSlow(n * (this.maxLen + MAX_HEADER));
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const t = tpls[this.rr]!;
      if (++this.rr === tpls.length) this.rr = 0;
      const len = t.bytes.length;
      pos = writeHeader(buf, pos, len);
      pos = writeFrame(buf, pos, t, nowMicros());
    }
    this.socket.write(buf.subarray(0, pos), cb);
    this.server.sent += n;
    return n;
  }
}

/** A FIN text frame's header, unmasked. */
const MAX_HEADER = 10;
function writeHeader(out: Buffer, pos: number, len: number): number {
  out[pos] = 0x81;
  if (len < 126) {
    out[pos + 1] = len;
    return pos + 2;
  }
  if (len < 0x10000) {
    out[pos + 1] = 126;
    out[pos + 2] = len >> 8;
    out[pos + 3] = len & 0xff;
    return pos + 4;
  }
  out[pos + 1] = 127;
  out.writeUInt32BE(0, pos + 2);
  out.writeUInt32BE(len, pos + 6);
  return pos + 10;
}

export class FloodServer {
  mode: SourceMode = { kind: 'idle' };
  /** Frames written since start. */
  sent = 0;
  /** Paced frames not sent because the connection's consumer was behind. */
  skipped = 0;
  private readonly conns = new Set<FloodConnection>();
  private pacedTimer: ReturnType<typeof setTimeout> | undefined;
  private pacedStart = 0;
  private pacedDue = 0;
  private pacedTurn = 0;

  private constructor(private readonly wss: WebSocketServer) {
    wss.on('connection', (ws, req) => this.onConnection(ws, req));
  }

  /** Listens on 127.0.0.1, port 0. */
  static start(): Promise<FloodServer> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/stream', perMessageDeflate: false, clientTracking: false });
      wss.once('error', reject);
      wss.once('listening', () => resolve(new FloodServer(wss)));
    });
  }

  get port(): number {
    const a = this.wss.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** Base URL for feedkeeper's endpoints.stream (the `/stream` path is appended by the client). */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.conns.size;
  }

  setMode(mode: SourceMode): void {
    clearTimeout(this.pacedTimer);
    this.pacedTimer = undefined;
    this.mode = mode;
    if (mode.kind === 'flood') for (const c of this.conns) c.pump();
    if (mode.kind === 'paced') {
      this.pacedStart = performance.now();
      this.pacedDue = 0;
      this.pacedTimer = setTimeout(this.tick, 1);
    }
  }

  stats(): SourceStats {
    const cpu = process.cpuUsage();
    return { sent: this.sent, skipped: this.skipped, connections: this.conns.size, cpuMicros: cpu.user + cpu.system, at: performance.now() };
  }

  async close(): Promise<void> {
    this.setMode({ kind: 'idle' });
    for (const c of this.conns) {
      c.open = false;
      c.ws.terminate();
    }
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const c = new FloodConnection(this, ws, req.socket as Socket);
    const q = new URL(req.url ?? '/', 'http://x').searchParams.get('streams');
    if (q) c.subscribe(q.split('/'));
    this.conns.add(c);
    ws.on('message', (data, isBinary) => this.onControl(c, data as Buffer, isBinary));
    ws.on('close', () => {
      c.open = false;
      this.conns.delete(c);
    });
    ws.on('error', () => undefined);
    if (this.mode.kind === 'flood') c.pump();
  }

  /** SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, answered like Binance (facts sheet, "Control messages"). */
  private onControl(c: FloodConnection, data: Buffer, isBinary: boolean): void {
    let msg: { method?: unknown; params?: unknown; id?: unknown };
    try {
      msg = JSON.parse(data.toString('utf8')) as typeof msg;
    } catch {
      msg = {};
    }
    const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : null;
    const params = Array.isArray(msg.params) && msg.params.every((p) => typeof p === 'string') ? (msg.params as string[]) : null;
    let reply: unknown;
    if (isBinary) reply = { error: { code: 3, msg: 'Invalid JSON: expected a text frame' }, id };
    else if (msg.method === 'SUBSCRIBE' && params) {
      c.subscribe(params);
      reply = { result: null, id };
      if (this.mode.kind === 'flood') c.pump();
    } else if (msg.method === 'UNSUBSCRIBE' && params) {
      c.unsubscribe(params);
      reply = { result: null, id };
    } else if (msg.method === 'LIST_SUBSCRIPTIONS') reply = { result: c.subscriptions, id };
    else reply = { error: { code: 2, msg: 'Invalid request: unknown method or bad params' }, id };
    c.ws.send(JSON.stringify(reply));
  }

  /** Paced mode: send what is due since the last tick, spread evenly over the connections. */
  private readonly tick = (): void => {
    if (this.mode.kind !== 'paced') return;
    const rate = this.mode.rate;
    const elapsedMs = performance.now() - this.pacedStart;
    let due = Math.floor((rate * elapsedMs) / 1000) - this.pacedDue;
    const cap = Math.ceil((rate * PACED_MAX_CATCHUP_MS) / 1000);
    if (due > cap) {
      this.skipped += due - cap;
      this.pacedDue += due - cap;
      due = cap;
    }
    const live = [...this.conns].filter((c) => c.open && c.templates.length > 0);
    if (due > 0 && live.length > 0) {
      this.pacedDue += due;
      const per = Math.floor(due / live.length);
      let extra = due - per * live.length;
      for (let i = 0; i < live.length; i++) {
        const c = live[(i + this.pacedTurn) % live.length]!;
        const n = per + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        if (n === 0) continue;
        if (c.bufferedAmount > PACED_MAX_BUFFERED) this.skipped += n;
        else c.send(n);
      }
      this.pacedTurn++;
    } else if (live.length === 0) {
      // Nobody to send to: do not build up a backlog for the next connection.
      this.pacedDue += Math.max(due, 0);
    }
    this.pacedTimer = setTimeout(this.tick, 1);
  };
}

/** Child-process entry (bench/run.ts forks dist/bench/flood-server.js): IPC requests in, replies out. */
async function main(): Promise<void> {
  const send = (m: SourceReply): void => void process.send?.(m);
  const server = await FloodServer.start();
  process.on('message', (raw) => {
    const m = raw as SourceRequest;
    switch (m.cmd) {
      case 'mode':
        server.setMode(m.mode);
        send({ id: m.id, type: 'ok' });
        return;
      case 'stats':
        send({ id: m.id, type: 'stats', stats: server.stats() });
        return;
      case 'close':
        void server.close().then(() => {
          send({ id: m.id, type: 'ok' });
          process.disconnect?.();
        });
        return;
    }
  });
  // The parent went away (crash, Ctrl-C): never outlive it.
  process.on('disconnect', () => void server.close().finally(() => process.exit(0)));
  // Bounded in time whatever happens: a run never takes an hour.
  setTimeout(() => process.exit(3), 60 * 60_000).unref();
  send({ id: 0, type: 'listening', port: server.port, url: server.url });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
