/**
 * Delivery to the broker (docs/scale-out.md, "Delivery"): one ordered buffer of everything not yet
 * acknowledged, bounded in bytes; at most `maxInflight` publishes awaiting their ack at once. A
 * failed publish (broker down, ack timeout, no stream) pauses sending; once every publish in flight
 * has settled and the connection is up again, sending resumes from the oldest message not
 * acknowledged, in order. What had reached the broker before comes again with the same Msg-Id and
 * JetStream drops it (duplicates are the broker's to drop). Nothing here knows NATS: `send` does.
 */

export interface Outgoing {
  subject: string;
  data: Uint8Array;
  msgId: string;
  /** Set by the queue: position in the order of offer(). */
  seq: number;
  /** 0 waiting, 1 in flight, 2 acknowledged. */
  state: 0 | 1 | 2;
  /** When it was last sent (epoch ms; set by the sender, for the ack timeout). */
  sentAt: number;
}

export interface Ack {
  duplicate: boolean;
}

export interface DeliveryOptions {
  maxBufferBytes: number;
  maxInflight: number;
  /**
   * Publish one message; its ack (or failure) comes back through Delivery.ack() / fail(). No
   * promise per message: at 100,000 messages a second, one costs more than the publish.
   */
  send(m: Outgoing): void;
  /** After a failure, try again this long after the last publish settled (when connected). */
  retryMs: number;
  /** Every failed publish (counted by the sink). */
  onFailed(): void;
  /** The first failure of an outage and the recovery (logged by the sink). */
  onFailure(err: unknown): void;
  onRecovered(): void;
  onAck(m: Outgoing, ack: Ack): void;
  setTimeout(fn: () => void, ms: number): ReturnType<typeof setTimeout>;
  clearTimeout(t: ReturnType<typeof setTimeout> | undefined): void;
}

const WAITING = 0;
const IN_FLIGHT = 1;
const ACKED = 2;

export class Delivery {
  private queue: Outgoing[] = [];
  /** seq of queue[0]; queue[0 .. head) are acknowledged, waiting to be sliced off. */
  private base = 0;
  private head = 0;
  /** seq of the next message to send. */
  private next = 0;
  private seqNext = 0;
  private inflight = 0;
  private bytes = 0;
  private connected = false;
  private failing = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDue = true;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: DeliveryOptions) {}

  /** Messages not yet acknowledged (waiting and in flight). */
  get pending(): number {
    return this.queue.length - this.head;
  }
  get pendingBytes(): number {
    return this.bytes;
  }
  get inFlight(): number {
    return this.inflight;
  }
  /** A publish failed and sending has not succeeded since. */
  get stalled(): boolean {
    return this.failing;
  }

  /** Queue a message; false (nothing queued) when it does not fit in maxBufferBytes. */
  offer(subject: string, data: Uint8Array, msgId: string): boolean {
    const size = data.length;
    if (this.bytes + size > this.opts.maxBufferBytes) return false;
    this.queue.push({ subject, data, msgId, seq: this.seqNext++, state: WAITING, sentAt: 0 });
    this.bytes += size;
    this.pump();
    return true;
  }

  /** The connection is up (first connect, reconnect) or down. */
  setConnected(up: boolean): void {
    this.connected = up;
    if (up) {
      this.retryDue = true;
      this.pump();
    }
  }

  /** Resolves when everything is acknowledged, or after `ms` (false then). */
  async drained(ms: number): Promise<boolean> {
    if (this.pending === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = this.opts.setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = (): void => {
        this.opts.clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  close(): void {
    this.opts.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connected = false;
  }

  private pump(): void {
    if (!this.connected || (this.failing && (!this.retryDue || this.inflight > 0))) return;
    const q = this.queue;
    const max = this.opts.maxInflight;
    while (this.inflight < max) {
      const i = this.next - this.base;
      if (i >= q.length) break;
      const m = q[i]!;
      this.next++;
      if (m.state !== WAITING) continue;
      m.state = IN_FLIGHT;
      this.inflight++;
      this.opts.send(m);
      // After a failure, one message at a time until one is acknowledged: an outage is not
      // re-entered with a window full of publishes.
      if (this.failing) break;
    }
  }

  /** The broker acknowledged `m` (sent by opts.send). */
  ack(m: Outgoing, ack: Ack): void {
    this.inflight--;
    if (m.state !== IN_FLIGHT) return;
    m.state = ACKED;
    this.opts.onAck(m, ack);
    if (this.failing) {
      this.failing = false;
      this.opts.onRecovered();
    }
    const q = this.queue;
    let h = this.head;
    while (h < q.length && q[h]!.state === ACKED) {
      this.bytes -= q[h]!.data.length;
      h++;
    }
    this.head = h;
    // Acknowledged messages leave the head in batches: shifting one by one is O(n) per ack.
    if (h === q.length) {
      this.queue = [];
      this.base += h;
      this.head = 0;
    } else if (h >= 4096 && h * 2 >= q.length) {
      this.queue = q.slice(h);
      this.base += h;
      this.head = 0;
    }
    if (this.queue.length === 0 && this.inflight === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
    this.pump();
  }

  /** Publishing `m` failed (sent by opts.send): it goes out again, in order. */
  fail(m: Outgoing, err: unknown): void {
    this.inflight--;
    if (m.state !== IN_FLIGHT) return;
    m.state = WAITING;
    this.opts.onFailed();
    if (m.seq < this.next) this.next = m.seq;
    if (!this.failing) {
      this.failing = true;
      this.opts.onFailure(err);
    }
    this.retryDue = false;
    this.opts.clearTimeout(this.retryTimer);
    this.retryTimer = this.opts.setTimeout(() => {
      this.retryTimer = undefined;
      this.retryDue = true;
      this.pump();
    }, this.opts.retryMs);
  }
}
