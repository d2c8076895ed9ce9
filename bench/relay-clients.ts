import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { nowMicros } from './frames.js';
import { LatencySampler } from './stats.js';
import type { ClientsReply, ClientsRequest, ClientsSnapshot } from './relay-protocol.js';

/**
 * The relay bench's clients (bench/relay-suite.ts): bots that keep up. Each is a plain TCP socket
 * that does the WebSocket handshake itself and then only walks the frame headers: a text frame is
 * counted, a ping answered with a pong, a close recorded. No `ws`, no UTF-8 check, no JSON.parse per
 * message: at 50 clients × 50,000 msg/s a `ws` client in the same process could not keep up, and
 * the bench would measure the clients instead of the relay. One message in SAMPLE_EVERY per client
 * is read for its `E` (the flood source's send time, µs on the shared clock) to give the end-to-end
 * latency, source → daemon → relay → this process.
 */

/** Odd and prime, so that the samples do not lock onto one stream type of the source's round-robin. */
export const SAMPLE_EVERY = 101;
const E_KEY = Buffer.from('"E":');

export class LightClient {
  received = 0;
  bytes = 0;
  /** The close code the relay sent (null: still open, or closed without a close frame). */
  closeCode: number | null = null;
  closeReason = '';
  ended = false;
  private partial: Buffer | null = null;
  private skip = 0;
  private turn = 0;
  private upgraded = false;
  private head = '';

  private constructor(
    private readonly socket: Socket,
    private readonly pool: LightClientPool,
  ) {}

  static open(url: string, pool: LightClientPool): Promise<LightClient> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: u.hostname, port: Number(u.port), noDelay: true });
      const c = new LightClient(socket, pool);
      const fail = (err: Error): void => reject(err);
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      socket.on('data', (chunk: Buffer) => {
        if (c.upgraded) return c.onData(chunk);
        c.head += chunk.toString('latin1');
        const end = c.head.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!c.head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(`relay answered ${c.head.slice(0, c.head.indexOf('\r\n'))}`));
          return;
        }
        c.upgraded = true;
        socket.off('error', fail);
        socket.on('error', () => undefined);
        const rest = Buffer.from(c.head.slice(end + 4), 'latin1');
        c.head = '';
        resolve(c);
        if (rest.length > 0) c.onData(rest);
      });
      socket.once('close', () => {
        c.ended = true;
        if (!c.upgraded) reject(new Error('relay closed the connection before the upgrade'));
      });
    });
  }

  private onData(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    this.bytes += chunk.length;
    let pos = 0;
    if (this.skip > 0) {
      const n = Math.min(this.skip, buf.length);
      this.skip -= n;
      pos = n;
    }
    const sampling = this.pool.latency.on;
    let now = -1;
    const n = buf.length;
    while (pos < n) {
      if (n - pos < 2) break;
      const b0 = buf[pos]!;
      let len = buf[pos + 1]! & 0x7f;
      let h = 2;
      if (len === 126) {
        if (n - pos < 4) break;
        len = (buf[pos + 2]! << 8) | buf[pos + 3]!;
        h = 4;
      } else if (len === 127) {
        if (n - pos < 10) break;
        len = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
        h = 10;
      }
      const start = pos + h;
      const end = start + len;
      const opcode = b0 & 0x0f;
      if (opcode === 1 || opcode === 0 || opcode === 2) {
        if (opcode === 1) {
          this.received++;
          if (sampling && ++this.turn >= SAMPLE_EVERY && end <= n) {
            this.turn = 0;
            const e = readE(buf, start, end);
            if (e > 0) {
              if (now < 0) now = nowMicros();
              this.pool.latency.add(now - e);
            }
          }
        }
        if (end > n) {
          this.skip = end - n;
          pos = n;
          break;
        }
        pos = end;
        continue;
      }
      // Control frames are small: wait for the whole of one.
      if (end > n) break;
      if (opcode === 9) this.pong(buf.subarray(start, end));
      else if (opcode === 8) {
        this.closeCode = len >= 2 ? (buf[start]! << 8) | buf[start + 1]! : 1005;
        this.closeReason = buf.toString('utf8', start + 2, end);
        this.socket.end();
      }
      pos = end;
    }
    if (pos < n) this.partial = Buffer.from(buf.subarray(pos));
  }

  /** A client frame is masked; a zero mask leaves the payload as it is. */
  private pong(payload: Buffer): void {
    const frame = Buffer.alloc(6 + payload.length);
    frame[0] = 0x8a;
    frame[1] = 0x80 | payload.length;
    payload.copy(frame, 6);
    this.socket.write(frame);
  }

  close(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      // 1000, masked with a zero key.
      if (this.socket.writable) this.socket.end(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }
}

/** `"E":<digits>` in the payload, or 0. */
function readE(buf: Buffer, start: number, end: number): number {
  const at = buf.indexOf(E_KEY, start);
  if (at < 0 || at >= end) return 0;
  let v = 0;
  for (let i = at + E_KEY.length; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  return v;
}

/** N clients on one URL, in this process. */
export class LightClientPool {
  readonly latency = new LatencySampler();
  readonly clients: LightClient[] = [];

  static async open(url: string, n: number): Promise<LightClientPool> {
    const pool = new LightClientPool();
    // Ten upgrades at a time: every client subscribes to every stream, and the relay answers each.
    for (let i = 0; i < n; i += 10) pool.clients.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => LightClient.open(url, pool)))));
    return pool;
  }

  /** Every client has received something. */
  ready(): boolean {
    return this.clients.every((c) => c.received > 0);
  }

  snapshot(): ClientsSnapshot {
    const cpu = process.cpuUsage();
    return {
      at: performance.now(),
      cpuMicros: cpu.user + cpu.system,
      received: this.clients.map((c) => c.received),
      bytes: this.clients.reduce((n, c) => n + c.bytes, 0),
      closed: this.clients.filter((c) => c.ended || c.closeCode !== null).map((c) => ({ code: c.closeCode, reason: c.closeReason })),
      latency: this.latency.summary(),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }
}

/** Child-process entry (bench/run.ts forks dist/bench/relay-clients.js): IPC requests in, replies out. */
function main(): void {
  const send = (m: ClientsReply): void => void process.send?.(m);
  let pool: LightClientPool | null = null;
  process.on('message', (raw) => {
    const m = raw as ClientsRequest;
    const fail = (err: unknown): void => send({ id: m.id, type: 'error', message: err instanceof Error ? err.message : String(err) });
    switch (m.cmd) {
      case 'open':
        LightClientPool.open(m.url, m.clients)
          .then((p) => {
            pool = p;
            send({ id: m.id, type: 'ok' });
          })
          .catch(fail);
        return;
      case 'ready':
        send({ id: m.id, type: 'ready', ready: pool?.ready() ?? false });
        return;
      case 'sample':
        if (pool !== null) pool.latency.on = m.on;
        send({ id: m.id, type: 'ok' });
        return;
      case 'snapshot':
        if (pool === null) return fail(new Error('no clients'));
        send({ id: m.id, type: 'snapshot', snapshot: pool.snapshot() });
        return;
      case 'close':
        void (pool?.close() ?? Promise.resolve()).then(() => {
          send({ id: m.id, type: 'ok' });
          process.disconnect?.();
        });
        return;
    }
  });
  process.on('disconnect', () => setTimeout(() => process.exit(0), 2000).unref());
  setTimeout(() => process.exit(3), 30 * 60_000).unref();
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
