import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import {
  connect,
  credsAuthenticator,
  nanos,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import { every, systemClock, type Clock } from '../../clock.js';
import type { Config } from '../../config/types.js';
import type { GapEntry } from '../../ledger/types.js';
import type { Logger } from '../../log.js';
import type { Sink } from '../../pipeline/sinks.js';
import type { StreamRef } from '../../pipeline/stream-ref.js';
import { blankNewlines, decimalLength, encodeStreamLine, streamLineLength } from '../../recorder/encode.js';
import { USER_DATA_STREAM } from '../../userdata/user-stream.js';
import { getVenue } from '../../venues/index.js';
import { hookAcks } from './acks.js';
import { Delivery, type Ack, type Outgoing } from './delivery.js';
import { DropRun, type DropLedger } from './drops.js';
import { Slab } from './slab.js';
import { digestId, gapId, idKind, keyId, scratchKeys, type IdKind } from './identity.js';
import { natsMetrics, type NatsMetrics, type NatsSource } from './metrics.js';
import { COLLECTOR_HEADER, createPublisher, type Publisher, type PublisherKind } from './publisher.js';
import { gapSubject, messageSubject } from './subjects.js';

export type NatsSinkConfig = Config['sinks']['nats'];

export interface NatsSinkOptions {
  config: NatsSinkConfig;
  /** collector.id: the Feedkeeper-Collector header. */
  collector: string;
  logger: Logger;
  registry: Registry;
  /** Where FEEDKEEPER_NATS_TOKEN / _USER / _PASSWORD are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default systemClock. */
  clock?: Clock;
  /** How publishes are written (publisher.ts); default `frames`. For the benchmark's A/B and tests. */
  publisher?: PublisherKind;
  /** Acks read from the socket's bytes (acks.ts); default true. false: every ack through the client's parser (the benchmark's A/B). */
  readAcks?: boolean;
}

/** Per stream, prepared at its first message. */
interface StreamInfo {
  /** User data (private) is never published. */
  skip: boolean;
  subject: string;
  /** `<venue>:<stream>:` */
  idPrefix: string;
  kind: IdKind;
  drops: DropRun;
}

export { COLLECTOR_HEADER };

/**
 * The NATS JetStream sink (docs/scale-out.md): every accepted message, after the recorder, to
 * `<prefix>.<venue>.<stream type>.<SYMBOL>` with a deterministic Nats-Msg-Id (identity.ts) and the
 * Feedkeeper-Collector header; every ledger entry to `<prefix>.<venue>._gaps`. Publishes are
 * asynchronous and acknowledged (delivery.ts); the broker's state never reaches the recorder: a
 * message that does not fit in the buffer is dropped, counted (feedkeeper_sink_dropped_total
 * {sink="nats"}) and accounted in the ledger as `sink_dropped` with its exact range.
 */
export class NatsSink implements Sink, NatsSource {
  readonly name = 'nats';
  private readonly cfg: NatsSinkConfig;
  private readonly log: Logger;
  private readonly metrics: NatsMetrics;
  private readonly delivery: Delivery;
  // Weak: a stream added live and removed again (relay clients) leaves nothing behind.
  private readonly infos = new WeakMap<StreamRef, StreamInfo>();
  private readonly runs = new Set<DropRun>();
  private readonly k = scratchKeys();
  private readonly slab = new Slab();
  private readonly gapSubjects = new Map<string, string>();
  private ledger: DropLedger | null = null;
  private nc: NatsConnection | null = null;
  /** Acks come to `<inbox>.<seq>`: one subscription for every publish, no request object each. */
  private inbox = '';
  private readonly waiting = new Map<number, Outgoing>();
  private publisher: Publisher | null = null;
  private stopAcks: () => void = () => undefined;
  private unhookAcks: () => void = () => undefined;
  private ackReader = false;
  private readonly clock: Clock;
  private up = false;
  private closing = false;
  private started: Promise<void> | null = null;
  private stopFlush: () => void = () => undefined;
  private lastError: string | null = null;
  /** Ends the pause between first-connect attempts (at shutdown). */
  private wake: (() => void) | null = null;

  constructor(private readonly opts: NatsSinkOptions) {
    this.clock = opts.clock ?? systemClock;
    this.cfg = opts.config;
    this.log = opts.logger.child({ sink: 'nats' });
    this.metrics = natsMetrics(opts.registry);
    this.delivery = new Delivery({
      maxBufferBytes: this.cfg.maxBufferBytes,
      maxInflight: this.cfg.maxInflight,
      retryMs: this.cfg.reconnectWaitMs,
      send: (m) => this.send(m),
      onAck: (_m, ack) => this.acked(ack),
      onFailed: () => this.metrics.publishFailures.inc(),
      onFailure: (err) => {
        this.lastError = errText(err);
        this.log.warn({ event: 'nats_publish_failing', err: this.lastError, pending: this.delivery.pending }, 'NATS publishes failing: buffering and sending again in order');
      },
      onRecovered: () => {
        this.lastError = null;
        this.log.info({ event: 'nats_publish_recovered', pending: this.delivery.pending }, 'NATS publishes acknowledged again');
      },
      setTimeout: (fn, ms) => this.clock.setTimeout(fn, ms),
      clearTimeout: (t) => this.clock.clearTimeout(t),
    });
    this.metrics.sources.add(this);
  }

  /** Connect in the background (forever, every reconnectWaitMs): the daemon never waits for the broker. */
  start(): void {
    if (this.started !== null) return;
    this.started = this.run().catch((err: unknown) => {
      if (!this.closing) this.log.error({ event: 'nats_sink_failed', err: errText(err) }, 'NATS sink stopped');
    });
    // Drop runs are written at least once a second (drops.ts).
    this.stopFlush = every(this.clock, 1000, () => this.flushDrops());
  }

  /** Where `sink_dropped` entries go (the daemon's ledger, once open). */
  attachLedger(ledger: DropLedger): void {
    this.ledger = ledger;
  }

  // ---- Sink

  /** `first`/`last`: the keys the router read (Sink.write); a keyed stream's Msg-Id is made of them. */
  write(frame: Buffer, recvMs: number, ref: StreamRef, first = NaN, last = NaN): boolean {
    let info = this.infos.get(ref);
    if (info === undefined) this.infos.set(ref, (info = this.prepare(ref)));
    if (info.skip) return true;
    const k = this.k;
    k.first = first;
    k.last = last;
    const keyed = info.kind === 'key' && last === last;
    const digits = decimalLength(recvMs);
    const len = streamLineLength(ref.head, frame, ref.start, ref.close, digits);
    if (this.delivery.pendingBytes + len - 1 > this.cfg.maxBufferBytes) {
      info.drops.add(recvMs, k, keyed);
      this.runs.add(info.drops);
      return false;
    }
    // The line without its newline (which the next line overwrites).
    const out = this.slab.reserve(len);
    const at = this.slab.at;
    encodeStreamLine(out, at, ref.head, frame, ref.start, ref.close, recvMs, digits);
    blankNewlines(out, at, at + len - 1);
    const id = keyed ? keyId(info.idPrefix, k) : digestId(info.idPrefix, frame);
    this.delivery.offer(info.subject, this.slab.commit(len - 1), id);
    if (info.drops.active) {
      info.drops.flush(this.ledger, this.name);
      this.runs.delete(info.drops);
    }
    return true;
  }

  /** A ledger entry: published to `<prefix>.<venue>._gaps`, its Msg-Id from collector, id and state. */
  gap(entry: Pick<GapEntry, 'venue' | 'stream'> & Partial<Pick<GapEntry, 'id' | 'end'>>, line: string): void {
    const venue = entry.venue ?? '_';
    let subject = this.gapSubjects.get(venue);
    if (subject === undefined) this.gapSubjects.set(venue, (subject = gapSubject(this.cfg.subjectPrefix, venue)));
    const id = gapId(this.opts.collector, entry.id ?? '', entry.end !== null && entry.end !== undefined);
    if (!this.delivery.offer(subject, Buffer.from(line), id)) this.metrics.gapEntriesDropped.inc();
  }

  healthy(): boolean {
    return this.up && !this.delivery.stalled;
  }

  // ---- NatsSource (metrics)

  connected(): boolean {
    return this.up;
  }
  pendingMessages(): number {
    return this.delivery.pending;
  }
  pendingBytes(): number {
    return this.delivery.pendingBytes;
  }
  inFlight(): number {
    return this.delivery.inFlight;
  }
  bufferLimitBytes(): number {
    return this.cfg.maxBufferBytes;
  }

  /** For /readyz: why the sink is not delivering, or null. */
  notReadyReason(): string | null {
    if (!this.up) return `nats: not connected to ${this.cfg.servers.join(', ')}`;
    if (this.delivery.stalled) return `nats: publishes failing (${this.lastError ?? 'unknown'}), ${this.delivery.pending} buffered`;
    return null;
  }

  /**
   * Shutdown: write the drop runs, wait up to drainTimeoutMs for the buffer to be acknowledged
   * (what is left is logged: it is in the recording), close the connection.
   */
  async close(): Promise<void> {
    this.flushDrops();
    // Waiting for acks makes sense only with a broker to send them.
    const acked = this.up ? await this.delivery.drained(this.cfg.drainTimeoutMs) : this.delivery.pending === 0;
    if (!acked) {
      this.log.warn({ event: 'nats_unflushed', pending: this.delivery.pending }, 'NATS sink stopped with messages not acknowledged (they are in the recording)');
    }
    this.closing = true;
    this.wake?.();
    this.stopFlush();
    this.stopAcks();
    this.unhookAcks();
    this.delivery.close();
    this.metrics.sources.delete(this);
    const nc = this.nc;
    this.nc = null;
    this.publisher = null;
    this.up = false;
    if (nc !== null) await nc.close().catch(() => undefined);
    await this.started;
  }

  // ---------------------------------------------------------------------------------------------

  private prepare(ref: StreamRef): StreamInfo {
    const venue = getVenue(ref.venue)!;
    const skip = ref.name === USER_DATA_STREAM;
    const type = skip ? null : venue.streamType(venue.typeOf(ref.name));
    return {
      skip,
      subject: messageSubject(this.cfg.subjectPrefix, venue, ref.name),
      idPrefix: `${ref.venue}:${ref.name}:`,
      kind: type === null ? 'digest' : idKind(type),
      drops: new DropRun(ref.venue, ref.name, type?.sequence ?? { kind: 'none' }),
    };
  }

  private flushDrops(): void {
    for (const run of this.runs) run.flush(this.ledger, this.name);
    this.runs.clear();
  }

  private get readAcks(): boolean {
    return this.opts.readAcks ?? true;
  }

  /** Whether the acks are read from the socket's bytes (acks.ts) rather than by the client's parser. */
  get acksFromBytes(): boolean {
    return this.ackReader;
  }

  /** How publishes are written: `frames` or `client` (publisher.ts); null before the first connection. */
  get publisherKind(): PublisherKind | null {
    return this.publisher?.kind ?? null;
  }

  /**
   * A JetStream publish as JetStream's own client makes it (a core publish with a reply subject
   * and a Nats-Msg-Id header; the stream's ack comes to the reply subject), without a request,
   * a promise, a timer, two Error objects and a MsgHdrs per message: the ack timeout is one interval
   * (checkAcks) over the publishes in flight, oldest first.
   */
  private send(m: Outgoing): void {
    const publisher = this.publisher;
    if (publisher === null || !this.up) {
      this.delivery.fail(m, NOT_CONNECTED);
      return;
    }
    m.sentAt = this.clock.now();
    this.waiting.set(m.seq, m);
    try {
      publisher.publish(m.subject, m.data, m.msgId, m.seq);
    } catch (err) {
      this.waiting.delete(m.seq);
      this.delivery.fail(m, err);
    }
  }

  /**
   * An ack (or an error) from JetStream on `<inbox>.<seq>` as the client delivers it: what the
   * ack reader (acks.ts) leaves to the client, a no-responders status for one (or every ack when
   * the client's parser cannot be hooked).
   */
  private onAck(msg: Msg): void {
    const seq = decimalAt(msg.subject, this.inbox.length);
    if (msg.headers?.code === 503) {
      const m = this.waiting.get(seq);
      if (m === undefined) return;
      this.waiting.delete(seq);
      this.delivery.fail(m, NO_RESPONDERS);
      return;
    }
    this.onAckBytes(seq, msg.data, 0, msg.data.length);
  }

  /** The payload of the ack on `<inbox>.<seq>`: buf[start..end) (a PubAck, or an error). */
  private onAckBytes(seq: number, buf: Uint8Array, start: number, end: number): void {
    const m = this.waiting.get(seq);
    // Late (after its timeout, already sent again) or of an earlier connection: nothing to do.
    if (m === undefined) return;
    this.waiting.delete(seq);
    const ack = readPubAck(buf, start, end);
    if (ack !== null) this.delivery.ack(m, ack);
    else this.delivery.fail(m, new Error(`JetStream refused the publish: ${ACK_TEXT.decode(buf.subarray(start, end))}`));
  }

  /** Publishes without an ack for ackTimeoutMs fail (and go out again, in order). */
  private checkAcks(): void {
    const limit = this.clock.now() - this.cfg.ackTimeoutMs;
    for (const [seq, m] of this.waiting) {
      if (m.sentAt > limit) break;
      this.waiting.delete(seq);
      this.delivery.fail(m, ACK_TIMEOUT);
    }
  }

  /** The connection dropped: what is in flight will not be acknowledged on it. */
  private failInFlight(): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const m of all) this.delivery.fail(m, NOT_CONNECTED);
  }

  private acked(ack: Ack): void {
    this.metrics.hot.acked++;
    if (ack.duplicate) this.metrics.hot.duplicates++;
  }

  private authenticator(): Authenticator | undefined {
    const env = this.opts.env ?? process.env;
    if (this.cfg.credsFile !== '') {
      const file = this.cfg.credsFile;
      return credsAuthenticator(() => readFileSync(file));
    }
    const token = env['FEEDKEEPER_NATS_TOKEN'];
    if (token) return tokenAuthenticator(token);
    const user = env['FEEDKEEPER_NATS_USER'];
    if (user) return usernamePasswordAuthenticator(user, env['FEEDKEEPER_NATS_PASSWORD'] ?? '');
    return undefined;
  }

  private async run(): Promise<void> {
    const cfg = this.cfg;
    // The first connection is tried here, every reconnectWaitMs, so that a shutdown can stop
    // trying (the client's own waitOnFirstConnect cannot be cancelled); then the client reconnects.
    let nc: NatsConnection | null = null;
    let logged = false;
    while (nc === null) {
      if (this.closing) return;
      try {
        nc = await connect({
          servers: [...cfg.servers],
          name: `feedkeeper ${this.opts.collector}`,
          authenticator: this.authenticator(),
          maxReconnectAttempts: -1,
          reconnectTimeWait: cfg.reconnectWaitMs,
          reconnectJitter: Math.min(100, cfg.reconnectWaitMs),
          pingInterval: 10_000,
          maxPingOut: 2,
          timeout: Math.max(1000, cfg.ackTimeoutMs),
        });
      } catch (err) {
        if (!logged) {
          logged = true;
          this.lastError = errText(err);
          this.log.warn({ event: 'nats_disconnected', err: this.lastError }, 'NATS broker unreachable: buffering, retrying');
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          const t = this.clock.setTimeout(resolve, cfg.reconnectWaitMs);
          (t as { unref?: () => void }).unref?.();
        });
        this.wake = null;
      }
    }
    if (this.closing) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.inbox = ackInbox();
    this.publisher = createPublisher(nc, this.inbox, this.opts.collector, this.opts.publisher);
    const sub = nc.subscribe(`${this.inbox}*`, {
      callback: (err, msg) => {
        if (err === null) this.onAck(msg);
      },
    });
    // The acks read from the socket's bytes (acks.ts); what it leaves comes to the callback.
    const sid = (sub as { sid?: unknown }).sid;
    const unhook = typeof sid === 'number' && this.readAcks ? hookAcks(nc, this.inbox, sid, (seq, buf, start, end) => this.onAckBytes(seq, buf, start, end)) : null;
    this.ackReader = unhook !== null;
    this.unhookAcks = unhook ?? (() => undefined);
    this.stopAcks = every(this.clock, Math.max(20, Math.min(1000, cfg.ackTimeoutMs / 4)), () => this.checkAcks());
    this.log.info({ event: 'nats_connected', server: nc.getServer(), stream: cfg.stream }, 'NATS sink connected');
    await this.ensureStream(nc);
    this.up = true;
    this.delivery.setConnected(true);
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.up = false;
        this.delivery.setConnected(false);
        this.failInFlight();
        this.log.warn({ event: 'nats_disconnected', server: s.server }, 'NATS sink disconnected: buffering');
      } else if (s.type === 'reconnect') {
        this.log.info({ event: 'nats_reconnected', server: s.server, pending: this.delivery.pending }, 'NATS sink reconnected: sending the buffer in order');
        await this.ensureStream(nc);
        this.up = true;
        this.delivery.setConnected(true);
      }
    }
  }

  /**
   * createStream: the stream exists, with file storage, our subjects and duplicateWindowMs (created,
   * or its window and subjects updated); otherwise only checked, and a missing stream logged (the
   * publishes fail and are retried until someone creates it).
   */
  private async ensureStream(nc: NatsConnection): Promise<void> {
    const cfg = this.cfg;
    const subjects = `${cfg.subjectPrefix}.>`;
    try {
      const jsm = await jetstreamManager(nc, { timeout: cfg.ackTimeoutMs });
      const info = await jsm.streams.info(cfg.stream).catch((err: unknown) => {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null;
        throw err;
      });
      const window = nanos(cfg.duplicateWindowMs);
      if (info === null) {
        if (!cfg.createStream) {
          this.log.error({ event: 'nats_stream_missing', stream: cfg.stream }, 'JetStream stream missing and sinks.nats.createStream is false: publishes wait for it');
          return;
        }
        await jsm.streams.add({ name: cfg.stream, subjects: [subjects], storage: StorageType.File, duplicate_window: window, max_age: cfg.maxAgeMs > 0 ? nanos(cfg.maxAgeMs) : 0 });
        this.log.info({ event: 'nats_stream_created', stream: cfg.stream, subjects, duplicateWindowMs: cfg.duplicateWindowMs }, 'JetStream stream created');
        return;
      }
      const c = info.config;
      const covered = c.subjects?.some((s) => s === subjects || s === '>') ?? false;
      if (c.duplicate_window !== window || !covered) {
        if (!cfg.createStream) {
          this.log.warn({ event: 'nats_stream_mismatch', stream: cfg.stream, duplicateWindowMs: Math.round((c.duplicate_window ?? 0) / 1e6), subjects: c.subjects }, 'JetStream stream differs from sinks.nats (window or subjects): left as it is');
          return;
        }
        await jsm.streams.update(cfg.stream, { duplicate_window: window, subjects: covered ? c.subjects : [...(c.subjects ?? []), subjects] });
        this.log.info({ event: 'nats_stream_updated', stream: cfg.stream, duplicateWindowMs: cfg.duplicateWindowMs }, 'JetStream stream updated to sinks.nats');
      }
    } catch (err) {
      this.log.warn({ event: 'nats_stream_check_failed', stream: cfg.stream, err: errText(err) }, 'JetStream stream could not be checked: publishing anyway');
    }
  }
}

