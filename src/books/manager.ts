import { setMaxListeners } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import { delay, systemClock, type Clock, type Timer } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { Sink } from '../pipeline/sinks.js';
import type { StreamRef } from '../pipeline/stream-ref.js';
import { RestClient } from '../rest/client.js';
import { sharedRestHosts, type RestHostRegistry } from '../rest/hosts.js';
import { restWeightLimit } from '../recovery/endpoints.js';
import { sharedPacer, type WeightPacer } from '../recovery/pacer.js';
import type { Venue } from '../venues/types.js';
import { depthEvent, LocalBook, type DepthEvent, type Level } from './book.js';

/**
 * Local order books from the diff-depth streams (docs/recovery.md, "Local order books"), the
 * documented procedure per venue: events buffered while `GET depth` is fetched; spot: drop events
 * with u ≤ lastUpdateId, the first kept has U ≤ lastUpdateId+1 ≤ u, then each U = previous u + 1;
 * USD-M/COIN-M: drop u < lastUpdateId, the first kept has U ≤ lastUpdateId ≤ u, then each pu =
 * previous u. A break, or a crossed book, resyncs that symbol alone. Snapshots are paced with the
 * backfill's share (src/recovery/pacer.ts). Every `snapshotEveryMs` each synced book goes to the
 * recording as a `"src":"book"` line, so any file can be replayed into a book without REST.
 */

export interface BooksSettings {
  enabled: boolean;
  /** Upper-case symbols; `*` (or none): every symbol with a diff-depth stream. */
  symbols: readonly string[];
  snapshotLimit: number;
  snapshotEveryMs: number;
}

export const RESYNC_REASONS = ['gap', 'crossed', 'buffer_full'] as const;
export type ResyncReason = (typeof RESYNC_REASONS)[number];

export interface BooksMetrics {
  resyncs: Counter<'venue' | 'reason'>;
  synced: Gauge<'venue'>;
  snapshots: Counter<'venue'>;
}

const byRegistry = new WeakMap<Registry, BooksMetrics>();

export function booksMetrics(registry: Registry): BooksMetrics {
  const known = byRegistry.get(registry);
  if (known !== undefined) return known;
  const r = [registry];
  const m: BooksMetrics = {
    resyncs: new Counter({ name: 'feedkeeper_book_resyncs_total', help: 'Local order books rebuilt from a new snapshot, by reason (gap, crossed, buffer_full).', labelNames: ['venue', 'reason'] as const, registers: r }),
    synced: new Gauge({ name: 'feedkeeper_books_synced', help: 'Local order books in sync now.', labelNames: ['venue'] as const, registers: r }),
    snapshots: new Counter({ name: 'feedkeeper_book_snapshot_requests_total', help: 'REST depth snapshots fetched for local order books.', labelNames: ['venue'] as const, registers: r }),
  };
  byRegistry.set(registry, m);
  return m;
}

export interface BookAnswer {
  status: 200 | 404 | 503;
  body: unknown;
}

export interface BookManagerOptions {
  venue: Pick<Venue, 'name' | 'typeOf'>;
  settings: BooksSettings;
  /** Every stream the feed carries: the diff-depth ones of the book symbols are followed. */
  streams: Iterable<string>;
  restBaseUrl: string;
  /** backfill.maxWeightPerMinute: the share snapshots draw on with the backfill. */
  maxWeightPerMinute: number;
  recorder: { write(frame: Buffer, recvMs: number, stream?: StreamRef): boolean } | null;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  hosts?: RestHostRegistry;
}

const MAX_BUFFER = 10_000;
const RETRY_MS = 1000;

type State = 'waiting' | 'fetching' | 'synced';

class SymbolBook {
  state: State = 'waiting';
  book: LocalBook | null = null;
  buffer: DepthEvent[] = [];
  /** After a snapshot: its lastUpdateId, until the first event after it is checked. */
  expectFirst: number | null = null;
  lastRecv = 0;
  resyncs = 0;
  /** Bumped at each resync: an older fetch's snapshot is ignored. */
  epoch = 0;
  readonly ref: StreamRef;

  constructor(
    readonly symbol: string,
    readonly stream: string,
    venue: string,
  ) {
    this.ref = { venue, name: stream, head: Buffer.from(`,"venue":${JSON.stringify(venue)},"stream":${JSON.stringify(stream)},"src":"book","data":`), start: 0, close: true };
  }
}

export class BookManager implements Sink {
  readonly name = 'books';
  private readonly opts: BookManagerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly m: BooksMetrics;
  private readonly byStream = new Map<string, SymbolBook>();
  private readonly bySymbol = new Map<string, SymbolBook>();
  private readonly rest: RestClient;
  private readonly pacer: WeightPacer;
  private readonly futures: boolean;
  private readonly abort = new AbortController();
  private timer: Timer | undefined;
  private stopped = false;

