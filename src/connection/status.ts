import type { GapCause } from '../ledger/types.js';

/**
 * What a connection worker reports, one variant per thing that happened (nats.js `Status`:
 * `{ type: 'disconnect'; ... }`). The state variants (connecting, rotating, open, backoff, closed)
 * are the worker's transitions, each logged once as `connection_state` and counted in
 * feedkeeper_connection_state_changes_total; `lost` and `replacement_failed` are the log lines of
 * the same names (docs/architecture.md, "State machine of a connection").
 */
export type WorkerStatus =
  | { readonly type: 'connecting'; readonly connection: string; readonly reason: string }
  | {
      readonly type: 'rotating';
      readonly connection: string;
      /** A RotateReason, or why the last attempt of a rotation failed. */
      readonly reason: string;
      /** The session being replaced, when the switch-over began. */
      readonly session?: string;
    }
  | {
      readonly type: 'open';
      readonly connection: string;
      readonly reason: string;
      /** The session now delivering, e.g. `c0#3`. */
      readonly session: string;
      /** After a connect: the worker's attempts so far. */
      readonly attempts?: number;
      /** After a switch-over: the session it replaced, and how many streams never overlapped on both. */
      readonly replaced?: string;
      readonly streamsNotOverlapped?: number;
    }
  | ({ readonly type: 'backoff' } & Waiting)
  | { readonly type: 'closed'; readonly connection: string; readonly reason: string }
  | {
      /** The delivering socket ended (the backoff follows). */
      readonly type: 'lost';
      readonly connection: string;
      readonly session: string;
      readonly cause: GapCause;
      readonly code: number | null;
      readonly detail: string;
    }
  /** A replacement's attempt failed while the old socket still delivers (it is retried). */
  | ({ readonly type: 'replacement_failed' } & Waiting);

/** What `backoff` and `replacement_failed` say: why, and how long until the next attempt. */
interface Waiting {
  readonly connection: string;
  readonly reason: string;
  readonly delayMs: number;
  /** The close code of a lost socket, or the HTTP status of a refused upgrade. */
  readonly code: number | null;
  /** The error code (FK_ERR_*) of a failed attempt. */
  readonly error?: string;
  readonly detail: string;
}

export type WorkerStatusType = WorkerStatus['type'];
export type StatusOf<T extends WorkerStatusType> = Extract<WorkerStatus, { type: T }>;

type Reader<T> = (s: T | null) => void;

/**
 * Statuses pushed to any number of readers, each from the moment it started reading, in order,
 * until end(): nats.js `status(): AsyncIterable<Status>`, and a promise of the next one that
 * matches for code that awaits one event (tests, a switch-over waiting for a worker).
 */
export class StatusChannel<T> {
  private readonly readers = new Set<Reader<T>>();
  private ended = false;

  push(s: T): void {
    for (const r of [...this.readers]) r(s);
  }

  /** No more statuses: every iterator finishes, every next() still waiting resolves null. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const r of [...this.readers]) r(null);
    this.readers.clear();
  }

  /** The first status from now on that `match` accepts; null if the channel ends first. */
  next<S extends T>(match: (s: T) => s is S, signal?: AbortSignal): Promise<S | null>;
  next(match: (s: T) => boolean, signal?: AbortSignal): Promise<T | null>;
  next(match: (s: T) => boolean, signal?: AbortSignal): Promise<T | null> {
    if (this.ended || signal?.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const done = (s: T | null): void => {
        this.readers.delete(reader);
        signal?.removeEventListener('abort', onAbort);
        resolve(s);
      };
      const reader: Reader<T> = (s) => {
        if (s === null || match(s)) done(s);
      };
      const onAbort = (): void => done(null);
      this.readers.add(reader);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Every status from this call on (not from the first next(): nothing pushed in between is
   * missed), until end() or until the reader breaks out of its for-await loop.
   */
  iterate(): AsyncIterableIterator<T> {
    const queue: Array<T | null> = this.ended ? [null] : [];
    let wake: (() => void) | null = null;
    const reader: Reader<T> = (s) => {
      queue.push(s);
      wake?.();
      wake = null;
    };
    if (!this.ended) this.readers.add(reader);
    const finish = (): IteratorResult<T> => {
      this.readers.delete(reader);
      queue.length = 0;
      queue.push(null);
      return { done: true, value: undefined };
    };
    return {
      next: async () => {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const s = queue[0] as T | null;
        if (s === null) return finish();
        queue.shift();
        return { done: false, value: s };
      },
      return: async () => finish(),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}
