import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FrameReader } from '../src/connection/wire/frame-reader.js';
import { silentLogger } from '../src/log.js';
import { createMetrics, venueMetrics } from '../src/metrics/registry.js';
import { StreamRouter, type GapSink } from '../src/pipeline/stream-router.js';
import { Recorder } from '../src/recorder/recorder.js';
import { getVenue } from '../src/venues/index.js';
import type { MarketProtocol, ProtocolIO } from '../src/venues/types.js';
import { BENCH_STREAM_TYPES, benchSymbols, nowMicros, streamTemplate, writeFrame } from './frames.js';

/**
 * feedkeeper's hot path in one process, without sockets or a source: pre-built WebSocket frames of
 * the flood source (bench/frames.ts, fresh IDs for every message) go through the daemon's own
 * FrameReader → BinanceProtocol.onFrame → StreamRouter.route → Recorder (writing to a temporary
 * directory, flushed every 16 chunks) in 64 KB chunks, as a socket hands them over. It reports the
 * main thread's wall time per message inside push().
 *
 *   npx tsc -p . && node dist/bench/hot-path.js [--messages N] [--streams N] [--pause]
 *
 * For a figure that does not depend on the machine's load, count instructions with callgrind, from
 * the built chunks to the recorder closed (`--pause` waits for a line on stdin before and after that
 * part, so that callgrind counts it alone: `bench/hot-path-callgrind.sh`, which prints instructions
 * per message).
 *
 * The session's own per-message work (the stale watchdog's touch, the burst counter) and the
 * kernel's are not in it: `npm run bench` measures the whole daemon.
 */

const CHUNK_BYTES = 64 * 1024;
const FLUSH_CHUNKS = 16;

export interface HotPathResult {
  messages: number;
  streams: number;
  written: number;
  dropped: number;
  /** Main-thread wall time inside push(), per message. */
  nsPerMessage: number;
}

class CountingGaps implements GapSink {
  opened = 0;
  openGap(): string {
    return `g${++this.opened}`;
  }
  closeGap(): void {}
  instant(): string {
    return `g${++this.opened}`;
  }
  inMaintenance(): boolean {
    return false;
  }
}

/** `messages` frames round-robin over `streams` streams, cut into socket-sized chunks. */
export function buildChunks(messages: number, streams: number): Buffer[] {
  const names = benchSymbols(streams).flatMap((s) => BENCH_STREAM_TYPES.map((t) => `${s.toLowerCase()}@${t}`)).slice(0, streams);
  const templates = names.map((n) => streamTemplate(n)!);
  const chunks: Buffer[] = [];
  let chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES + 1024);
  let pos = 0;
  for (let i = 0; i < messages; i++) {
    const t = templates[i % templates.length]!;
    const len = t.bytes.length;
    chunk[pos] = 0x81;
    if (len < 126) {
      chunk[pos + 1] = len;
      pos += 2;
    } else {
      chunk[pos + 1] = 126;
      chunk.writeUInt16BE(len, pos + 2);
      pos += 4;
    }
    pos = writeFrame(chunk, pos, t, nowMicros());
    if (pos >= CHUNK_BYTES) {
      // A socket's chunk ends anywhere: the part past 64 KB starts the next chunk.
      chunks.push(chunk.subarray(0, CHUNK_BYTES));
      const rest = chunk.subarray(CHUNK_BYTES, pos);
      chunk = Buffer.allocUnsafeSlow(CHUNK_BYTES + 1024);
      rest.copy(chunk, 0);
      pos = rest.length;
    }
  }
  if (pos > 0) chunks.push(chunk.subarray(0, pos));
  return chunks;
}

/** One line from stdin (the callgrind script's go-ahead). */
export function nextLine(): Promise<void> {
  return new Promise((resolve) => {
    process.stdin.once('data', () => {
      process.stdin.pause();
      resolve();
    });
    process.stdin.resume();
  });
}

export interface BenchPipeline {
  recorder: Recorder;
  protocol: MarketProtocol;
  /** What the protocol hands data frames to: the router, then `afterData`. */
  io: ProtocolIO;
}

