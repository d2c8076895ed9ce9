import { writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { loadConfig } from '../src/config/load.js';
import { blankNewlines, decimalLength, encodeStreamLine, streamLineLength } from '../src/recorder/encode.js';
import { keyId } from '../src/sinks/nats/identity.js';
import { COLLECTOR_HEADER, FramePublisher } from '../src/sinks/nats/publisher.js';
import { ackInbox, readPubAck } from '../src/sinks/nats/sink.js';
import { messageSubject } from '../src/sinks/nats/subjects.js';
import type { StreamRef } from '../src/pipeline/stream-ref.js';
import { binanceSpot } from '../src/venues/binance/spot.js';
import {
  BENCH_COLLECTOR,
  BENCH_RECV_MS,
  benchRefs,
  benchTradeFrame,
  benchTradeId,
  cpuSeconds,
  NATS_BENCH_DEFAULTS,
  round2,
  startNatsServer,
  stopNatsServer,
  type NatsBenchResult,
} from './nats-bench.js';

/**
 * The broker's floor on this machine (a benchmark, not a timed test):
 *
 *   npm run build && node dist/bench/nats-floor.js [--messages N] [--streams N] [--inflight N] [--no-msgid] [--no-ack] [--json FILE]
 *
 * (also one run in the NATS phase of `npm run bench`: bench/nats-suite.ts)
 *
 * The same kind of run as bench/nats-bench.ts (its own `nats-server -js -sd <tmp>` on a free
 * loopback port, the stream the sink creates: its name, `<prefix>.>`, file storage, the duplicate
 * window), but no client library and no sink: every `HPUB` frame the sink's `frames` publisher
 * would write (subject `md.binance-spot.trade.<SYM>`, reply `<inbox><seq>`, the Nats-Msg-Id and
 * Feedkeeper-Collector headers, the recording line as payload; the first one checked byte for byte
 * against FramePublisher's) is built before the clock starts, and the run writes slices of that one
 * buffer to ONE raw TCP socket, at most `--inflight` publishes unacknowledged, and counts the acks
 * (`MSG` lines on the inbox). So the client's CPU per message is close to nothing and the msg/s is
 * what nats-server reaches on this machine. Variants, to tell where the broker's CPU goes:
 *
 * - `--no-msgid`: frames without the Nats-Msg-Id header (no de-duplication).
 * - `--no-ack`: frames without a reply subject (no PubAck); written as fast as the socket takes
 *   them, measured until STREAM.INFO reports every message stored.
 */

export interface NatsFloorOptions {
  messages: number;
  streams: number;
  inflight: number;
  /** Frames carry the Nats-Msg-Id header (the sink's frames do). */
  msgId: boolean;
  /** Frames carry a reply subject: JetStream acks each (the sink's frames do). */
  ack: boolean;
}

export const NATS_FLOOR_DEFAULTS: NatsFloorOptions = { messages: NATS_BENCH_DEFAULTS.messages, streams: NATS_BENCH_DEFAULTS.streams, inflight: NATS_BENCH_DEFAULTS.inflight, msgId: true, ack: true };

/** NatsBenchResult's fields (`acked`: stored, with `--no-ack`) and the floor's own. */
export interface NatsFloorResult extends Omit<NatsBenchResult, 'publisher'> {
  publisher: 'floor';
  msgId: boolean;
  ack: boolean;
  /** PubAcks that were not a plain ack (an error, a duplicate); in `failures` too. */
  errors: number;
  duplicates: number;
  /** Acks whose payload was read as text (every 1024th): all must have `"seq":` and no `"error"`. */
  sampled: number;
  /** The stream's message count after the run (STREAM.INFO). */
  stored: number;
  /** Bytes per message on the wire (the whole HPUB frame); bytesPerMessage is the payload's. */
  wireBytesPerMessage: number;
}

export type NatsFloorRunner = (opts: NatsFloorOptions) => Promise<NatsFloorResult>;

function parseArgs(argv: string[]): NatsFloorOptions & { json: string | null } {
  const a = { ...NATS_FLOOR_DEFAULTS, json: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--no-msgid') a.msgId = false;
    else if (k === '--no-ack') a.ack = false;
    else {
      const v = argv[++i];
      if (k === '--messages') a.messages = Number(v);
      else if (k === '--streams') a.streams = Number(v);
      else if (k === '--inflight') a.inflight = Number(v);
      else if (k === '--json') a.json = v ?? null;
      else throw new Error(`unknown argument ${k}`);
    }
  }
  for (const k of ['messages', 'streams', 'inflight'] as const) if (!Number.isInteger(a[k]) || a[k] <= 0) throw new Error(`--${k} needs a positive integer`);
  return a;
}

const CRLF = Buffer.from('\r\n');

/**
 * One HPUB frame as the sink's frames publisher writes it: `HPUB <subject> <reply> <hlen> <len>\r\n`,
 * `NATS/1.0\r\nFeedkeeper-Collector: <c>\r\nNats-Msg-Id: <id>\r\n\r\n`, the payload, `\r\n`;
 * without the reply (`reply` null) or the Msg-Id (`msgId` null) for the variants.
 */
export function floorFrame(subject: string, reply: string | null, collector: string, msgId: string | null, payload: Buffer): Buffer {
  const headers = Buffer.from(`NATS/1.0\r\n${COLLECTOR_HEADER}: ${collector}\r\n${msgId === null ? '' : `Nats-Msg-Id: ${msgId}\r\n`}\r\n`);
  const line = Buffer.from(`HPUB ${subject} ${reply === null ? '' : `${reply} `}${headers.length} ${headers.length + payload.length}\r\n`);
  return Buffer.concat([line, headers, payload, CRLF]);
}

/** The payload the sink publishes for a frame: its recording line without the newline (NatsSink.write). */
function sinkPayload(frame: Buffer, ref: StreamRef): Buffer {
  const digits = decimalLength(BENCH_RECV_MS);
  const len = streamLineLength(ref.head, frame, ref.start, ref.close, digits);
  const out = Buffer.alloc(len);
  encodeStreamLine(out, 0, ref.head, frame, ref.start, ref.close, BENCH_RECV_MS, digits);
  blankNewlines(out, 0, len - 1);
  return out.subarray(0, len - 1);
}

interface Prebuilt {
  /** Every frame, back to back. */
  buf: Buffer;
  /** Frame n is buf[at[n] .. at[n + 1]). */
  at: Float64Array;
  payloadBytes: number;
}

/** All frames of the run, before the clock starts; the first checked against FramePublisher's. */
function buildFrames(opts: NatsFloorOptions, inbox: string): Prebuilt {
  const refs = benchRefs(opts.streams);
  const prefix = loadConfig({ files: [], env: {} }).sinks.nats.subjectPrefix;
  const subjects = refs.map((r) => messageSubject(prefix, binanceSpot, r.name));
  const idPrefixes = refs.map((r) => `${r.venue}:${r.name}:`);
  const keys = { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
  const msgIdOf = (n: number): string => {
    keys.first = keys.last = benchTradeId(n, opts.streams);
    return keyId(idPrefixes[n % opts.streams]!, keys);
  };
  const digits = decimalLength(BENCH_RECV_MS);
  const headHead = `NATS/1.0\r\n${COLLECTOR_HEADER}: ${BENCH_COLLECTOR}\r\n`;
  let payloadBytes = 0;
  // Frame n written straight into one buffer (strings and the exchange frame its only garbage).
  const write = (buf: Buffer, pos: number, n: number): number => {
    const s = n % opts.streams;
    const ref = refs[s]!;
    const frame = benchTradeFrame(s, benchTradeId(n, opts.streams));
    const headers = opts.msgId ? `${headHead}Nats-Msg-Id: ${msgIdOf(n)}\r\n\r\n` : `${headHead}\r\n`;
    const payload = streamLineLength(ref.head, frame, ref.start, ref.close, digits) - 1;
    payloadBytes += payload;
    let p = pos;
    p += buf.write(`HPUB ${subjects[s]!} ${opts.ack ? `${inbox}${n} ` : ''}${headers.length} ${headers.length + payload}\r\n`, p, 'latin1');
    p += buf.write(headers, p, 'latin1');
    const end = encodeStreamLine(buf, p, ref.head, frame, ref.start, ref.close, BENCH_RECV_MS, digits);
    blankNewlines(buf, p, end - 1);
    buf[end - 1] = CR;
    buf[end] = LF;
    return end + 1;
  };
  const sample = Buffer.alloc(4096);
  const firstLength = write(sample, 0, 0);
  payloadBytes = 0;
  let buf = Buffer.allocUnsafeSlow(opts.messages * (firstLength + 32));
  const at = new Float64Array(opts.messages + 1);
  let pos = 0;
  for (let n = 0; n < opts.messages; n++) {
    if (pos + firstLength + 1024 > buf.length) {
      const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
      buf.copy(bigger, 0, 0, pos);
      buf = bigger;
    }
    at[n] = pos;
    pos = write(buf, pos, n);
  }
  at[opts.messages] = pos;

  // The shape: the full frame (Msg-Id and reply) as FramePublisher writes it, and frame 0 of this run the same but what the variant leaves out.
  const payload0 = sinkPayload(benchTradeFrame(0, benchTradeId(0, opts.streams)), refs[0]!);
  const full = floorFrame(subjects[0]!, `${inbox}0`, BENCH_COLLECTOR, msgIdOf(0), payload0);
  const theirs = capturePublisherFrame(inbox, subjects[0]!, payload0, msgIdOf(0), 0);
  if (!full.equals(theirs)) throw new Error(`the floor's frame differs from FramePublisher's:\n${JSON.stringify(full.toString('latin1'))}\n${JSON.stringify(theirs.toString('latin1'))}`);
  const variant = floorFrame(subjects[0]!, opts.ack ? `${inbox}0` : null, BENCH_COLLECTOR, opts.msgId ? msgIdOf(0) : null, payload0);
  if (!variant.equals(buf.subarray(at[0]!, at[1]!))) throw new Error(`prebuilt frame 0 differs from floorFrame(): ${JSON.stringify(buf.toString('latin1', at[0]!, at[1]!))}`);
  return { buf: buf.subarray(0, pos), at, payloadBytes };
}

/** What FramePublisher writes for one publish, its chunk handed to a fake protocol handler. */
function capturePublisherFrame(inbox: string, subject: string, payload: Buffer, msgId: string, seq: number): Buffer {
  const out: Buffer[] = [];
  const nc = { isClosed: () => false, info: undefined } as unknown as NatsConnection;
  const proto = { noMorePublishing: false, sendCommand: (b: Uint8Array) => void out.push(Buffer.from(b)) };
  const p = new FramePublisher(nc, proto, inbox, BENCH_COLLECTOR);
  p.publish(subject, payload, msgId, seq);
  // Handed over on the next microtask (or past 64 KiB): taken from its private flush at once.
  (p as unknown as { flush(): void }).flush();
  return Buffer.concat(out);
}

/** The stream exactly as NatsSink's ensureStream creates it (src/sinks/nats/sink.ts), over a client connection of its own. */
async function createSinkStream(url: string): Promise<{ stream: string }> {
  const cfg = loadConfig({ files: [], env: {} }).sinks.nats;
  const nc = await connect({ servers: [url] });
  try {
    const jsm = await jetstreamManager(nc, { timeout: cfg.ackTimeoutMs });
    await jsm.streams.add({
      name: cfg.stream,
      subjects: [`${cfg.subjectPrefix}.>`],
      storage: StorageType.File,
      duplicate_window: nanos(cfg.duplicateWindowMs),
      max_age: cfg.maxAgeMs > 0 ? nanos(cfg.maxAgeMs) : 0,
    });
  } finally {
    await nc.close();
  }
  return { stream: cfg.stream };
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The raw socket: INFO read, `CONNECT` + `SUB <inbox>* 1` sent, then every frame from the server
 * cut by the line and its size. Acks (`MSG <inbox><digits> 1 <size>`) are counted and read with the
 * sink's readPubAck; other replies on the inbox (STREAM.INFO) go to their waiter; PING is answered.
 */
class RawNats {
  acks = 0;
  errors = 0;
  duplicates = 0;
  sampled = 0;
  onAcks: () => void = () => undefined;
  private carry: Buffer | null = null;
  private readonly prefix: Buffer;
  private readonly waiters = new Map<string, (payload: Buffer) => void>();
  private pong: (() => void) | null = null;
  private failed: (err: Error) => void = () => undefined;
  private nextReq = 0;

  private constructor(
    readonly socket: Socket,
    readonly inbox: string,
  ) {
    this.prefix = Buffer.from(`MSG ${inbox}`);
  }

  static open(port: number, inbox: string): Promise<RawNats> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      const c = new RawNats(socket, inbox);
      c.failed = reject;
      let info = Buffer.alloc(0);
      const onInfo = (chunk: Buffer): void => {
        info = Buffer.concat([info, chunk]);
        const nl = info.indexOf(LF);
        if (nl < 0) return;
        socket.off('data', onInfo);
        if (!info.subarray(0, 5).equals(Buffer.from('INFO '))) return reject(new Error(`not a NATS server: ${info.toString('latin1', 0, nl)}`));
        socket.on('data', (b: Buffer) => c.parse(b));
        c.pong = () => resolve(c);
        socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\nSUB ${inbox}* 1\r\nPING\r\n`);
        if (nl + 1 < info.length) c.parse(info.subarray(nl + 1));
      };
      socket.on('data', onInfo);
      socket.once('error', (err) => c.failed(err));
      socket.once('close', () => c.failed(new Error('nats-server closed the connection')));
    });
  }

  /** Rejects with the connection's error (or -ERR) from now on. */
  onFailure(fn: (err: Error) => void): void {
    this.failed = fn;
  }

  /** A core request on the socket: `PUB <subject> <inbox>r<k> <len>`; the reply's payload. */
  request(subject: string, body = ''): Promise<Buffer> {
    const reply = `${this.inbox}r${this.nextReq++}`;
    return new Promise((resolve) => {
      this.waiters.set(reply, resolve);
      this.socket.write(`PUB ${subject} ${reply} ${Buffer.byteLength(body)}\r\n${body}\r\n`);
    });
  }

  async streamMessages(stream: string): Promise<number> {
    const info = JSON.parse((await this.request(`$JS.API.STREAM.INFO.${stream}`)).toString('utf8')) as { state?: { messages?: number }; error?: unknown };
    if (info.state?.messages === undefined) throw new Error(`STREAM.INFO ${stream}: ${JSON.stringify(info.error ?? info)}`);
    return info.state.messages;
  }

  private parse(chunk: Buffer): void {
    let buf = chunk;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    const n = buf.length;
    const acks0 = this.acks;
    let i = 0;
    while (i < n) {
      const nl = buf.indexOf(LF, i);
      if (nl < 0) break;
      const op = buf[i]!;
      let end = nl + 1;
      if (op === 0x4d /* MSG */ || op === 0x48 /* HMSG */) {
        const e = buf[nl - 1] === CR ? nl - 1 : nl;
        let s = e;
        let size = 0;
        for (let pow = 1; s > i; s--, pow *= 10) {
          const d = buf[s - 1]! - 0x30;
          if (d < 0 || d > 9) break;
          size += d * pow;
        }
        end = nl + 1 + size + 2;
        if (end > n) break;
        this.message(buf, i, op === 0x48, nl + 1, nl + 1 + size);
      } else if (op === 0x50 /* PING, PONG */) {
        if (buf[i + 1] === 0x49) this.socket.write('PONG\r\n');
        else {
          const p = this.pong;
          this.pong = null;
          p?.();
        }
      } else if (op === 0x2d /* -ERR */) {
        this.failed(new Error(`nats-server: ${buf.toString('latin1', i, nl).trim()}`));
      }
      i = end;
    }
    if (i < n) this.carry = Buffer.from(buf.subarray(i));
    if (this.acks !== acks0) this.onAcks();
  }

  private message(buf: Buffer, at: number, hmsg: boolean, start: number, end: number): void {
    const prefix = this.prefix;
    let ours = !hmsg;
    for (let k = 0; ours && k < prefix.length; k++) if (buf[at + k] !== prefix[k]) ours = false;
    const next = buf[at + prefix.length]!;
    if (ours && next >= 0x30 && next <= 0x39) {
      // A PubAck on <inbox><seq>.
      this.acks++;
      const ack = readPubAck(buf, start, end);
      if (ack === null) this.errors++;
      else if (ack.duplicate) this.duplicates++;
      if ((this.acks & 1023) === 1) {
        this.sampled++;
        const text = buf.toString('latin1', start, end);
        if (!text.includes('"seq":') || text.includes('"error"')) this.errors++;
      }
      return;
    }
    // Another reply (STREAM.INFO), or an HMSG (a no-responders status): by its subject.
    const subject = buf.toString('latin1', at + (hmsg ? 5 : 4), buf.indexOf(0x20, at + (hmsg ? 5 : 4)));
    const w = this.waiters.get(subject);
    if (w !== undefined) {
      this.waiters.delete(subject);
      w(Buffer.from(buf.subarray(start, end)));
    } else if (subject.startsWith(this.inbox)) {
      // A status instead of an ack (503 no responders): counted as an ack that failed.
      this.acks++;
      this.errors++;
    }
  }
}

/** One run: its own nats-server, the sink's stream, `messages` prebuilt frames over one raw socket. */
export async function runNatsFloor(opts: NatsFloorOptions): Promise<NatsFloorResult> {
  const server = await startNatsServer();
  let conn: RawNats | null = null;
  try {
    const { stream } = await createSinkStream(server.url);
    const inbox = ackInbox();
    const frames = buildFrames(opts, inbox);
    const c = (conn = await RawNats.open(server.port, inbox));
    const N = opts.messages;
    const { buf, at } = frames;
    let sent = 0;
    let writeEnd = 0n;

    const cpu0 = process.cpuUsage();
    const server0 = cpuSeconds(server.child.pid);
    const start = process.hrtime.bigint();
    const done = new Promise<void>((resolve, reject) => {
      c.onFailure(reject);
      if (opts.ack) {
        // Keep at most `inflight` unacknowledged: on each chunk of acks, write what the window allows.
        const pump = (): void => {
          const allow = Math.min(N, c.acks + opts.inflight);
          if (allow > sent) {
            c.socket.write(buf.subarray(at[sent]!, at[allow]!));
            sent = allow;
            if (sent === N) writeEnd = process.hrtime.bigint();
          }
          if (c.acks >= N) resolve();
        };
        c.onAcks = pump;
        pump();
      } else {
        // No acks: as fast as the socket takes them, then STREAM.INFO until every message is stored.
        const piece = 1 << 20;
        let pos = 0;
        const write = (): void => {
          while (pos < buf.length) {
            const endAt = Math.min(buf.length, pos + piece);
            const more = c.socket.write(buf.subarray(pos, endAt));
            pos = endAt;
            if (!more) return void c.socket.once('drain', write);
          }
          sent = N;
          writeEnd = process.hrtime.bigint();
          const poll = (): void => {
            c.streamMessages(stream).then((m) => {
              if (m >= N) resolve();
              else setTimeout(poll, 2);
            }, reject);
          };
          poll();
        };
        write();
      }
    });
    await done;
    const end = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpu0);
    const serverCpu = cpuSeconds(server.child.pid) - server0;
    const stored = await c.streamMessages(stream);
    const acked = opts.ack ? c.acks - c.errors : stored;
    const seconds = Number(end - start) / 1e9;
    return {
      server: server.version,
      node: process.version,
      messages: N,
      streams: opts.streams,
      maxInflight: opts.ack ? opts.inflight : 0,
      publisher: 'floor',
      msgId: opts.msgId,
      ack: opts.ack,
      acked,
      dropped: 0,
      failures: c.errors,
      errors: c.errors,
      duplicates: c.duplicates,
      sampled: c.sampled,
      stored,
      writeSeconds: Number(writeEnd - start) / 1e9,
      seconds,
      messagesPerSecond: Math.round(acked / seconds),
      bytesPerMessage: Math.round(frames.payloadBytes / N),
      wireBytesPerMessage: Math.round(buf.length / N),
      clientCpuMicros: round2((cpu.user + cpu.system) / acked),
      serverCpuMicros: round2((serverCpu * 1e6) / acked),
      loadAverage: loadavg().map((v) => Number(v.toFixed(2))),
    };
  } finally {
    conn?.onFailure(() => undefined);
    conn?.socket.destroy();
    stopNatsServer(server);
  }
}

export function floorVariant(r: Pick<NatsFloorResult, 'msgId' | 'ack'>): string {
  return [r.ack ? 'acked' : 'no ack', r.msgId ? 'Msg-Id' : 'no Msg-Id'].join(', ');
}

export function formatFloorRun(r: NatsFloorResult): string {
  return (
    `  ${r.acked} of ${r.messages} messages over ${r.streams} streams in ${r.seconds.toFixed(2)} s: ${r.messagesPerSecond.toLocaleString('en')} msg/s ${r.ack ? 'acked' : 'stored'}` +
    ` (broker floor, ${floorVariant(r)}; CPU ${r.clientCpuMicros} µs/msg here, ${r.serverCpuMicros} in nats-server; load ${r.loadAverage.join(' ')};` +
    ` writes done after ${r.writeSeconds.toFixed(2)} s; ${r.errors} errors, ${r.duplicates} duplicates, ${r.sampled} acks read as text; ${r.stored} in the stream;` +
    ` ${r.wireBytesPerMessage} bytes a frame, ${r.bytesPerMessage} of payload${r.ack ? `; in flight <= ${r.maxInflight}` : ''})`
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const r = await runNatsFloor(args);
  process.stdout.write(`NATS broker floor, prebuilt HPUB frames over one raw socket into JetStream (${r.server}, file storage, Node ${r.node}):\n${formatFloorRun(r)}\n`);
  if (args.json !== null) writeFileSync(args.json, JSON.stringify(r, null, 2) + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
