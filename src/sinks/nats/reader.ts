import { DeliverPolicy, jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { COLLECTOR_HEADER } from './sink.js';

/** One message read back from the stream. */
export interface StoredMessage {
  subject: string;
  /** The stream's sequence number. */
  seq: number;
  /** When JetStream stored it, epoch ms. */
  time: number;
  msgId: string | null;
  collector: string | null;
  data: Uint8Array;
}

/**
 * Every message of `stream` from `since` (epoch ms; null: the first) through `until`, in stream
 * order, with an ordered consumer (ephemeral, nothing left on the server). Rejects when the
 * stream does not exist.
 */
export async function readStream(nc: NatsConnection, stream: string, opts: { since?: number | null; until?: number | null; onMessage: (m: StoredMessage) => void }): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let last: number;
  try {
    last = (await jsm.streams.info(stream)).state.last_seq;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) throw new Error(`no JetStream stream ${stream}`);
    throw err;
  }
  if (last === 0) return 0;
  const js = jetstream(nc);
  const since = opts.since ?? null;
  const until = opts.until ?? Infinity;
  const consumer = await js.consumers.get(stream, since === null ? {} : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(since).toISOString() });
  let n = 0;
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 5000, expires: 2000 });
    let got = 0;
    let done = false;
    for await (const m of batch) {
      got++;
      const time = Math.floor(m.info.timestampNanos / 1e6);
      if (time > until) {
        done = true;
        break;
      }
      n++;
      opts.onMessage({
        subject: m.subject,
        seq: m.seq,
        time,
        msgId: m.headers?.get('Nats-Msg-Id') || null,
        collector: m.headers?.get(COLLECTOR_HEADER) || null,
        data: m.data,
      });
      if (m.info.pending === 0 || m.seq >= last) {
        done = true;
        break;
      }
    }
    if (done || got === 0) break;
  }
  return n;
}