/**
 * The daemon's pipeline after the socket, for binance-spot's `streams` bench streams: protocol →
 * router → recorder (opened, in `dir`, no flush or fsync timer: the harness flushes).
 */
export async function benchPipeline(dir: string, streams: number, maxBufferBytes: number, afterData: () => void = () => undefined): Promise<BenchPipeline> {
  const venue = getVenue('binance-spot')!;
  const metrics = venueMetrics(createMetrics({ defaultMetrics: false }), venue.name);
  const logger = silentLogger();
  const recorder = new Recorder({ dir, venue: venue.name, maxBufferBytes, flushIntervalMs: 3_600_000, fsyncIntervalMs: 3_600_000, logger, metrics });
  await recorder.open();
  const names = benchSymbols(streams).flatMap((s) => BENCH_STREAM_TYPES.map((t) => `${s.toLowerCase()}@${t}`)).slice(0, streams);
  const router = new StreamRouter({ venue, streams: new Map(names.map((n) => [n, venue.streamType(venue.typeOf(n))!])), gaps: new CountingGaps(), recorder, metrics, logger });
  const session = { id: 'c0#1', connectionId: 'c0', alive: true, seq: 1 };
  const protocol = venue.protocol({ base: 'ws://127.0.0.1', path: '/stream', streams: names, streamsPerSubscribe: names.length, replyTimeoutMs: 1000, clock: { setTimeout, clearTimeout } });
  const io: ProtocolIO = {
    id: session.id,
    send: () => undefined,
    data: (frame, at) => {
      router.route(session, frame, at);
      afterData();
    },
    malformed: (frame, why) => router.malformed(session, frame, why),
    shutdownNotice: () => undefined,
    unexpected: () => undefined,
  };
  return { recorder, protocol, io };
}

/** `pause`: before and after the measured part, say so on stderr and wait for a line on stdin. */
export async function runHotPath(messages: number, streams: number, pause = false): Promise<HotPathResult> {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-hot-path-'));
  try {
    // No timer fires inside the measured part (the harness flushes every FLUSH_CHUNKS chunks itself),
    // so two runs of the same build do the same work and callgrind counts the same.
    const { recorder, protocol, io } = await benchPipeline(dir, streams, 64 * 1024 * 1024);
    let now = Date.now();
    const reader = new FrameReader(
      {
        onMessage: (data, isBinary) => protocol.onFrame(io, data, isBinary, now),
        onPing: () => undefined,
        onPong: () => undefined,
        onClose: () => undefined,
        onError: (code, message) => {
          throw new Error(`frame reader failed: ${code} ${message}`);
        },
      },
      16 * 1024 * 1024,
    );
    const chunks = buildChunks(messages, streams);
    if (pause) {
      process.stderr.write('ready\n');
      await nextLine();
    }
    let ns = 0n;
    for (let i = 0; i < chunks.length; i++) {
      now = Date.now();
      const t0 = process.hrtime.bigint();
      reader.push(chunks[i]!);
      ns += process.hrtime.bigint() - t0;
      // The writer drains, as it would between socket reads (about a megabyte a flush).
      if (i % FLUSH_CHUNKS === FLUSH_CHUNKS - 1) await recorder.flush();
    }
    await recorder.close();
    if (pause) {
      process.stderr.write('done\n');
      await nextLine();
    }
    const stats = recorder.stats;
    return { messages, streams, written: stats.written, dropped: stats.dropped, nsPerMessage: Number(ns) / messages };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let messages = 1_000_000;
  let streams = 256;
  let pause = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--pause') {
      pause = true;
      continue;
    }
    const v = Number(argv[++i]);
    if (!(v > 0)) throw new Error(`${a} needs a positive number`);
    if (a === '--messages') messages = v;
    else if (a === '--streams') streams = v;
    else throw new Error(`unknown argument ${a}`);
  }
  const r = await runHotPath(messages, streams, pause);
  process.stdout.write(`hot path: ${r.messages} messages over ${r.streams} streams, ${r.written} written, ${r.dropped} dropped: ${r.nsPerMessage.toFixed(1)} ns a message (main thread, in push())\n`);
  if (r.written !== r.messages) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