const NOT_CONNECTED = new Error('not connected to the broker');
const NO_RESPONDERS = new Error('no responders: no JetStream stream takes the subject (or JetStream is not enabled)');
const ACK_TIMEOUT = new Error('no ack within sinks.nats.ackTimeoutMs');
const STORED: Ack = { duplicate: false };
const DUPLICATE: Ack = { duplicate: true };
const ACK_TEXT = new TextDecoder();

/**
 * A PubAck, or null for an error. nats-server writes `{"stream":"FEEDKEEPER", "seq":7}` and
 * `{"stream":"FEEDKEEPER", "seq":7,"duplicate": true}` from a template (stream.go), so the two are
 * told apart by their bytes, without decoding a string per message; anything else (an error, a
 * domain, another server's spacing) is parsed as the JSON it is.
 */
export function readPubAck(data: Uint8Array, start = 0, end = data.length): Ack | null {
  if (end - start > 3 && data[start + 2] === 0x73 /* s */ && data[end - 1] === 0x7d /* } */) {
    const last = data[end - 2]!;
    if (last >= 0x30 && last <= 0x39) return STORED;
    if (last === 0x65 /* (tru)e */ && endsWith(data, start, end, DUPLICATE_TAIL)) return DUPLICATE;
  }
  let v: unknown;
  try {
    v = JSON.parse(ACK_TEXT.decode(data.subarray(start, end)));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || 'error' in v || !('seq' in v)) return null;
  return (v as { duplicate?: unknown }).duplicate === true ? DUPLICATE : STORED;
}

const DUPLICATE_TAIL = Buffer.from(',"duplicate": true}');

function endsWith(data: Uint8Array, start: number, end: number, tail: Uint8Array): boolean {
  const off = end - tail.length;
  if (off < start) return false;
  for (let i = 0; i < tail.length; i++) if (data[off + i] !== tail[i]) return false;
  return true;
}

/** The decimal number of `s` from `from` to its end (an ack's `<inbox>.<seq>`); NaN if none. */
function decimalAt(s: string, from: number): number {
  if (from >= s.length) return NaN;
  let v = 0;
  for (let i = from; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return v;
}

/**
 * `_INBOX.<12 random base64url characters>.`: under the `_INBOX.>` that permissions grant for
 * replies, unique to this connection (72 random bits) and 10 bytes shorter than createInbox()'s
 * 22-character NUID. The prefix is in every publish line and every ack, and nats-server matches
 * each ack's subject afresh (each is new to its subject cache).
 */
export function ackInbox(): string {
  return `_INBOX.${randomBytes(9).toString('base64url')}.`;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
