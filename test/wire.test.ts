import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { FrameReader, type FrameHandlers } from '../src/connection/wire/frame-reader.js';
import { CLOSED, FeedSocket, OPEN, type FeedSocketHandlers, type FeedSocketOptions, type WireSocket } from '../src/connection/wire/feed-socket.js';
import { ReadThread, readThread, ThreadedFeedSocket } from '../src/connection/wire/threaded-socket.js';

// The session's WebSocket client (src/connection/wire/): the frame reader on byte streams cut at
// every offset, every protocol violation it must refuse, pause/resume; the socket against a real
// `ws` server (the simulator's and the relay's) and against raw servers that misbehave on purpose.

/** A server frame (unmasked). */
function frame(op: number, payload: Buffer | string, opts: { fin?: boolean; rsv?: number; mask?: boolean; length?: number } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = opts.length ?? data.length;
  const head: number[] = [(opts.fin === false ? 0 : 0x80) | ((opts.rsv ?? 0) << 4) | op];
  const m = opts.mask ? 0x80 : 0;
  if (n < 126) head.push(m | n);
  else if (n < 0x10000) head.push(m | 126, n >> 8, n & 0xff);
  else {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    head.push(m | 127, ...b);
  }
  if (opts.mask) head.push(0, 0, 0, 0);
  return Buffer.concat([Buffer.from(head), data]);
}

type Event = [string, ...unknown[]];

function recorder(): { events: Event[]; handlers: FrameHandlers } {
  const events: Event[] = [];
  return {
    events,
    handlers: {
      onMessage: (d, bin) => void events.push(['message', d.toString('latin1'), bin]),
      onPing: (d) => void events.push(['ping', d.toString()]),
      onPong: (d) => void events.push(['pong', d.toString()]),
      onClose: (code, reason) => void events.push(['close', code, reason.toString()]),
      onError: (code, message) => void events.push(['error', code, message]),
    },
  };
}

function readAll(chunks: Buffer[], max = 1 << 20): Event[] {
  const r = recorder();
  const reader = new FrameReader(r.handlers, max);
  for (const c of chunks) reader.push(c);
  return r.events;
}