  constructor(opts: BookManagerOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    const venue = opts.venue.name;
    this.log = opts.logger.child({ component: 'books', venue });
    this.m = booksMetrics(opts.metrics.registry);
    this.futures = venue === 'binance-usdm' || venue === 'binance-coinm';
    const wanted = new Set(opts.settings.symbols.map((s) => s.toUpperCase()).filter((s) => s !== '*'));
    for (const stream of opts.streams) {
      const type = opts.venue.typeOf(stream);
      if (type !== 'depth' && type !== 'depth@100ms' && type !== 'depth@500ms' && type !== 'depth@250ms') continue;
      const symbol = stream.slice(0, stream.indexOf('@')).toUpperCase();
      if (wanted.size > 0 && !wanted.has(symbol)) continue;
      // One book per symbol: the fastest diff stream if several are subscribed.
      const known = this.bySymbol.get(symbol);
      if (known !== undefined && !type.endsWith('100ms')) continue;
      if (known !== undefined) this.byStream.delete(known.stream);
      const b = new SymbolBook(symbol, stream, venue);
      this.byStream.set(stream, b);
      this.bySymbol.set(symbol, b);
    }
    this.rest = new RestClient({ baseUrl: opts.restBaseUrl, logger: opts.logger, metrics: opts.metrics, clock: this.clock, maxRetries: 0, hosts: opts.hosts });
    const host = (opts.hosts ?? sharedRestHosts).get(new URL(opts.restBaseUrl).origin);
    this.pacer = sharedPacer(host, opts.maxWeightPerMinute, Math.floor(restWeightLimit(venue) * 0.9), this.clock);
    this.m.synced.set({ venue }, 0);
    // One signal for every symbol's fetch (each waits on it): not a leak.
    setMaxListeners(0, this.abort.signal);
  }

  get symbols(): string[] {
    return [...this.bySymbol.keys()];
  }

  start(): void {
    if (this.opts.recorder !== null && this.opts.settings.snapshotEveryMs > 0) this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.clock.clearTimeout(this.timer);
    await this.rest.close();
  }

  healthy(): boolean {
    return true;
  }

  /** Whether `symbol` has a local book. */
  has(symbol: string): boolean {
    return this.bySymbol.has(symbol.toUpperCase());
  }

  /** The top `levels` of a synced book, or null while it is not synced. */
  top(symbol: string, levels: number): { lastUpdateId: number; bids: Level[]; asks: Level[] } | null {
    const b = this.bySymbol.get(symbol.toUpperCase());
    if (b === undefined || b.state !== 'synced' || b.book === null) return null;
    return { lastUpdateId: b.book.lastUpdateId, ...b.book.levels(levels) };
  }

  /** Resyncs of a symbol's book in this run. */
  resyncCount(symbol: string): number {
    return this.bySymbol.get(symbol.toUpperCase())?.resyncs ?? 0;
  }

  /** The book as `GET /books/<venue>/<SYMBOL>?limit=N` answers it. */
  answer(symbol: string, limit: number): BookAnswer {
    const b = this.bySymbol.get(symbol.toUpperCase());
    const venue = this.opts.venue.name;
    if (b === undefined) return { status: 404, body: { error: 'no_book', venue, symbol, detail: 'no local book for this symbol (books.symbols, a diff-depth stream)' } };
    if (b.state !== 'synced' || b.book === null) {
      return { status: 503, body: { venue, symbol: b.symbol, synced: false, reason: b.book === null && b.lastRecv === 0 ? 'no depth event received yet' : 'resyncing: waiting for a snapshot and the events after it' } };
    }
    const { bids, asks } = b.book.levels(limit);
    return { status: 200, body: { venue, symbol: b.symbol, lastUpdateId: b.book.lastUpdateId, synced: true, bids, asks, ageMs: Math.max(0, this.clock.now() - b.lastRecv) } };
  }

  /** The router's frames (after the recorder): diff-depth events of the book streams. */
  write(frame: Buffer, recvMs: number, stream: StreamRef): boolean {
    const b = this.byStream.get(stream.name);
    if (b === undefined || this.stopped) return true;
    let ev: DepthEvent | null = null;
    try {
      ev = depthEvent((JSON.parse(frame.toString('utf8')) as { data?: unknown }).data, recvMs);
    } catch {
      return true;
    }
    if (ev === null) return true;
    b.lastRecv = recvMs;
    if (b.state === 'synced') {
      this.applyLive(b, ev);
      return true;
    }
    b.buffer.push(ev);
    if (b.buffer.length > MAX_BUFFER) {
      b.buffer.shift();
      // The snapshot may come after events the buffer dropped: start over when it does.
    }
    if (b.state === 'waiting') void this.fetch(b);
    return true;
  }

