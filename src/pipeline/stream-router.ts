import { systemClock, type Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { KEY_RESET, type FrameKeys, type NameSpan, type SequenceRule, type StreamSpanReader, type StreamType, type Venue } from '../venues/types.js';
import { missedBetween } from '../ledger/missed.js';
import { streamRef, type StreamRef } from './stream-ref.js';
import { StreamTable } from './stream-table.js';
import type { GapCause, Missed } from '../ledger/types.js';
import { TieFrames } from './tie-frames.js';

/**
 * Where a message goes after the socket. One router for the whole daemon, shared by every
 * connection, because a stream moves between connections when one is replaced. Per stream it keeps
 * the last sequence key and which connection currently owns it, and it:
 *  - drops a message another connection already delivered (switch-over overlap) by its order key;
 *  - hands a stream over from an old connection to its replacement only where the two overlap, so a
 *    rotation loses nothing and doubles nothing;
 *  - sees IDs skipped on a live connection and the IDs missed while a connection was down, and
 *    tells the gap ledger (GapSink);
 *  - writes each accepted frame, untouched, to the recorder.
 * Everything here is synchronous and allocation-light: it runs once per message. It knows nothing
 * of a venue's wire format: the venue's reader finds a frame's stream, the stream type's key reader
 * its sequence keys (src/venues/types.ts). One router per feed (venue).
 */

export type { GapCause, Missed, StreamRef };

/** What the router needs of the gap ledger. */
export interface GapSink {
  openGap(e: { venue?: string; stream: string; connection: string; start: number; cause: GapCause; code?: number | null; detail?: string }): string;
  closeGap(id: string, e: { end: number; missed: Missed | null; detail?: string; cause?: GapCause }): void;
  instant(e: { venue?: string; stream: string; connection: string; at: number; cause: GapCause; code?: number | null; detail?: string; missed: Missed | null }): string;
  /** Is a maintenance window in force at `t`? (A gap then gets cause `maintenance`.) */
  inMaintenance(t: number): boolean;
}

/**
 * What the router needs of the recorder (the primary sink). `first` and `last` are the message's
 * sequence keys as the router read them (FrameKeys; absent when it has none), for the sinks.
 */
export interface FrameSink {
  write(frame: Buffer, recvMs: number, stream?: StreamRef, first?: number, last?: number): boolean;
}


/** A connection (one WebSocket) as the router sees it. */
export interface SessionRef {
  /** e.g. `c0#3`: planned connection c0, third socket. */
  readonly id: string;
  readonly connectionId: string;
  readonly alive: boolean;
  /** Creation order: a replacement is newer than the connection it replaces. */
  readonly seq: number;
  /** Epoch ms of the last frame of any kind (data, ping, pong): where a `stale` gap starts. */
  readonly lastFrameAt?: number;
}

interface Pending {
  frame: Buffer;
  recv: number;
  first: number;
  last: number;
  prev: number;
  flags: number;
}

interface StreamState {
  readonly name: string;
  readonly type: StreamType;
  readonly rule: SequenceRule;
  readonly ref: StreamRef;
  /** Rule `none`: the last frames accepted, to drop the same event delivered twice in a switch-over. */
  readonly recent: Set<string> | null;
  /** Rule `ordered` with ties: the frames accepted at the current key, copied (duplicates among equals). */
  readonly atKey: TieFrames | null;
  /** Last accepted order key (trade t, aggTrade a, depth u, bookTicker u, E...). NaN: none yet. */
  key: number;
  /**
   * The key between EPOCH_WINDOW and 2 × EPOCH_WINDOW accepted messages ago (NaN until known): a
   * message below it is no late duplicate but a new sequence (a testnet reset, a venue restart, a
   * checkpoint of another run). `floorNext` becomes `floor` every EPOCH_WINDOW messages.
   */
  floor: number;
  floorNext: number;
  sinceFloor: number;
  lastRecv: number;
  /** When the stream was subscribed live (addStream), 0 for the planned ones: silence counts from here. */
  addedAt: number;
  owner: SessionRef | null;
  /** A replacement connection that delivered this stream while the owner was still alive. */
  candidate: SessionRef | null;
  pending: Pending[];
  /** Open gap in the ledger while the stream is dark (connection down, daemon was down, drops). */
  gapId: string | null;
  gapCause: GapCause | null;
  received: number;
}

const MAX_PENDING = 10_000;
/**
 * Messages a duplicate can trail the newest by: a switch-over's overlap is a few hundred at most
 * (MAX_PENDING bounds a replacement's backlog), so twice this is far beyond any real repeat.
 */
const EPOCH_WINDOW = MAX_PENDING;
const RECENT_EVENTS = 256;

export interface RouterOptions {
  /** The feed's venue: its frame reader and recording shape. */
  venue: Pick<Venue, 'name' | 'readStream' | 'readStreamSpan' | 'recordingShape'>;
  /** Stream name → type, for every planned stream. */
  streams: Map<string, StreamType>;
  gaps: GapSink;
  recorder: FrameSink;
  metrics: Metrics;
  logger: Logger;
  /** For the malformed-frame log's rate (default systemClock). */
  clock?: Clock;
}

export class StreamRouter {
  private readonly streams = new Map<string, StreamState>();
  private readonly gaps: GapSink;
  private readonly recorder: FrameSink;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly venue: RouterOptions['venue'];
  private readonly clock: Clock;
  /** Scratch keys of the message being routed: no object per message. */
  private readonly k: FrameKeys = { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
  /** The venue's span reader, when it has one: streams are then found by their name's bytes. */
  private readonly readSpan: StreamSpanReader | null;
  private readonly span: NameSpan = { start: 0, end: 0, hash: -1 };
  /** The states of `streams` by their name's bytes (kept equal to it), for readSpan. */
  private readonly byBytes = new StreamTable<StreamState>();
  /** Switch-overs waiting for a connection to own none of its streams (released()). */
  private releaseWaits: { session: SessionRef; held: Set<string>; resolve: () => void }[] = [];
  /** True while a replacement's buffered messages are replayed in a handover. */
  private replaying = false;
  private malformedSinceLog = 0;
  private malformedLoggedAt = 0;

  constructor(opts: RouterOptions) {
    this.gaps = opts.gaps;
    this.recorder = opts.recorder;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    this.venue = opts.venue;
    this.clock = opts.clock ?? systemClock;
    this.readSpan = opts.venue.readStreamSpan ?? null;
    for (const [name, type] of opts.streams) this.setState(newState(name, type, streamRef(opts.venue, name)));
  }

  /**
   * Start from what the previous run left: the last key recorded per stream (recoverLastSeen) and,
   * per stream, the gap it has been in since (resumeGaps: left open by the previous run, or a new
   * `daemon_down` / `shutdown` gap from its last recorded message). Each closes, with the exact
   * missed range, on the stream's first message in this run.
   */
  restore(lastSeen: ReadonlyMap<string, { key: number; recv: number }>, gaps: ReadonlyMap<string, { id: string; cause: string }>): void {
    for (const [name, seen] of lastSeen) {
      const st = this.streams.get(name);
      if (!st) continue;
      st.key = seen.key;
      st.floor = st.floorNext = seen.key;
      st.lastRecv = seen.recv;
    }
    for (const [name, g] of gaps) {
      const st = this.streams.get(name);
      if (!st) continue;
      st.gapId = g.id;
      st.gapCause = g.cause as GapCause;
    }
  }

  /** Route one data frame (the venue's protocol sorted control frames out before). */
  route(session: SessionRef, frame: Buffer, recv: number): void {
    const k = this.k;
    let st: StreamState | undefined;
    if (this.readSpan !== null) {
      const span = this.span;
      // A reader that does not hash the name leaves -1: the table hashes it.
      span.hash = -1;
      if (!this.readSpan(frame, k, span)) {
        this.malformed(session, frame, 'not a data frame of this venue');
        return;
      }
      st = this.byBytes.get(frame, span.start, span.end, span.hash);
    } else {
      const name = this.venue.readStream(frame, k);
      if (name === null) {
        this.malformed(session, frame, 'not a data frame of this venue');
        return;
      }
      st = this.streams.get(name);
    }
    // A stream not in the plan (a late frame after UNSUBSCRIBE): nothing to record it against.
    if (st === undefined) return;
    this.metrics.hot.received++;
    if (!st.type.keys(frame, k)) {
      this.malformed(session, frame, `no ${st.rule.kind === 'none' ? 'key' : st.rule.field} in ${st.type.type} payload`);
      // Keep the data: record it when it comes from the owner, without sequence tracking.
      if (st.owner === null || st.owner === session || !st.owner.alive) this.recorder.write(frame, recv, st.ref);
      return;
    }
    if (k.time === k.time) this.metrics.eventLag.observe((recv - k.time) / 1000);
    st.received++;

    let owner = st.owner;
    if (owner === null || !owner.alive) {
      this.setOwner(st, session);
      owner = session;
      if (st.candidate === session) st.candidate = null;
    }
    if (owner === session) {
      this.accept(st, session, frame, recv, k.first, k.last, k.prev, k.flags);
      if (st.pending.length > 0) this.tryHandover(st);
      return;
    }
    if (session.seq < owner.seq) {
      // An older connection still draining after it handed this stream over: the owner has it.
      this.metrics.messagesDuplicate.inc();
      return;
    }
    // A replacement delivering a stream its old connection still owns.
    if (k.last <= st.key) {
      // Already delivered by the owner: the two overlap, the replacement can take over.
      this.metrics.messagesDuplicate.inc();
      st.candidate = session;
      this.handover(st, session);
      return;
    }
    if (st.candidate !== session) {
      st.candidate = session;
      st.pending.length = 0;
    }
    // A copy: the frame is a view of the socket's chunk, and this one waits (up to MAX_PENDING of
    // them, which as views would keep as many 64 KiB chunks alive).
    st.pending.push({ frame: Buffer.from(frame), recv, first: k.first, last: k.last, prev: k.prev, flags: k.flags });
    this.tryHandover(st);
  }

  /** The connection closed. Its streams go dark unless a replacement already carries them. */
  sessionClosed(session: SessionRef, at: number, end: { planned: boolean; cause: GapCause; code?: number | null; detail?: string }): void {
    for (const st of this.streams.values()) {
      if (st.candidate === session) {
        st.candidate = null;
        st.pending.length = 0;
      }
      if (st.owner !== session) continue;
      this.setOwner(st, null);
      if (st.candidate !== null && st.candidate.alive) {
        // Planned switch-over that timed out before the two overlapped on this stream: what the
        // replacement holds follows after whatever the old one delivered; a hole is a real gap.
        const next = st.candidate;
        if (st.pending.length > 0 && !this.followsPending(st) && st.gapId === null) {
          st.gapId = this.gaps.openGap({ stream: st.name, connection: session.connectionId, start: at, cause: 'switchover', detail: 'old connection closed before the replacement overlapped it' });
          st.gapCause = 'switchover';
        }
        this.handover(st, next);
        continue;
      }
      if (end.planned && st.gapId === null && end.cause !== 'shutdown') {
        // Planned close with no replacement delivering yet: the replacement is subscribed, so
        // nothing is known lost; if IDs are missing they show on its first message as a gap.
        continue;
      }
      if (st.gapId === null) {
        const cause: GapCause = end.cause !== 'shutdown' && this.gaps.inMaintenance(at) ? 'maintenance' : end.cause;
        st.gapId = this.gaps.openGap({
          stream: st.name,
          connection: session.connectionId,
          // Stale: the connection was known to work until its last frame, not until the timeout.
          start: end.cause === 'stale' && session.lastFrameAt !== undefined ? Math.min(session.lastFrameAt, at) : at,
          cause,
          code: end.code ?? null,
          // A maintenance gap keeps what physically happened (server_close, network_error, stale...).
          detail: cause === end.cause ? end.detail : `${end.cause}: ${end.detail}`,
        });
        st.gapCause = cause;
      }
    }
  }

  /**
   * A connection finished subscribing. Streams without an order key (user data) may stay silent for
   * hours, so for them being subscribed is being back: the connection takes them and their gap
   * closes now, not at their next event.
   */
  sessionReady(session: SessionRef, names: readonly string[], at: number): void {
    for (const name of names) {
      const st = this.streams.get(name);
      if (!st || st.rule.kind !== 'none') continue;
      if (st.owner === null || !st.owner.alive || st.owner.seq < session.seq) this.setOwner(st, session);
      if (st.gapId !== null) {
        this.gaps.closeGap(st.gapId, { end: at, missed: null });
        st.gapId = null;
        st.gapCause = null;
      }
    }
  }

  /**
   * The connection's own sequence skipped `missed` messages (Coinbase `sequence_num`, one counter
   * per connection): each of `names` that this connection delivers (or nobody does yet) gets one
   * `sequence` gap with the connection's missed range and count, since which stream lost what is
   * unknowable. A stream already in a gap, or owned by another live connection, is left alone.
   */
  connectionGap(session: SessionRef, names: readonly string[], at: number, missed: Missed, detail: string): void {
    for (const name of names) {
      const st = this.streams.get(name);
      if (st === undefined || st.gapId !== null) continue;
      if (st.owner !== null && st.owner !== session && st.owner.alive) continue;
      this.gaps.instant({ venue: this.venue.name, stream: name, connection: session.connectionId, at, cause: 'sequence', detail, missed });
    }
  }

  /** Open a gap on a stream for a reason only its protocol knows (listen key expired, stream terminated). */
  markGap(name: string, session: SessionRef, cause: GapCause, at: number, detail?: string): void {
    const st = this.streams.get(name);
    if (!st || st.gapId !== null) return;
    st.gapId = this.gaps.openGap({ stream: name, connection: session.connectionId, start: at, cause, detail });
    st.gapCause = cause;
  }

  /** A stream subscribed live (relay clients, the universe): routed, recorded and ledgered from now on. */
  addStream(name: string, type: StreamType): void {
    if (this.streams.has(name)) return;
    const st = newState(name, type, streamRef(this.venue, name));
    st.addedAt = this.clock.now();
    this.setState(st);
  }

  /**
   * A stream no longer subscribed: its late frames are dropped like any stream outside the plan, and
   * a gap it was in closes now (nothing more is expected of it).
   */
  removeStream(name: string, at: number, ending?: { cause: GapCause; detail: string }): void {
    const st = this.streams.get(name);
    if (st === undefined) return;
    if (st.gapId !== null) this.gaps.closeGap(st.gapId, { end: at, missed: null, ...ending });
    this.setOwner(st, null);
    this.streams.delete(name);
    if (this.readSpan !== null) this.byBytes.delete(name);
  }

  private setState(st: StreamState): void {
    this.streams.set(st.name, st);
    if (this.readSpan !== null) this.byBytes.set(st.name, st);
  }

  /** Streams' last keys and receive times, for the checkpoint. */
  snapshot(): Record<string, { key: number; recv: number }> {
    const out: Record<string, { key: number; recv: number }> = {};
    for (const st of this.streams.values()) if (st.key === st.key) out[st.name] = { key: st.key, recv: st.lastRecv };
    return out;
  }

  /** Per-stream view for readiness and tests. */
  stream(name: string): { key: number; lastRecv: number; addedAt: number; owner: string | null; gapOpen: boolean; received: number } | undefined {
    const st = this.streams.get(name);
    if (!st) return undefined;
    return { key: st.key, lastRecv: st.lastRecv, addedAt: st.addedAt, owner: st.owner?.id ?? null, gapOpen: st.gapId !== null, received: st.received };
  }

  /**
   * Resolves once `session` owns none of `names`: each handed over to a replacement (a switch-over
   * waits on this), gone dark or removed. At once when it owns none now.
   */
  released(session: SessionRef, names: readonly string[]): Promise<void> {
    const held = new Set<string>();
    for (const name of names) if (this.streams.get(name)?.owner === session) held.add(name);
    if (held.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.releaseWaits.push({ session, held, resolve }));
  }

  /** Streams of a connection still owned by `session` (not yet handed to a replacement). */
  ownedBy(session: SessionRef, names: readonly string[]): number {
    let n = 0;
    for (const name of names) if (this.streams.get(name)?.owner === session) n++;
    return n;
  }

  /** The planned stream's type (its sequence rule, expected interval, route). */
  typeOf(name: string): StreamType | undefined {
    return this.streams.get(name)?.type;
  }

  get names(): IterableIterator<string> {
    return this.streams.keys();
  }

  // ---------------------------------------------------------------------------------------------

  /** Does message `m` follow the last accepted key without a hole? (Unknowable for 'ordered'.) */
  private follows(st: StreamState, first: number, last: number, prev: number, flags: number): boolean {
    if (st.key !== st.key) return true;
    // A snapshot stands alone: it follows what was delivered once the owner got that far.
    if ((flags & KEY_RESET) !== 0) return last <= st.key;
    switch (st.rule.kind) {
      case 'contiguous':
      case 'range':
        return first <= st.key + 1;
      case 'linked':
        return prev === prev ? prev <= st.key : first <= st.key + 1;
      case 'ordered':
        return last <= st.key;
      case 'none':
        return true;
    }
  }

  /** Does the first message a replacement holds follow the last accepted key? */
  private followsPending(st: StreamState): boolean {
    const m = st.pending[0]!;
    return this.follows(st, m.first, m.last, m.prev, m.flags);
  }

  /**
   * Already accepted? By the order key; a linked event that names the last key as its predecessor
   * is new even when its own ID is lower (OKX seqIds may fall after maintenance, the chain holds);
   * equal keys of a stream with ties are compared by bytes.
   */
  private duplicate(st: StreamState, frame: Buffer, last: number, prev: number, flags: number): boolean {
    if (!(last <= st.key)) return false;
    // Below anything of the recent window: a new epoch (accept() records it as one), not a repeat.
    if (last < st.floor) return false;
    // On the owner's own connection a snapshot is never a repeat (Bybit resends level 1 with the same
    // `u` after 3 s idle; `u`=1 restarts the sequence): only a replayed overlap can double it.
    if ((flags & KEY_RESET) !== 0 && !this.replaying) return false;
    if (st.rule.kind === 'linked' && prev === st.key) return false;
    if (st.atKey !== null && last === st.key) return st.atKey.has(frame);
    return true;
  }

  private accept(st: StreamState, session: SessionRef, frame: Buffer, recv: number, first: number, last: number, prev: number, flags: number): void {
    if (this.duplicate(st, frame, last, prev, flags)) {
      this.metrics.messagesDuplicate.inc();
      return;
    }
    if (st.recent !== null) {
      // Low-volume streams without an order key: remember the last events by their bytes.
      const text = frame.toString('latin1');
      if (st.recent.has(text)) {
        this.metrics.messagesDuplicate.inc();
        return;
      }
      st.recent.add(text);
      if (st.recent.size > RECENT_EVENTS) st.recent.delete(st.recent.values().next().value!);
    }
    if (!this.recorder.write(frame, recv, st.ref, first, last)) {
      // The recorder is full: this message is lost to the recording. The key stays where it was,
      // so the gap (opened now, or the one already open) closes with the exact range on the next
      // message the recorder takes.
      if (st.gapId === null) {
        st.gapId = this.gaps.openGap({ venue: this.venue.name, stream: st.name, connection: session.connectionId, start: recv, cause: 'recorder_dropped', detail: 'recorder buffer full' });
        st.gapCause = 'recorder_dropped';
      }
      return;
    }
    const reset = (flags & KEY_RESET) !== 0;
    if (last < st.floor) {
      this.newEpoch(st, session, recv, last, reset);
    } else if (st.gapId !== null) {
      this.gaps.closeGap(st.gapId, { end: recv, missed: this.missedBefore(st, first, last, prev, reset) });
      st.gapId = null;
      st.gapCause = null;
    } else if (reset) {
      // A snapshot on a live stream: the exchange restarted its sequence (Bybit `u`=1) when the key
      // went back; a new epoch in the ledger, never a run of "duplicates".
      if (last < st.key) {
        this.gaps.instant({ venue: this.venue.name, stream: st.name, connection: session.connectionId, at: recv, cause: 'sequence_reset', detail: `sequence restarted at ${last} after ${st.key}`, missed: null });
      }
    } else if (st.rule.kind !== 'ordered' && !this.follows(st, first, last, prev, flags)) {
      this.gaps.instant({ venue: this.venue.name, stream: st.name, connection: session.connectionId, at: recv, cause: 'sequence', missed: this.missedBefore(st, first, last, prev, false) });
    }
    if (st.atKey !== null) {
      if (last !== st.key) st.atKey.clear();
      st.atKey.add(frame);
    }
    st.key = last;
    st.lastRecv = recv;
    if (st.floorNext !== st.floorNext) st.floorNext = last;
    if (++st.sinceFloor >= EPOCH_WINDOW) {
      st.floor = st.floorNext;
      st.floorNext = last;
      st.sinceFloor = 0;
    }
  }

  /**
   * The key fell below the recent window: the exchange (or the previous run's checkpoint) is on
   * another sequence. Logged, a `sequence_reset` entry (closing the gap the stream was in, with
   * nothing knowable missed), recording resumes at once with this message.
   */
  private newEpoch(st: StreamState, session: SessionRef, recv: number, last: number, reset: boolean): void {
    const detail = `sequence went back from ${st.key} to ${last}${reset ? ' (the exchange restarted it)' : ''}: a new epoch`;
    if (st.gapId !== null) {
      this.gaps.closeGap(st.gapId, { end: recv, missed: null });
      st.gapId = null;
      st.gapCause = null;
    }
    this.gaps.instant({ venue: this.venue.name, stream: st.name, connection: session.connectionId, at: recv, cause: 'sequence_reset', detail, missed: null });
    this.logger.warn({ event: 'sequence_reset', venue: this.venue.name, stream: st.name, from: st.key, to: last }, detail);
    st.floor = st.floorNext = NaN;
    st.sinceFloor = 0;
    if (st.recent !== null) st.recent.clear();
  }

  /** The IDs missed between the last accepted key and this message (rare path: a gap). */
  private missedBefore(st: StreamState, first: number, last: number, prev: number, reset: boolean): Missed | null {
    return missedBetween(st.rule, st.key === st.key ? st.key : null, { first, last, prev: prev === prev ? prev : null, reset });
  }

  private tryHandover(st: StreamState): void {
    const cand = st.candidate;
    if (cand === null || st.pending.length === 0) return;
    if (this.followsPending(st) || st.pending.length >= MAX_PENDING || st.owner === null || !st.owner.alive) {
      this.handover(st, cand);
    }
  }

  /** Every change of a stream's owner goes through here, so released() waits see it. */
  private setOwner(st: StreamState, next: SessionRef | null): void {
    const prev = st.owner;
    st.owner = next;
    if (this.releaseWaits.length === 0 || prev === null || prev === next) return;
    this.releaseWaits = this.releaseWaits.filter((w) => {
      if (w.session !== prev || !w.held.delete(st.name) || w.held.size > 0) return true;
      w.resolve();
      return false;
    });
  }

  /** Give the stream to `next` and replay what it delivered meanwhile, dropping what the old one had. */
  private handover(st: StreamState, next: SessionRef): void {
    this.setOwner(st, next);
    st.candidate = null;
    if (st.pending.length === 0) return;
    const pending = st.pending;
    st.pending = [];
    this.replaying = true;
    for (const p of pending) this.accept(st, next, p.frame, p.recv, p.first, p.last, p.prev, p.flags);
    this.replaying = false;
  }

  /** A frame nobody could read: counted, logged at most every 10 s, never recorded as data. */
  malformed(session: SessionRef, frame: Buffer, why: string): void {
    this.metrics.framesMalformed.inc();
    this.malformedSinceLog++;
    const now = this.clock.now();
    if (now - this.malformedLoggedAt >= 10_000) {
      this.logger.warn(
        { event: 'frame_malformed', connection: session.id, count: this.malformedSinceLog, why, sample: frame.toString('utf8', 0, Math.min(frame.length, 200)) },
        'malformed frames skipped',
      );
      this.malformedLoggedAt = now;
      this.malformedSinceLog = 0;
    }
  }
}

function newState(name: string, type: StreamType, ref: StreamRef): StreamState {
  const rule = type.sequence;
  return {
    name,
    type,
    rule,
    ref,
    recent: rule.kind === 'none' ? new Set() : null,
    atKey: rule.kind === 'ordered' && rule.ties === true ? new TieFrames() : null,
    key: NaN,
    floor: NaN,
    floorNext: NaN,
    sinceFloor: 0,
    lastRecv: 0,
    addedAt: 0,
    owner: null,
    candidate: null,
    pending: [],
    gapId: null,
    gapCause: null,
    received: 0,
  };
}