const big = Buffer.alloc(70_000, 0x61);
const STREAM = Buffer.concat([
  frame(0x1, '{"stream":"btcusdt@trade","data":{"t":1}}'),
  frame(0x2, Buffer.from([0, 1, 2, 255])),
  frame(0x1, 'x'.repeat(300)),
  frame(0x1, '{"frag', { fin: false }),
  frame(0x9, 'mid-ping'),
  frame(0x0, 'mented":', { fin: false }),
  frame(0x0, 'true}'),
  frame(0x1, big),
  frame(0xa, ''),
  frame(0x1, 'é€'),
  frame(0x8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
]);
const EXPECTED: Event[] = [
  ['message', '{"stream":"btcusdt@trade","data":{"t":1}}', false],
  ['message', Buffer.from([0, 1, 2, 255]).toString('latin1'), true],
  ['message', 'x'.repeat(300), false],
  ['ping', 'mid-ping'],
  ['message', '{"fragmented":true}', false],
  ['message', big.toString('latin1'), false],
  ['pong', ''],
  ['message', Buffer.from('é€').toString('latin1'), false],
  ['close', 1000, 'bye'],
];

t.test('frame reader: the same messages whatever the chunking', async (t) => {
  t.same(readAll([STREAM]), EXPECTED, 'one chunk');
  let bad = 0;
  for (let cut = 1; cut < STREAM.length; cut += cut < 400 ? 1 : 997) {
    const got = readAll([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
    if (JSON.stringify(got) !== JSON.stringify(EXPECTED)) bad++;
  }
  t.equal(bad, 0, 'cut in two at every offset of the first 400 bytes and every 997th after');
  const bytes: Buffer[] = [];
  for (let i = 0; i < 2000; i++) bytes.push(STREAM.subarray(i, i + 1));
  bytes.push(STREAM.subarray(2000));
  t.same(readAll(bytes), EXPECTED, 'the first 2,000 bytes one at a time');
  // Random cuts, seeded for repeatability.
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let round = 0; round < 50; round++) {
    const chunks: Buffer[] = [];
    for (let p = 0; p < STREAM.length; ) {
      const n = 1 + Math.floor(rand() * 3000);
      chunks.push(STREAM.subarray(p, p + n));
      p += n;
    }
    const got = readAll(chunks);
    if (JSON.stringify(got) !== JSON.stringify(EXPECTED)) t.fail(`random cuts, round ${round}`);
  }
});

t.test('frame reader: a message whole in its chunk is a view of it, not a copy', async (t) => {
  const chunk = Buffer.concat([frame(0x1, 'abc'), frame(0x1, 'defg')]);
  const views: Buffer[] = [];
  const r = recorder();
  const reader = new FrameReader({ ...r.handlers, onMessage: (d) => void views.push(d) }, 1024);
  reader.push(chunk);
  t.equal(views.length, 2);
  t.equal(views[0]!.buffer, chunk.buffer, 'same memory as the chunk');
  t.equal(views[1]!.byteOffset, chunk.byteOffset + 7);
  // A Buffer in every way the pipeline uses one (it is made without Buffer#subarray).
  const v = views[0]!;
  t.ok(Buffer.isBuffer(v) && v instanceof Buffer && v instanceof Uint8Array);
  t.equal(v.toString(), 'abc');
  t.equal(v.toString('latin1', 1, 3), 'bc');
  t.ok(v.equals(Buffer.from('abc')));
  t.equal(v.indexOf(0x63), 2);
  t.equal(Buffer.concat([v, views[1]!]).toString(), 'abcdefg');
  t.equal(v.subarray(1).toString(), 'bc');
  t.same(JSON.parse(views[1]!.toString('utf8').replace('defg', '"x"')), 'x');
  const out = Buffer.alloc(4);
  out.set(v, 1);
  t.equal(out.subarray(1).toString(), 'abc');
});

t.test('frame reader: every protocol violation is refused with its close code, and nothing after it', async (t) => {
  const after = frame(0x1, 'never');
  const cases: [string, Buffer, number][] = [
    ['masked frame from the server', frame(0x1, 'hi', { mask: true }), 1002],
    ['RSV1 without an extension', frame(0x1, 'hi', { rsv: 4 }), 1002],
    ['unknown opcode', frame(0x3, 'hi'), 1002],
    ['control frame over 125 bytes', frame(0x9, 'p'.repeat(126)), 1002],
    ['fragmented control frame', frame(0x9, 'p', { fin: false }), 1002],
    ['continuation outside a message', frame(0x0, 'x'), 1002],
    ['new message inside a fragmented one', Buffer.concat([frame(0x1, 'a', { fin: false }), frame(0x1, 'b')]), 1002],
    ['text that is not UTF-8', frame(0x1, Buffer.from([0x7b, 0xff, 0x7d])), 1007],
    ['text cut inside a UTF-8 sequence', frame(0x1, Buffer.from('é').subarray(0, 1)), 1007],
    ['fragments not UTF-8 once joined', Buffer.concat([frame(0x1, Buffer.from([0xe2, 0x82]), { fin: false }), frame(0x0, Buffer.from([0x41]))]), 1007],
    ['close with a 1-byte payload', frame(0x8, Buffer.from([3])), 1002],
    ['close with code 1005 on the wire', frame(0x8, Buffer.from([0x03, 0xed])), 1002],
    ['close with code 999', frame(0x8, Buffer.from([0x03, 0xe7])), 1002],
    ['close reason not UTF-8', frame(0x8, Buffer.from([0x03, 0xe8, 0xff])), 1007],
    ['over the size limit (header alone)', frame(0x1, Buffer.alloc(0), { length: 2000 }), 1009],
    ['over the size limit (64-bit length)', frame(0x2, Buffer.alloc(0), { length: 2 ** 40 }), 1009],
    ['fragments over the size limit', Buffer.concat([frame(0x1, 'a'.repeat(600), { fin: false }), frame(0x0, 'b'.repeat(600))]), 1009],
  ];
  for (const [name, bytes, code] of cases) {
    const events = readAll([bytes, after], 1024);
    t.equal(events.length, 1, `${name}: one event`);
    t.same(events[0]?.slice(0, 2), ['error', code], `${name}: error ${code}`);
    // The same bytes cut in two give the same verdict.
    const cut = readAll([bytes.subarray(0, 2), bytes.subarray(2), after], 1024);
    t.same(cut.map((e) => e.slice(0, 2)), [['error', code]], `${name}: cut after its first bytes`);
  }
});

t.test('frame reader: invalid UTF-8 among many messages of a chunk: those before arrive, then 1007, at every cut', async (t) => {
  // The messages before an invalid one arrive, the invalid one fails the reader with 1007, nothing
  // after it arrives; a character cut between two frames (each half invalid) fails at the first
  // half. (Kept for any check of UTF-8 over more than one message; the chunk is never changed.)
  const good = (i: number): Buffer => frame(0x1, i % 3 === 0 ? `{"stream":"é€😀","data":{"t":${i}}}` : i % 3 === 1 ? 'x'.repeat(130 + i) : `{"t":${i}}`);
  const euro = Buffer.from('€');
  const bads: [string, Buffer][] = [
    ['a stray 0xff', frame(0x1, Buffer.from([0x7b, 0xff, 0x7d]))],
    ['a lone continuation byte', frame(0x1, Buffer.from([0x61, 0x80]))],
    ['an overlong encoding', frame(0x1, Buffer.from([0xc0, 0xaf]))],
    ['a surrogate', frame(0x1, Buffer.from([0xed, 0xa0, 0x80]))],
    ['a character cut between two frames', Buffer.concat([frame(0x1, euro.subarray(0, 2)), frame(0x1, euro.subarray(2))])],
    ['a character cut at a 16-bit-length header', Buffer.concat([frame(0x1, Buffer.concat([Buffer.alloc(200, 0x61), euro.subarray(0, 1)])), frame(0x1, Buffer.concat([euro.subarray(1), Buffer.alloc(200, 0x62)]))])],
  ];
  for (const [name, bad] of bads) {
    for (const at of [0, 1, 5]) {
      const before = Array.from({ length: at }, (_, i) => good(i));
      const after = Array.from({ length: 4 }, (_, i) => good(i + 10));
      const bytes = Buffer.concat([...before, bad, ...after]);
      const copy = Buffer.from(bytes);
      const want: Event[] = [...before.map((f) => ['message', f.subarray(f[1] === 126 ? 4 : 2).toString('latin1'), false] as Event), ['error', 1007, 'a text message that is not valid UTF-8']];
      t.same(readAll([bytes]), want, `${name} after ${at} good messages, one chunk`);
      t.ok(bytes.equals(copy), `${name}: the chunk's bytes are as they came`);
      let wrong = 0;
      for (let cut = 1; cut < bytes.length; cut++) if (JSON.stringify(readAll([bytes.subarray(0, cut), bytes.subarray(cut)])) !== JSON.stringify(want)) wrong++;
      t.equal(wrong, 0, `${name} after ${at} good messages, cut in two at every offset`);
    }
  }
  // All valid: every message arrives, multi-byte characters whole, and the chunk is unchanged.
  const frames = Array.from({ length: 40 }, (_, i) => good(i));
  const bytes = Buffer.concat(frames);
  const copy = Buffer.from(bytes);
  const got = readAll([bytes]);
  t.equal(got.length, 40);
  t.same(got[0], ['message', Buffer.from('{"stream":"é€😀","data":{"t":0}}').toString('latin1'), false]);
  t.ok(bytes.equals(copy), 'chunk unchanged');
});

t.test('frame reader: pause holds back the rest of the chunk and what comes after, in order', async (t) => {
  const msgs = Array.from({ length: 6 }, (_, i) => frame(0x1, `m${i}`));
  const got: string[] = [];
  const r = recorder();
  const reader: FrameReader = new FrameReader({ ...r.handlers, onMessage: (d) => {
    got.push(d.toString());
    if (got.length === 2 || got.length === 5) reader.pause();
  } }, 1024);
  // m0..m3 in one chunk, m4 split over two, m5 after.
  const tail = Buffer.concat([msgs[4]!, msgs[5]!]);
  reader.push(Buffer.concat([...msgs.slice(0, 4), tail.subarray(0, 2)]));
  t.same(got, ['m0', 'm1'], 'paused after m1');
  reader.push(tail.subarray(2));
  t.same(got, ['m0', 'm1'], 'nothing while paused');
  reader.resume();
  t.same(got, ['m0', 'm1', 'm2', 'm3', 'm4'], 'paused again after m4');
  reader.resume();
  t.same(got, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'], 'then the rest');
  t.same(r.events, [], 'no error');
});

// ---- the socket ------------------------------------------------------------------------------

interface Probe {
  events: Event[];
  handlers: FeedSocketHandlers;
  next(kind: string): Promise<Event>;
}

function probe(): Probe {
  const events: Event[] = [];
  const waiters: { kind: string; resolve: (e: Event) => void }[] = [];
  const push = (e: Event): void => {
    events.push(e);
    for (const w of [...waiters]) if (w.kind === e[0]) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  };
  let seen = 0;
  return {
    events,
    next(kind) {
      const i = events.findIndex((e, idx) => idx >= seen && e[0] === kind);
      if (i >= 0) {
        seen = i + 1;
        return Promise.resolve(events[i]!);
      }
      return new Promise((resolve) => waiters.push({ kind, resolve: (e) => {
        seen = events.length;
        resolve(e);
      } }));
    },
    handlers: {
      open: () => push(['open']),
      unexpectedResponse: (res) => {
        push(['unexpected', res.statusCode, res.headers['retry-after']]);
        res.resume();
        res.destroy();
      },
      error: (err) => push(['error', err.message]),
      close: (code, reason) => push(['close', code, reason.toString()]),
      ping: (d) => push(['ping', d.toString()]),
      pong: (d) => push(['pong', d.toString()]),
      message: (d, bin) => push(['message', d.toString(), bin]),
    },
  };
}

const OPTS = { handshakeTimeoutMs: 2000, maxPayload: 1 << 20 };

async function wsServer(t: Test): Promise<{ url: string; next: () => Promise<ServerSocket>; received: string[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const received: string[] = [];
  const queue: ServerSocket[] = [];
  const waiting: ((s: ServerSocket) => void)[] = [];
  wss.on('connection', (s) => {
    s.on('message', (d) => received.push(d.toString()));
    const w = waiting.shift();
    if (w) w(s);
    else queue.push(s);
  });
  t.teardown(() => new Promise<void>((r) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => r());
  }));
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/stream?streams=a/b`,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r))),
    received,
  };
}

/** An HTTP server whose upgrade handler is the test's. */
async function rawServer(t: Test, onUpgrade: (req: IncomingMessage, socket: Socket) => void, onRequest?: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer(onRequest ?? ((_, res) => res.end()));
  const upgraded = new Set<Socket>();
  server.on('upgrade', (req, socket) => {
    upgraded.add(socket as Socket);
    onUpgrade(req, socket as Socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    // Upgraded sockets are no longer the HTTP server's: closeAllConnections does not see them.
    for (const s of upgraded) s.destroy();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
}

function accept(req: IncomingMessage, socket: Socket, key?: string): void {
  const k = key ?? createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${k}\r\n\r\n`);
}

type Make = (url: string, opts: FeedSocketOptions, handlers: FeedSocketHandlers) => WireSocket;

// Every socket test runs twice: FeedSocket on the main thread, and ThreadedFeedSocket, whose
// FeedSocket runs on a read thread (connection.readThreads): the same events in the same order.
const thread = new ReadThread();
t.teardown(() => thread.stop());
const KINDS: [string, Make][] = [
  ['main thread', (url, opts, handlers) => new FeedSocket(url, opts, handlers)],
  ['read thread', (url, opts, handlers) => new ThreadedFeedSocket(url, opts, handlers, thread)],
];

for (const [kind, make] of KINDS) {
  t.test(`${kind}: socket against a ws server: messages, fragments, pings both ways, client frames masked`, async (t) => {
    const srv = await wsServer(t);
    const p = probe();
    const sock = make(srv.url, OPTS, p.handlers);
    const server = await srv.next();
    await p.next('open');
    t.equal(sock.readyState, OPEN);
    server.send('{"stream":"a","data":{}}');
    server.send(Buffer.from('bin'), { binary: true });
    server.send('frag', { fin: false });
    server.send('mented', { fin: true });
    server.ping('hello');
    t.same(await p.next('message'), ['message', '{"stream":"a","data":{}}', false]);
    t.same(await p.next('message'), ['message', 'bin', true]);
    t.same(await p.next('message'), ['message', 'fragmented', false]);
    t.same(await p.next('ping'), ['ping', 'hello']);
    // ws's server refuses unmasked client frames (1002): these arriving proves the masking.
    const got = new Promise<string>((r) => server.once('message', (d) => r(d.toString())));
    sock.send('{"method":"SUBSCRIBE","params":["c"],"id":1}');
    t.equal(await got, '{"method":"SUBSCRIBE","params":["c"],"id":1}');
    const long = 'L'.repeat(70_000);
    const gotLong = new Promise<string>((r) => server.once('message', (d) => r(d.toString())));
    sock.send(long);
    t.equal((await gotLong).length, 70_000, 'a 64-bit-length client frame');
    const pinged = new Promise<string>((r) => server.once('ping', (d) => r(d.toString())));
    sock.ping(Buffer.from('p1'));
    t.equal(await pinged, 'p1');
    t.same(await p.next('pong'), ['pong', 'p1'], 'the server pongs our ping');
    const serverClosed = new Promise<[number, string]>((r) => server.once('close', (code, reason) => r([code, reason.toString()])));
    sock.close(1000, 'rotation');
    t.same(await serverClosed, [1000, 'rotation'], 'closing handshake: the server got our code and reason');
    t.same(await p.next('close'), ['close', 1000, 'rotation'], 'and echoed it');
    t.equal(sock.readyState, CLOSED);
    t.notOk(p.events.some((e) => e[0] === 'error'), 'no error');
  });

  t.test(`${kind}: socket: a close from the server is answered and reported with its code`, async (t) => {
    const srv = await wsServer(t);
    const p = probe();
    make(srv.url, OPTS, p.handlers);
    const server = await srv.next();
    await p.next('open');
    const echoed = new Promise<number>((r) => server.once('close', (code) => r(code)));
    server.close(4001, 'maintenance');
    t.same(await p.next('close'), ['close', 4001, 'maintenance']);
    t.equal(await echoed, 4001, 'the server saw its code echoed');
  });

  t.test(`${kind}: socket: a connection cut without a close frame is 1006; terminate is immediate`, async (t) => {
    const srv = await wsServer(t);
    const p = probe();
    make(srv.url, OPTS, p.handlers);
    (await srv.next()).terminate();
    t.same((await p.next('close')).slice(0, 2), ['close', 1006]);

    const q = probe();
    const s2 = make(srv.url, OPTS, q.handlers);
    await srv.next();
    await q.next('open');
    s2.terminate();
    t.same((await q.next('close')).slice(0, 2), ['close', 1006]);

    const r = probe();
    const s3 = make(srv.url, OPTS, r.handlers);
    s3.terminate();
    t.same((await r.next('close')).slice(0, 2), ['close', 1006], 'terminate before the upgrade');
    t.notOk(r.events.some((e) => e[0] === 'open'), 'never opened');
  });

  t.test(`${kind}: socket: an upgrade refused with 429 reaches unexpectedResponse with its Retry-After`, async (t) => {
    const url = await rawServer(t, (_req, socket) => {
      socket.end('HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    const p = probe();
    make(url, OPTS, p.handlers);
    t.same(await p.next('unexpected'), ['unexpected', 429, '7']);
    t.notOk(p.events.some((e) => e[0] === 'open' || e[0] === 'error'), 'neither open nor error');
  });

  t.test(`${kind}: socket: a wrong Sec-WebSocket-Accept, an extension nobody asked for, frames in the upgrade response`, async (t) => {
    const wrong = await rawServer(t, (req, socket) => accept(req, socket, 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='));
    const p = probe();
    make(wrong, OPTS, p.handlers);
    t.same(await p.next('error'), ['error', 'Invalid Sec-WebSocket-Accept header']);
    t.same((await p.next('close')).slice(0, 2), ['close', 1006]);
    t.notOk(p.events.some((e) => e[0] === 'open'), 'never open');

    const ext = await rawServer(t, (req, socket) => {
      const k = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${k}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`);
    });
    const q = probe();
    make(ext, OPTS, q.handlers);
    t.match((await q.next('error'))[1], /Sec-WebSocket-Extensions/);

    // A server may send its first frames in the same packet as the 101.
    const eager = await rawServer(t, (req, socket) => {
      accept(req, socket);
      socket.write(frame(0x1, 'first'));
    });
    const r = probe();
    make(eager, OPTS, r.handlers);
    await r.next('open');
    t.same(await r.next('message'), ['message', 'first', false]);
  });

  t.test(`${kind}: socket: invalid UTF-8 from the server fails the connection with 1007, after the messages before it`, async (t) => {
    const url = await rawServer(t, (req, socket) => {
      accept(req, socket);
      socket.write(Buffer.concat([frame(0x1, 'good'), frame(0x1, Buffer.from([0x22, 0xc3, 0x28, 0x22])), frame(0x1, 'never')]));
      socket.on('data', () => undefined);
    });
    const p = probe();
    make(url, OPTS, p.handlers);
    t.same(await p.next('message'), ['message', 'good', false]);
    t.same(await p.next('error'), ['error', 'a text message that is not valid UTF-8']);
    t.same((await p.next('close')).slice(0, 2), ['close', 1007]);
    t.equal(p.events.filter((e) => e[0] === 'message').length, 1, 'nothing after the bad frame');
  });

  t.test(`${kind}: socket: wss: a TLS server: messages, one over many reads, a ping; refused without its certificate`, async (t) => {
    const dir = new URL('./fixtures/tls/', import.meta.url);
    const cert = readFileSync(new URL('cert.pem', dir));
    const server = createHttpsServer({ cert, key: readFileSync(new URL('key.pem', dir)) });
    const wss = new WebSocketServer({ server });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close(() => r());
    }));
    const big = 'y'.repeat(300_000);
    wss.on('connection', (s) => {
      s.send('hello over tls');
      s.send(big);
      s.ping('are you there');
      s.on('message', (d) => s.send(`echo ${d.toString()}`));
    });
    const p = probe();
    const sock = make(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/ws`, { ...OPTS, ca: cert }, p.handlers);
    await p.next('open');
    t.same(await p.next('message'), ['message', 'hello over tls', false]);
    const second = await p.next('message');
    t.ok(second[1] === big, 'a 300,000-byte message, more than one read');
    sock.send('ping-pong');
    t.same(await p.next('message'), ['message', 'echo ping-pong', false]);
    t.ok(p.events.some((e) => e[0] === 'ping' && e[1] === 'are you there'), 'the server\'s ping');
    const untrusted = probe();
    make(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/ws`, OPTS, untrusted.handlers);
    t.match((await untrusted.next('error'))[1], /self-signed certificate/, 'without the ca: refused');
    t.same((await untrusted.next('close')).slice(0, 2), ['close', 1006]);
  });

  t.test(`${kind}: socket: a server that never answers the upgrade times out`, async (t) => {
    const silent = createTcpServer((s) => s.on('data', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => new Promise<void>((r) => silent.close(() => r())));
    const p = probe();
    const started = Date.now();
    make(`ws://127.0.0.1:${(silent.address() as AddressInfo).port}/`, { ...OPTS, handshakeTimeoutMs: 200 }, p.handlers);
    t.same(await p.next('error'), ['error', 'Opening handshake has timed out']);
    t.same((await p.next('close')).slice(0, 2), ['close', 1006]);
    t.ok(Date.now() - started >= 150, 'after the timeout, not before');
    const refused = probe();
    // A port nothing listens on (the silent server's, once closed, could be reused: use port 9 of loopback).
    make('ws://127.0.0.1:9/', OPTS, refused.handlers);
    t.match((await refused.next('error'))[1], /ECONNREFUSED/);
    t.same((await refused.next('close')).slice(0, 2), ['close', 1006]);
    t.throws(() => make('http://127.0.0.1:9/', OPTS, probe().handlers), /not a WebSocket URL/);
  });
}

// The read thread's own behaviour: flow control through TCP, pause across batches, its death.

/** Resolves once `read()` has not changed over three looks 50 ms apart. */
async function settled(read: () => number): Promise<number> {
  let last = read();
  let same = 0;
  while (same < 3) {
    await new Promise((r) => setTimeout(r, 50));
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

t.test('read thread: paused, it stops reading the socket (the exchange is held back by TCP); resumed, every message in order', async (t) => {
  const srv = await wsServer(t);
  const p = probe();
  let seen = 0;
  let inOrder = true;
  const handlers: FeedSocketHandlers = {
    ...p.handlers,
    message: (d) => {
      if (d.readUInt32BE(0) !== seen) inOrder = false;
      seen++;
      // Paused from inside a batch, as the session's burst yield and the read hold do.
      if (seen === 10) sock.pause();
    },
  };
  const sock = new ThreadedFeedSocket(srv.url, OPTS, handlers, thread);
  const server = await srv.next();
  await p.next('open');
  const N = 2000;
  const SIZE = 16 * 1024;
  for (let i = 0; i < N; i++) {
    const m = Buffer.alloc(SIZE, 0x41);
    m.writeUInt32BE(i, 0);
    server.send(m, { binary: true });
  }
  const buffered = await settled(() => server.bufferedAmount);
  t.equal(seen, 10, 'nothing handed on after the pause');
  // 32 MiB sent; the thread holds at most 8 reads of 64 KiB, the kernel a few MiB of socket buffers.
  t.ok(buffered > 16 * 1024 * 1024, `the rest waits at the sender: ${buffered} bytes not written`);
  sock.resume();
  await new Promise<void>((resolve) => {
    const check = (): void => (seen >= N ? resolve() : void setTimeout(check, 10));
    check();
  });
  t.equal(seen, N, 'every message');
  t.ok(inOrder, 'in order');
  t.equal(server.bufferedAmount, 0, 'the sender drained');
  sock.close(1000, '');
  await p.next('close');
});

t.test('read thread: terminate while batches wait drops them and closes', async (t) => {
  const srv = await wsServer(t);
  const p = probe();
  let seen = 0;
  const sock = new ThreadedFeedSocket(srv.url, OPTS, { ...p.handlers, message: () => void (++seen === 1 && sock.pause()) }, thread);
  const server = await srv.next();
  await p.next('open');
  for (let i = 0; i < 100; i++) server.send(`m${i}`);
  await settled(() => server.bufferedAmount);
  sock.terminate();
  t.same((await p.next('close')).slice(0, 2), ['close', 1006]);
  sock.resume();
  t.equal(seen, 1, 'nothing handed on after terminate');
});

t.test('read thread: a thread that dies ends its connections (error, 1006); the next connection gets a new one', async (t) => {
  const srv = await wsServer(t);
  const first = readThread(1);
  const p = probe();
  new ThreadedFeedSocket(srv.url, OPTS, p.handlers, first);
  await srv.next();
  await p.next('open');
  await first.stop();
  t.match((await p.next('error'))[1], /read thread lost/);
  t.same((await p.next('close')).slice(0, 2), ['close', 1006]);
  t.notOk(first.alive);
  const second = readThread(1);
  t.not(second, first, 'a new thread');
  t.ok(second.alive);
  const q = probe();
  const s = new ThreadedFeedSocket(srv.url, OPTS, q.handlers, second);
  const server = await srv.next();
  await q.next('open');
  server.send('after');
  t.same(await q.next('message'), ['message', 'after', false]);
  s.close(1000, '');
  await q.next('close');
  await second.stop();
});
