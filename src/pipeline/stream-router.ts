import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { SequenceRule, StreamType } from '../venues/types.js';
import { frameStream, dataOffset, keyPattern, readInt } from '../venues/binance-frame.js';
import { missedBetween } from '../ledger/missed.js';
import type { GapCause, Missed } from '../ledger/types.js';

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
 * Everything here is synchronous and allocation-light: it runs once per message.
 */

export type { GapCause, Missed };

/** What the router needs of the gap ledger. */
export interface GapSink {
  openGap(e: { stream: string; connection: string; start: number; cause: GapCause; code?: number | null; detail?: string }): string;
  closeGap(id: string, e: { end: number; missed: Missed | null }): void;
  instant(e: { stream: string; connection: string; at: number; cause: GapCause; code?: number | null; detail?: string; missed: Missed | null }): string;
  /** Is a maintenance window in force at `t`? (A gap then gets cause `maintenance`.) */
  inMaintenance(t: number): boolean;
}

/** What the router needs of the recorder. */
export interface FrameSink {
  write(frame: Buffer, recvMs: number): boolean;
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
}

interface StreamState {
  readonly name: string;
  readonly type: StreamType;
  readonly rule: SequenceRule;
  /** Key patterns to read, prepared once. */
  /** Null for streams without an order key (rule `none`). */
  readonly firstKey: Buffer | null;
  readonly lastKey: Buffer | null;
  /** Rule `none`: the last frames accepted, to drop the same event delivered twice in a switch-over. */
  readonly recent: Set<string> | null;
  readonly fallbackKey: Buffer | null;
  readonly linkKey: Buffer | null;
  /** Last accepted order key (trade t, aggTrade a, depth u, bookTicker u, E...). NaN: none yet. */
  key: number;
  lastRecv: number;
  owner: SessionRef | null;
  /** A replacement connection that delivered this stream while the owner was still alive. */
  candidate: SessionRef | null;
  pending: Pending[];
  /** Open gap in the ledger while the stream is dark (connection down, daemon was down, drops). */
  gapId: string | null;
  gapCause: GapCause | null;
  received: number;
}

const E_KEY = keyPattern('E');
const MAX_PENDING = 10_000;
const RECENT_EVENTS = 256;

export interface RouterOptions {
  /** Stream name → type, for every planned stream. */
  streams: Map<string, StreamType>;
  gaps: GapSink;
  recorder: FrameSink;
  metrics: Metrics;
  logger: Logger;
}

export class StreamRouter {
  private readonly streams = new Map<string, StreamState>();
  private readonly gaps: GapSink;
  private readonly recorder: FrameSink;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  /** Scratch fields for the message being routed: no object per message. */
  private first = NaN;
  private last = NaN;
  private prev = NaN;
  private malformedSinceLog = 0;
  private malformedLoggedAt = 0;