  private applyLive(b: SymbolBook, ev: DepthEvent): void {
    const book = b.book!;
    if (b.expectFirst !== null) {
      const L = b.expectFirst;
      if (ev.u < L || (!this.futures && ev.u <= L)) return; // already in the snapshot
      const ok = this.futures ? ev.U <= L && L <= ev.u : ev.U <= L + 1 && L + 1 <= ev.u;
      if (!ok) {
        this.resync(b, 'gap', ev);
        return;
      }
      b.expectFirst = null;
    } else {
      if (ev.u <= book.lastUpdateId) return; // old (a replay of what was applied)
      const follows = this.futures ? ev.pu === book.lastUpdateId : ev.U === book.lastUpdateId + 1;
      if (!follows) {
        this.resync(b, 'gap', ev);
        return;
      }
    }
    book.apply(ev.b, ev.a);
    book.lastUpdateId = ev.u;
    if (book.crossed()) this.resync(b, 'crossed', null);
  }

  private resync(b: SymbolBook, reason: 'gap' | 'crossed' | 'buffer_full', ev: DepthEvent | null): void {
    const venue = this.opts.venue.name;
    b.resyncs++;
    b.epoch++;
    this.m.resyncs.inc({ venue, reason });
    this.log.warn({ event: 'book_resync', symbol: b.symbol, stream: b.stream, reason, lastUpdateId: b.book?.lastUpdateId ?? null, U: ev?.U ?? null }, 'local order book out of sync: fetching a new snapshot for this symbol');
    const wasSynced = b.state === 'synced';
    b.state = 'fetching';
    b.book = null;
    b.expectFirst = null;
    b.buffer = ev === null ? [] : [ev];
    if (wasSynced) this.countSynced();
    void this.fetch(b);
  }

  private countSynced(): void {
    let n = 0;
    for (const b of this.bySymbol.values()) if (b.state === 'synced') n++;
    this.m.synced.set({ venue: this.opts.venue.name }, n);
  }

  private snapshotRequest(): { path: string; limit: number; weight: number } {
    const limit = this.opts.settings.snapshotLimit;
    const v = this.opts.venue.name;
    if (v === 'binance-spot') return { path: '/api/v3/depth', limit, weight: limit <= 100 ? 5 : limit <= 500 ? 25 : limit <= 1000 ? 50 : 250 };
    const allowed = [5, 10, 20, 50, 100, 500, 1000];
    const l = allowed.find((x) => x >= limit) ?? 1000;
    return { path: v === 'binance-usdm' ? '/fapi/v1/depth' : '/dapi/v1/depth', limit: l, weight: l <= 50 ? 2 : l <= 100 ? 5 : l <= 500 ? 10 : 20 };
  }

  private async fetch(b: SymbolBook): Promise<void> {
    b.state = 'fetching';
    const epoch = b.epoch;
    const req = this.snapshotRequest();
    const signal = this.abort.signal;
    for (;;) {
      if (this.stopped || b.epoch !== epoch) return;
      try {
        await this.pacer.take(req.weight, signal);
        const snap = await this.rest.request<{ lastUpdateId: number; bids: Level[]; asks: Level[] }>('GET', req.path, { query: { symbol: b.symbol, limit: req.limit }, weight: req.weight, signal });
        this.m.snapshots.inc({ venue: this.opts.venue.name });
        if (this.stopped || b.epoch !== epoch) return;
        const first = b.buffer[0];
        // The snapshot is older than the first buffered event: the events between are missing.
        if (first !== undefined && snap.lastUpdateId < first.U - (this.futures ? 0 : 1)) {
          await delay(50, signal, this.clock);
          continue;
        }
        this.begin(b, snap);
        return;
      } catch (err) {
        if (this.stopped || signal.aborted) return;
        this.log.warn({ event: 'book_snapshot_failed', symbol: b.symbol, err }, 'order book snapshot failed: retrying');
        try {
          await delay(RETRY_MS, signal, this.clock);
        } catch {
          return;
        }
      }
    }
  }

  private begin(b: SymbolBook, snap: { lastUpdateId: number; bids: Level[]; asks: Level[] }): void {
    b.book = new LocalBook(snap.lastUpdateId, snap.bids, snap.asks);
    b.expectFirst = snap.lastUpdateId;
    b.state = 'synced';
    const buffered = b.buffer;
    b.buffer = [];
    this.countSynced();
    this.log.info({ event: 'book_synced', symbol: b.symbol, lastUpdateId: snap.lastUpdateId, buffered: buffered.length }, 'local order book in sync');
    for (const ev of buffered) {
      if (b.state !== 'synced') {
        b.buffer.push(ev);
        continue;
      }
      this.applyLive(b, ev);
    }
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.writeSnapshots();
      if (!this.stopped) this.schedule();
    }, this.opts.settings.snapshotEveryMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Each synced book to the recording, all levels (`"src":"book"`). */
  writeSnapshots(): void {
    const rec = this.opts.recorder;
    if (rec === null) return;
    const now = this.clock.now();
    for (const b of this.bySymbol.values()) {
      if (b.state !== 'synced' || b.book === null || b.expectFirst !== null) continue;
      const { bids, asks } = b.book.levels();
      rec.write(Buffer.from(JSON.stringify({ lastUpdateId: b.book.lastUpdateId, bids, asks })), now, b.ref);
    }
  }
}
