import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FeedSocket } from '../src/connection/wire/feed-socket.js';
import { benchPipeline, buildChunks, nextLine } from './hot-path.js';

/**
 * The hot path of bench/hot-path.ts with the socket in it: the same pre-built frames come from a
 * server in a child process over loopback TCP, through the daemon's FeedSocket (its reads, its
 * handshake, its frame reader) → BinanceProtocol.onFrame → StreamRouter.route → Recorder. For what
 * hot-path.ts cannot see: the cost of the socket reads themselves (the memory each read takes, the
 * collections that memory brings). Under callgrind (`SCRIPT=read-path bash
 * bench/hot-path-callgrind.sh`) only this process's instructions are counted (the server is another
 * process), from connect to the recorder closed. The session's burst yield is not in it.
 *
 *   npx tsc -p . && node dist/bench/read-path.js [--messages N] [--pause]
 */

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const STREAMS = 256;
/** The recorder is flushed every this many messages (no timer inside the counted part). */
const FLUSH_EVERY = 4096;

/** The child: accept one upgrade, write every chunk as fast as the socket drains, close. */
function serve(messages: number): void {
  const chunks = buildChunks(messages, STREAMS);
  const server = createServer((socket: Socket) => {
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      let i = 0;
      const pump = (): void => {
        while (i < chunks.length) if (!socket.write(chunks[i++]!)) return void socket.once('drain', pump);
        socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]), () => server.close());
      };
      pump();
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
}

export async function runReadPath(messages: number, pause = false): Promise<{ written: number; ms: number }> {
  // This same file (built or, under the tests, the source) is the server.
  const child = fork(fileURLToPath(import.meta.url), ['--serve', '--messages', String(messages)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-read-path-'));
  try {
    let count = 0;
    const { recorder, protocol, io } = await benchPipeline(dir, STREAMS, 256 * 1024 * 1024, () => {
      if (++count % FLUSH_EVERY === 0) void recorder.flush();
    });
    if (pause) {
      process.stderr.write('ready\n');
      await nextLine();
    }
    const t0 = Date.now();
    await new Promise<void>((resolve, reject) => {
      new FeedSocket(`ws://127.0.0.1:${port}/stream`, { handshakeTimeoutMs: 60_000, maxPayload: 16 * 1024 * 1024 }, {
        open: () => undefined,
        unexpectedResponse: (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)),
        error: (err) => reject(err),
        close: () => resolve(),
        ping: () => undefined,
        pong: () => undefined,
        message: (data, isBinary, at) => protocol.onFrame(io, data, isBinary, at),
      });
    });
    await recorder.close();
    const ms = Date.now() - t0;
    if (pause) {
      process.stderr.write('done\n');
      await nextLine();
    }
    return { written: recorder.stats.written, ms };
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let messages = 1_000_000;
  let pause = false;
  let server = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--pause') pause = true;
    else if (a === '--serve') server = true;
    else if (a === '--messages') messages = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(messages > 0)) throw new Error('--messages needs a positive number');
  if (server) return serve(messages);
  const r = await runReadPath(messages, pause);
  process.stdout.write(`read path: ${messages} messages through a socket, ${r.written} written in ${r.ms} ms (${((r.ms * 1e6) / messages).toFixed(0)} ns a message, wall)\n`);
  if (r.written !== messages) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
