import { Worker } from 'node:worker_threads';
import { systemClock, type Clock } from '../../clock.js';
import { CLOSED, CLOSING, CONNECTING, OPEN, type FeedSocketHandlers, type FeedSocketOptions, type WireSocket } from './feed-socket.js';
import { MessageView } from './frame-reader.js';
import { asBuffer, type FromReader, type ToReader } from './read-protocol.js';

/**
 * A FeedSocket whose socket, handshake and frame reading run on a read thread (read-thread.ts):
 * the same API and handler calls as FeedSocket, on the main thread, in the same order. The main
 * thread keeps routing, recording and everything else; one connection can so use more than one
 * core (`connection.readThreads`, docs/performance.md "Read threads").
 *
 * - Messages arrive in batches (one per socket read); each is handed on as a Buffer view of the
 *   batch, with the time the batch reached this thread (one clock read per batch, the daemon's clock).
 * - pause() stops handing on, at once, after the current message; batches and events that arrive
 *   meanwhile wait here, in order. The read thread stops reading the socket once
 *   MAX_BATCHES_IN_FLIGHT of its batches are not handed on yet, so a pause or a busy main thread
 *   holds the exchange back through TCP, as on the main thread.
 * - terminate() drops what waits, and the close follows as soon as the thread has closed the socket.
 * - A read thread that dies ends each of its sockets with an error and close 1006; the next
 *   connection gets a new thread.
 */

const EMPTY = Buffer.alloc(0);

type Batch = Extract<FromReader, { t: 'batch' }>;

export class ThreadedFeedSocket implements WireSocket {
  readyState = CONNECTING;
  private paused = false;
  private terminated = false;
  /** What arrived while paused (or behind something that did), in order. */
  private readonly waiting: FromReader[] = [];
  /** The batch being handed on: the next message's index, and the batch's time. */
  private cursor = 0;
  private batchAt = 0;
  private closed = false;
  private readonly clock: Clock;

  constructor(
    url: string,
    opts: FeedSocketOptions,
    private readonly handlers: FeedSocketHandlers,
    private readonly thread: ReadThread,
  ) {
    this.clock = opts.clock ?? systemClock;
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`not a WebSocket URL: ${u.protocol}`);
    this.id = thread.attach(this);
    thread.post({ t: 'open', id: this.id, url, handshakeTimeoutMs: opts.handshakeTimeoutMs, maxPayload: opts.maxPayload, ca: opts.ca === undefined ? undefined : String(opts.ca) });
  }

  readonly id: number;

  get isPaused(): boolean {
    return this.paused;
  }

  send(text: string): void {
    if (this.readyState === OPEN) this.thread.post({ t: 'text', id: this.id, text });
  }

  ping(data: Buffer = EMPTY): void {
    if (this.readyState === OPEN) this.thread.post({ t: 'ping', id: this.id, data: new Uint8Array(data) });
  }

  pong(data: Buffer): void {
    if (this.readyState === OPEN) this.thread.post({ t: 'pong', id: this.id, data: new Uint8Array(data) });
  }

  close(code: number, reason: string): void {
    if (this.readyState === CONNECTING) return this.terminate();
    if (this.readyState !== OPEN) return;
    this.readyState = CLOSING;
    this.thread.post({ t: 'close', id: this.id, code, reason });
  }

  terminate(): void {
    if (this.readyState === CLOSED || this.terminated) return;
    this.terminated = true;
    this.readyState = CLOSING;
    // What waits is not wanted any more; the thread's batches of it are done with.
    let batches = 0;
    for (const m of this.waiting) if (m.t === 'batch') batches++;
    this.waiting.length = 0;
    if (batches > 0) this.thread.post({ t: 'ack', id: this.id, n: batches });
    this.thread.post({ t: 'terminate', id: this.id });
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // What was held back is handed on now: its messages get the time they are handed on.
    this.batchAt = this.clock.now();
    this.drain();
  }

  /** From the read thread, in order. */
  receive(m: FromReader): void {
    if (this.closed) return;
    if (this.terminated) {
      // Only the end matters now; batches still on the way are acknowledged and dropped.
      if (m.t === 'batch') this.thread.post({ t: 'ack', id: this.id, n: 1 });
      else if (m.t === 'close' || m.t === 'response' || m.t === 'error') this.handle(m);
      return;
    }
    if (m.t === 'batch') this.batchAt = this.clock.now();
    if (this.paused || this.waiting.length > 0) {
      this.waiting.push(m);
      return;
    }
    this.handle(m);
  }

  /** The thread died: the connection with it. */
  threadLost(err: Error): void {
    if (this.closed) return;
    this.waiting.length = 0;
    this.handlers.error(err);
    this.readyState = CLOSED;
    this.closed = true;
    this.thread.detach(this.id);
    this.handlers.close(1006, EMPTY);
  }

  private drain(): void {
    while (!this.paused && !this.closed && this.waiting.length > 0) {
      const m = this.waiting[0]!;
      if (m.t === 'batch') {
        if (!this.deliver(m)) return;
      }
      this.waiting.shift();
      if (m.t !== 'batch') this.handle(m);
    }
  }

  private handle(m: FromReader): void {
    switch (m.t) {
      case 'batch':
        this.cursor = 0;
        if (!this.deliver(m)) this.waiting.unshift(m);
        return;
      case 'open':
        if (this.readyState === CONNECTING) this.readyState = OPEN;
        this.handlers.open();
        return;
      case 'response':
        this.end();
        this.handlers.unexpectedResponse({ statusCode: m.status, headers: m.headers, resume: () => undefined, destroy: () => undefined });
        return;
      case 'error': {
        const err = new Error(m.message) as NodeJS.ErrnoException;
        if (m.code !== null) err.code = m.code;
        if (this.readyState === OPEN) this.readyState = CLOSING;
        this.handlers.error(err);
        return;
      }
      case 'close':
        this.end();
        this.handlers.close(m.code, asBuffer(m.reason));
        return;
      case 'ping':
        this.handlers.ping(asBuffer(m.data));
        return;
      case 'pong':
        this.handlers.pong(asBuffer(m.data));
        return;
    }
  }

  /** Hand on the batch from the cursor; false when a handler paused before its end. */
  private deliver(b: Batch): boolean {
    const { ends, buf, binary } = b;
    const n = ends.length;
    const at = this.batchAt;
    let i = this.cursor;
    while (i < n) {
      if (this.paused || this.closed || this.terminated) {
        this.cursor = i;
        return this.closed || this.terminated;
      }
      const from = i === 0 ? 0 : ends[i - 1]!;
      const isBinary = binary !== null && binary.includes(i);
      const data = new MessageView(buf, from, ends[i]! - from) as unknown as Buffer;
      i++;
      this.handlers.message(data, isBinary, at);
    }
    this.cursor = 0;
    if (!this.closed) this.thread.post({ t: 'ack', id: this.id, n: 1 });
    return true;
  }

  private end(): void {
    this.closed = true;
    this.readyState = CLOSED;
    this.waiting.length = 0;
    this.thread.detach(this.id);
  }
}

