import type { Clock, Timer } from '../clock.js';
import { systemClock } from '../clock.js';
import type { StreamRef } from '../pipeline/stream-ref.js';
import type { BookManager } from './manager.js';

/**
 * Binance partial-depth streams (`<symbol>@depth5|10|20[@100ms]`) built from the local books, for
 * the relay's clients (docs/recovery.md, "Through the relay"): `{"lastUpdateId","bids","asks"}` of
 * the top N levels every 100 ms (1000 ms without `@100ms`), the shape Binance sends, while the book
 * is synced. Bots get a correct book without fetching snapshots or subscribing upstream. A stream the
 * daemon subscribes upstream itself is left to the upstream.
 */

const PARTIAL = /^([a-z0-9_]+)@depth(5|10|20)(@100ms)?$/;

export interface RelayTarget {
  write(frame: Buffer, recvMs: number, stream: StreamRef): boolean;
}

interface Active {
  venue: string;
  name: string;
  symbol: string;
  levels: number;
  holders: number;
  timer: Timer;
  ref: StreamRef;
}

export class LocalDepthStreams {
  private readonly active = new Map<string, Active>();
  private readonly clock: Clock;

  constructor(
    private readonly opts: {
      /** The books of a venue's feed, and whether the feed subscribes the stream upstream itself. */
      feed: (venue: string) => { books: BookManager | null; carries(name: string): boolean } | undefined;
      relay: () => RelayTarget | null;
      clock?: Clock;
    },
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /** A partial-depth stream of a symbol with a local book, not subscribed upstream. */
  handles(venue: string, stream: string): boolean {
    const m = PARTIAL.exec(stream);
    if (m === null) return false;
    const feed = this.opts.feed(venue);
    if (feed === undefined || feed.books === null || feed.carries(stream)) return false;
    return feed.books.has(m[1]!.toUpperCase());
  }

  want(venue: string, stream: string): Promise<void> {
    const key = `${venue}\u0000${stream}`;
    const known = this.active.get(key);
    if (known !== undefined) {
      known.holders++;
      return Promise.resolve();
    }
    const m = PARTIAL.exec(stream)!;
    const every = m[3] === undefined ? 1000 : 100;
    const a: Active = {
      venue,
      name: stream,
      symbol: m[1]!.toUpperCase(),
      levels: Number(m[2]),
      holders: 1,
      timer: undefined as unknown as Timer,
      ref: { venue, name: stream, head: Buffer.alloc(0), start: 0, close: false },
    };
    const tick = (): void => {
      this.publish(a);
      a.timer = this.clock.setTimeout(tick, every);
      (a.timer as { unref?: () => void }).unref?.();
    };
    a.timer = this.clock.setTimeout(tick, every);
    (a.timer as { unref?: () => void }).unref?.();
    this.active.set(key, a);
    return Promise.resolve();
  }

  release(venue: string, stream: string): void {
    const key = `${venue}\u0000${stream}`;
    const a = this.active.get(key);
    if (a === undefined || --a.holders > 0) return;
    this.clock.clearTimeout(a.timer);
    this.active.delete(key);
  }

  close(): void {
    for (const a of this.active.values()) this.clock.clearTimeout(a.timer);
    this.active.clear();
  }

  private publish(a: Active): void {
    const relay = this.opts.relay();
    const top = this.opts.feed(a.venue)?.books?.top(a.symbol, a.levels) ?? null;
    if (relay === null || top === null) return;
    const data = JSON.stringify({ lastUpdateId: top.lastUpdateId, bids: top.bids, asks: top.asks });
    relay.write(Buffer.from(`{"stream":"${a.name}","data":${data}}`), this.clock.now(), a.ref);
  }
}
