import { parentPort } from 'node:worker_threads';
import { FeedSocket } from './feed-socket.js';
import { asBuffer, MAX_BATCHES_IN_FLIGHT, type FromReader, type ToReader } from './read-protocol.js';

/**
 * A read thread (`connection.readThreads`, docs/performance.md): the exchange's sockets, their
 * handshakes and FrameReader run here, off the main thread, each socket in the same FeedSocket as
 * on the main thread (the same checks: a bad frame, invalid UTF-8 end the connection just the same).
 * The messages of a socket read go to the main thread as one batch (of several reads while the
 * main thread is busy, up to 64 KiB); what the main thread has not
 * handed on yet is bounded per socket (MAX_BATCHES_IN_FLIGHT): past it this thread stops reading
 * that socket, so a main thread that falls behind slows the exchange through TCP, as one reading
 * its own sockets does.
 */

const port = parentPort;
if (port === null) throw new Error('read-thread.ts runs as a worker thread');

const BATCH_BYTES = 64 * 1024;
/**
 * A read's messages go at once while fewer batches than this are on the way (a main thread with
 * time to spare gets them without delay); past it they gather until the batch is full or the main
 * thread acknowledges one, so a busy main thread gets few large batches instead of one per read.
 */
const SEND_AT_ONCE_BELOW = 2;

class Conn {
  readonly socket: FeedSocket;
  private buf: Uint8Array = Buffer.allocUnsafeSlow(BATCH_BYTES);
  private used = 0;
  private ends = new Int32Array(256);
  private count = 0;
  private binary: number[] | null = null;
  private scheduled = false;
  private inFlight = 0;
  private pausedForAcks = false;
  private readonly afterRead = (): void => {
    this.scheduled = false;
    if (this.inFlight < SEND_AT_ONCE_BELOW) this.flush();
  };

  constructor(
    readonly id: number,
    m: Extract<ToReader, { t: 'open' }>,
  ) {
    this.socket = new FeedSocket(m.url, { handshakeTimeoutMs: m.handshakeTimeoutMs, maxPayload: m.maxPayload, ca: m.ca }, {
      open: () => this.post({ t: 'open', id }),
      unexpectedResponse: (res) => {
        this.post({ t: 'response', id, status: res.statusCode ?? 0, headers: { ...res.headers } });
        res.resume();
        res.destroy();
        conns.delete(id);
      },
      error: (err) => this.post({ t: 'error', id, message: err.message, code: typeof (err as NodeJS.ErrnoException).code === 'string' ? (err as NodeJS.ErrnoException).code! : null }),
      close: (code, reason) => {
        this.post({ t: 'close', id, code, reason: new Uint8Array(reason) });
        conns.delete(id);
      },
      ping: (data) => this.post({ t: 'ping', id, data: new Uint8Array(data) }),
      pong: (data) => this.post({ t: 'pong', id, data: new Uint8Array(data) }),
      message: (data, isBinary) => this.add(data, isBinary),
    });
  }

  acked(n: number): void {
    this.inFlight -= n;
    if (this.count > 0 && this.inFlight < SEND_AT_ONCE_BELOW) this.flush();
    if (this.pausedForAcks && this.inFlight < MAX_BATCHES_IN_FLIGHT) {
      this.pausedForAcks = false;
      this.socket.resume();
    }
  }

  /** Any other event: the messages before it go first. */
  post(m: FromReader): void {
    this.flush();
    port!.postMessage(m);
  }

  private add(data: Buffer, isBinary: boolean): void {
    const n = data.length;
    if (this.used + n > this.buf.length) {
      // A full batch goes now, whatever is on the way (the pause below bounds that).
      if (this.count > 0) this.flush();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
    }
    this.buf.set(data, this.used);
    this.used += n;
    if (this.count === this.ends.length) {
      const ends = new Int32Array(this.count * 2);
      ends.set(this.ends);
      this.ends = ends;
    }
    if (isBinary) (this.binary ??= []).push(this.count);
    this.ends[this.count++] = this.used;
    if (!this.scheduled) {
      // After the read: FeedSocket hands on a read's messages in one synchronous run.
      this.scheduled = true;
      queueMicrotask(this.afterRead);
    }
  }

  private flush(): void {
    if (this.count === 0) return;
    // The whole buffer moves (the main thread reads up to the last end); the next batch gets a new one.
    const buf = this.buf.buffer as ArrayBuffer;
    const ends = this.ends.slice(0, this.count);
    const m: FromReader = { t: 'batch', id: this.id, buf, ends, binary: this.binary };
    port!.postMessage(m, [buf, ends.buffer]);
    this.buf = Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.used = 0;
    this.count = 0;
    this.binary = null;
    if (++this.inFlight >= MAX_BATCHES_IN_FLIGHT && !this.pausedForAcks) {
      this.pausedForAcks = true;
      this.socket.pause();
    }
  }
}

const conns = new Map<number, Conn>();

port.on('message', (m: ToReader) => {
  if (m.t === 'open') {
    conns.set(m.id, new Conn(m.id, m));
    return;
  }
  const c = conns.get(m.id);
  if (c === undefined) return;
  switch (m.t) {
    case 'text':
      c.socket.send(m.text);
      break;
    case 'ping':
      c.socket.ping(asBuffer(m.data));
      break;
    case 'pong':
      c.socket.pong(asBuffer(m.data));
      break;
    case 'close':
      c.socket.close(m.code, m.reason);
      break;
    case 'terminate':
      c.socket.terminate();
      break;
    case 'ack':
      c.acked(m.n);
      break;
  }
});