/** One read thread and the sockets it carries. */
export class ReadThread {
  private readonly worker: Worker;
  private readonly sockets = new Map<number, ThreadedFeedSocket>();
  private nextId = 1;
  private dead: Error | null = null;

  constructor() {
    // The thread runs the module next to this one: .js in the build, .ts under the test runner's loader.
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    this.worker = new Worker(new URL(`./read-thread${ext}`, import.meta.url));
    this.worker.on('message', (m: FromReader) => this.sockets.get(m.id)?.receive(m));
    this.worker.on('error', (err) => this.lost(err));
    this.worker.on('exit', (code) => this.lost(new Error(`read thread exited (${code})`)));
    // The daemon's lifetime is the main thread's: a read thread never keeps it running. (After the
    // listeners: adding a 'message' listener refs the worker again.)
    this.worker.unref();
  }

  get alive(): boolean {
    return this.dead === null;
  }

  get size(): number {
    return this.sockets.size;
  }

  attach(s: ThreadedFeedSocket): number {
    const id = this.nextId++;
    this.sockets.set(id, s);
    if (this.dead !== null) {
      const err = this.dead;
      queueMicrotask(() => s.threadLost(err));
    }
    return id;
  }

  detach(id: number): void {
    this.sockets.delete(id);
  }

  post(m: ToReader): void {
    if (this.dead === null) this.worker.postMessage(m);
  }

  /** Stop the thread (tests; the daemon's exit ends it anyway). */
  async stop(): Promise<void> {
    await this.worker.terminate();
  }

  private lost(err: Error): void {
    if (this.dead !== null) return;
    this.dead = Object.assign(new Error(`read thread lost: ${err.message}`), { code: 'EREADTHREAD' });
    for (const s of [...this.sockets.values()]) s.threadLost(this.dead);
    this.sockets.clear();
  }
}

/** The process's read threads (`connection.readThreads`): started on first use, shared by every connection. */
const threads: ReadThread[] = [];

/** The read thread for the next socket: the one carrying the fewest, of at most `count`. */
export function readThread(count: number): ReadThread {
  for (let i = threads.length - 1; i >= 0; i--) if (!threads[i]!.alive) threads.splice(i, 1);
  if (threads.length < count) {
    const t = new ReadThread();
    threads.push(t);
    return t;
  }
  let best = threads[0]!;
  for (let i = 1; i < count && i < threads.length; i++) if (threads[i]!.size < best.size) best = threads[i]!;
  return best;
}
