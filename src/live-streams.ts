import type { Clock } from './clock.js';
import type { Feed } from './feed.js';
import type { Logger } from './log.js';

/** Why a live stream was refused, with the Binance error code a relay client gets (2: invalid request). */
export class LiveStreamRefusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'LiveStreamRefusal';
  }
}

export interface LiveStreamsOptions {
  feeds: readonly Feed[];
  /** Unsubscribe upstream this long after the last client left (relay.lingerMs). */
  lingerMs: number;
  /** Streams beyond the config per venue (relay.maxExtraStreams). */
  maxExtra: number;
  logger: Logger;
  clock: Clock;
}

/**
 * The streams clients of the daemon ask for (the relay's upstream): a stream the config carries is
 * there already; another is subscribed live on its feed (Feed.subscribe), once however many clients
 * want it, within relay.maxExtraStreams, and unsubscribed relay.lingerMs after the last client left.
 * Streams from the config are never dropped.
 */
export class LiveStreams {
  private readonly extra = new Map<string, { feed: Feed; ready: Promise<void>; linger: ReturnType<typeof setTimeout> | undefined }>();
  constructor(private readonly opts: LiveStreamsOptions) {}

  /** Is `stream` one the venue has (its catalogue and symbol shape)? */
  valid(venue: string, stream: string): boolean {
    const feed = this.feed(venue);
    if (feed === undefined) return false;
    const v = feed.venue;
    const at = stream.indexOf('@');
    if (at <= 0 || stream.slice(0, at) !== stream.slice(0, at).toLowerCase()) return false;
    return v.isSymbol(stream.slice(0, at).toUpperCase()) && v.streamType(v.typeOf(stream)) !== null;
  }

  /** Resolves once `stream` is delivered by the venue's feed: carried already, or subscribed now. */
  want(venue: string, stream: string): Promise<void> {
    const feed = this.feed(venue);
    if (feed === undefined) return Promise.reject(new LiveStreamRefusal(2, `Invalid request: no venue ${venue}`));
    const k = key(venue, stream);
    // The config's streams (and a universe's, a reload's) are there already.
    if (feed.configured(stream)) return Promise.resolve();
    const held = this.extra.get(k);
    if (held !== undefined) {
      this.opts.clock.clearTimeout(held.linger);
      held.linger = undefined;
      return held.ready;
    }
    const count = [...this.extra.values()].filter((e) => e.feed === feed).length;
    if (count >= this.opts.maxExtra) {
      return Promise.reject(new LiveStreamRefusal(2, `Invalid request: ${stream} is not in the daemon's config and ${count} extra streams are already subscribed (relay.maxExtraStreams)`));
    }
    const ready = feed.subscribe(stream).catch((err: unknown) => {
      this.extra.delete(k);
      throw new LiveStreamRefusal(2, `Invalid request: ${stream} could not be subscribed upstream: ${(err as Error).message}`);
    });
    this.extra.set(k, { feed, ready, linger: undefined });
    return ready;
  }

  /** No client wants `stream` any more: an extra stream is unsubscribed after relay.lingerMs. */
  release(venue: string, stream: string): void {
    const k = key(venue, stream);
    const held = this.extra.get(k);
    if (held === undefined || held.linger !== undefined) return;
    held.linger = this.opts.clock.setTimeout(() => {
      this.extra.delete(k);
      // A universe change or a reload may have made it a configured stream meanwhile: it stays.
      if (held.feed.configured(stream)) return;
      void held.ready
        .then(() => held.feed.unsubscribe(stream))
        .catch((err: unknown) => this.opts.logger.warn({ event: 'unsubscribe_failed', venue, stream, err }, 'unsubscribe failed'));
    }, this.opts.lingerMs);
    (held.linger as { unref?: () => void }).unref?.();
  }

  /** Extra streams subscribed now (for tests and /readyz). */
  extras(): string[] {
    return [...this.extra.keys()];
  }

  close(): void {
    for (const e of this.extra.values()) this.opts.clock.clearTimeout(e.linger);
  }

  private feed(venue: string): Feed | undefined {
    return this.opts.feeds.find((f) => f.name === venue);
  }
}

function key(venue: string, stream: string): string {
  return `${venue} ${stream}`;
}