  constructor(opts: RouterOptions) {
    this.gaps = opts.gaps;
    this.recorder = opts.recorder;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    for (const [name, type] of opts.streams) this.streams.set(name, newState(name, type));
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
      st.lastRecv = seen.recv;
    }
    for (const [name, g] of gaps) {
      const st = this.streams.get(name);
      if (!st) continue;
      st.gapId = g.id;
      st.gapCause = g.cause as GapCause;
    }
  }

  /**
   * Route one combined-stream frame. Returns false when the frame was not a stream frame (the
   * caller handles control replies and serverShutdown before calling here).
   */
  route(session: SessionRef, frame: Buffer, recv: number): void {
    const name = frameStream(frame);
    if (name === null) {
      this.malformed(session, frame, 'not a combined-stream frame');
      return;
    }
    const st = this.streams.get(name);
    // A stream not in the plan (a late frame after UNSUBSCRIBE): nothing to record it against.
    if (st === undefined) return;
    this.metrics.hot.received++;
    const from = dataOffset(name.length);
    if (!this.extract(st, frame, from)) {
      this.malformed(session, frame, `no ${st.rule.kind === 'none' ? 'key' : st.rule.field} in ${st.type.type} payload`);
      // Keep the data: record it when it comes from the owner, without sequence tracking.
      if (st.owner === null || st.owner === session || !st.owner.alive) this.recorder.write(frame, recv);
      return;
    }
    const e = readInt(frame, E_KEY, from);
    if (e === e) this.metrics.eventLag.observe((recv - e) / 1000);
    st.received++;

    if (st.owner === null || !st.owner.alive) {
      st.owner = session;
      if (st.candidate === session) st.candidate = null;
    }
    if (st.owner === session) {
      this.accept(st, session, frame, recv, this.first, this.last, this.prev);
      if (st.pending.length > 0) this.tryHandover(st);
      return;
    }
    if (session.seq < st.owner.seq) {
      // An older connection still draining after it handed this stream over: the owner has it.
      this.metrics.messagesDuplicate.inc();
      return;
    }
    // A replacement delivering a stream its old connection still owns.
    if (this.last <= st.key) {
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
    st.pending.push({ frame, recv, first: this.first, last: this.last, prev: this.prev });
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
      st.owner = null;
      if (st.candidate !== null && st.candidate.alive) {
        // Planned switch-over that timed out before the two overlapped on this stream: what the
        // replacement holds follows after whatever the old one delivered; a hole is a real gap.
        const next = st.candidate;
        if (st.pending.length > 0 && !this.follows(st, st.pending[0]!) && st.gapId === null) {
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
      if (st.owner === null || !st.owner.alive || st.owner.seq < session.seq) st.owner = session;
      if (st.gapId !== null) {
        this.gaps.closeGap(st.gapId, { end: at, missed: null });
        st.gapId = null;
        st.gapCause = null;
      }
    }
  }

  /** Open a gap on a stream for a reason only its protocol knows (listen key expired, stream terminated). */
  markGap(name: string, session: SessionRef, cause: GapCause, at: number, detail?: string): void {
    const st = this.streams.get(name);
    if (!st || st.gapId !== null) return;
    st.gapId = this.gaps.openGap({ stream: name, connection: session.connectionId, start: at, cause, detail });
    st.gapCause = cause;
  }

  /** Streams' last keys and receive times, for the checkpoint. */
  snapshot(): Record<string, { key: number; recv: number }> {
    const out: Record<string, { key: number; recv: number }> = {};
    for (const st of this.streams.values()) if (st.key === st.key) out[st.name] = { key: st.key, recv: st.lastRecv };
    return out;
  }

  /** Per-stream view for readiness and tests. */
  stream(name: string): { key: number; lastRecv: number; owner: string | null; gapOpen: boolean; received: number } | undefined {
    const st = this.streams.get(name);
    if (!st) return undefined;
    return { key: st.key, lastRecv: st.lastRecv, owner: st.owner?.id ?? null, gapOpen: st.gapId !== null, received: st.received };
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

  private extract(st: StreamState, frame: Buffer, from: number): boolean {
    if (st.firstKey === null || st.lastKey === null) {
      this.first = this.last = this.prev = NaN;
      return true;
    }
    let last = readInt(frame, st.lastKey, from);
    if (last !== last && st.fallbackKey !== null) last = readInt(frame, st.fallbackKey, from);
    if (last !== last) return false;
    this.last = last;
    this.first = st.firstKey === st.lastKey ? last : readInt(frame, st.firstKey, from);
    if (this.first !== this.first) return false;
    this.prev = st.linkKey === null ? NaN : readInt(frame, st.linkKey, from);
    return true;
  }

  /** Does message `m` follow the last accepted key without a hole? (Unknowable for 'ordered'.) */
  private follows(st: StreamState, m: { first: number; last: number; prev: number }): boolean {
    if (st.key !== st.key) return true;
    switch (st.rule.kind) {
      case 'contiguous':
        return m.first <= st.key + 1;
      case 'range':
        return st.rule.linkedBy === 'pu' && m.prev === m.prev ? m.prev <= st.key : m.first <= st.key + 1;
      case 'ordered':
        return m.last <= st.key;
      case 'none':
        return true;
    }
  }

  private accept(st: StreamState, session: SessionRef, frame: Buffer, recv: number, first: number, last: number, prev: number): void {
    if (last <= st.key) {
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
    if (!this.recorder.write(frame, recv)) {
      // The recorder is full: this message is lost to the recording. The key stays where it was,
      // so the gap (opened now, or the one already open) closes with the exact range on the next
      // message the recorder takes.
      if (st.gapId === null) {
        st.gapId = this.gaps.openGap({ stream: st.name, connection: session.connectionId, start: recv, cause: 'recorder_dropped', detail: 'recorder buffer full' });
        st.gapCause = 'recorder_dropped';
      }
      return;
    }
    if (st.gapId !== null) {
      this.gaps.closeGap(st.gapId, { end: recv, missed: this.missedBefore(st, first, last, prev) });
      st.gapId = null;
      st.gapCause = null;
    } else if (st.rule.kind !== 'ordered' && !this.follows(st, { first, last, prev })) {
      this.gaps.instant({ stream: st.name, connection: session.connectionId, at: recv, cause: 'sequence', missed: this.missedBefore(st, first, last, prev) });
    }
    st.key = last;
    st.lastRecv = recv;
  }

  /** The IDs missed between the last accepted key and this message (rare path: a gap). */
  private missedBefore(st: StreamState, first: number, last: number, prev: number): Missed | null {
    return missedBetween(st.rule, st.key === st.key ? st.key : null, { first, last, prev: prev === prev ? prev : null });
  }

  private tryHandover(st: StreamState): void {
    const cand = st.candidate;
    if (cand === null || st.pending.length === 0) return;
    if (this.follows(st, st.pending[0]!) || st.pending.length >= MAX_PENDING || st.owner === null || !st.owner.alive) {
      this.handover(st, cand);
    }
  }

  /** Give the stream to `next` and replay what it delivered meanwhile, dropping what the old one had. */
  private handover(st: StreamState, next: SessionRef): void {
    st.owner = next;
    st.candidate = null;
    if (st.pending.length === 0) return;
    const pending = st.pending;
    st.pending = [];
    for (const p of pending) this.accept(st, next, p.frame, p.recv, p.first, p.last, p.prev);
  }

  private malformed(session: SessionRef, frame: Buffer, why: string): void {
    this.metrics.framesMalformed.inc();
    this.malformedSinceLog++;
    const now = Date.now();
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

function newState(name: string, type: StreamType): StreamState {
  const rule = type.sequence;
  let firstKey: Buffer | null = null;
  let lastKey: Buffer | null = null;
  let fallbackKey: Buffer | null = null;
  let linkKey: Buffer | null = null;
  switch (rule.kind) {
    case 'contiguous':
      firstKey = lastKey = keyPattern(rule.field);
      break;
    case 'range':
      firstKey = keyPattern('U');
      lastKey = keyPattern('u');
      if (rule.linkedBy === 'pu') linkKey = keyPattern('pu');
      break;
    case 'ordered':
      firstKey = lastKey = keyPattern(rule.field);
      // Futures partial depth carries `u` where spot carries lastUpdateId.
      if (rule.field === 'lastUpdateId') fallbackKey = keyPattern('u');
      break;
    case 'none':
      break;
  }
  return {
    name,
    type,
    rule,
    firstKey,
    lastKey,
    fallbackKey,
    linkKey,
    recent: rule.kind === 'none' ? new Set() : null,
    key: NaN,
    lastRecv: 0,
    owner: null,
    candidate: null,
    pending: [],
    gapId: null,
    gapCause: null,
    received: 0,
  };
}
