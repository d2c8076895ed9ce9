import t from 'tap';
import { StreamRouter, type GapCause, type GapSink, type Missed, type SessionRef } from '../src/pipeline/stream-router.js';
import { createMetrics } from '../src/metrics/registry.js';
import { silentLogger } from '../src/log.js';
import { coinbase } from '../src/venues/coinbase/index.js';
import type { StreamType } from '../src/venues/types.js';

// StreamRouter.connectionGap(), the seam a connection-wide sequence (Coinbase sequence_num) needs:
// one `sequence` entry per stream of the connection, none for a stream already in a gap or
// delivered by another connection.

class MemoryGaps implements GapSink {
  readonly entries: Array<{ stream: string; cause: GapCause; connection: string; start: number; end: number | null; missed: Missed | null; detail?: string }> = [];
  openGap(e: { stream: string; connection: string; start: number; cause: GapCause }): string {
    this.entries.push({ stream: e.stream, cause: e.cause, connection: e.connection, start: e.start, end: null, missed: null });
    return String(this.entries.length - 1);
  }
  closeGap(id: string, e: { end: number; missed: Missed | null }): void {
    Object.assign(this.entries[Number(id)]!, { end: e.end, missed: e.missed });
  }
  instant(e: { stream: string; connection: string; at: number; cause: GapCause; missed: Missed | null; detail?: string }): string {
    this.entries.push({ stream: e.stream, cause: e.cause, connection: e.connection, start: e.at, end: e.at, missed: e.missed, detail: e.detail });
    return String(this.entries.length - 1);
  }
  inMaintenance(): boolean {
    return false;
  }
}

let seq = 0;
const session = (connectionId: string): SessionRef & { alive: boolean } => ({ id: `${connectionId}#${++seq}`, connectionId, alive: true, seq });

function frame(channel: string, product: string, ts: string, n: number): Buffer {
  return Buffer.from(`{"channel":"${channel}","client_id":"","timestamp":"${ts}","sequence_num":${n},"events":[{"type":"update","product_id":"${product}","updates":[]}]}`);
}

t.test('connectionGap: every stream of the connection, once; not the ones in a gap or owned elsewhere', async (t) => {
  const names = ['level2:BTC-USD', 'level2:ETH-USD', 'level2:SOL-USD', 'level2:XRP-USD'];
  const streams = new Map<string, StreamType>(names.map((n) => [n, coinbase.streamType('level2')!]));
  const gaps = new MemoryGaps();
  const router = new StreamRouter({ venue: coinbase, streams, gaps, recorder: { write: () => true }, metrics: createMetrics({ defaultMetrics: false }), logger: silentLogger() });
  const a = session('c0');
  const b = session('c1');
  router.route(a, frame('l2_data', 'BTC-USD', '2026-12-02T05:00:00.001Z', 1), 1);
  router.route(a, frame('l2_data', 'ETH-USD', '2026-12-02T05:00:00.002Z', 2), 2);
  router.route(b, frame('l2_data', 'SOL-USD', '2026-12-02T05:00:00.003Z', 1), 3);
  // XRP-USD has delivered nothing yet: it is still the connection's.
  const missed: Missed = { field: 'sequence_num', from: 3, to: 6, count: 4 };
  router.connectionGap(a, names, 10, missed, 'jumped');
  t.same(
    gaps.entries.map((e) => [e.stream, e.cause, e.connection, e.missed]),
    [
      ['level2:BTC-USD', 'sequence', 'c0', missed],
      ['level2:ETH-USD', 'sequence', 'c0', missed],
      ['level2:XRP-USD', 'sequence', 'c0', missed],
    ],
    'SOL-USD is delivered by c1: untouched',
  );
  t.ok(gaps.entries.every((e) => e.start === 10 && e.end === 10 && e.detail === 'jumped'), 'instant entries with the detail');
  // A stream already dark gets nothing more.
  router.sessionClosed(b, 20, { planned: false, cause: 'network_error' });
  const n = gaps.entries.length;
  router.connectionGap(b, ['level2:SOL-USD'], 21, missed, 'again');
  t.equal(gaps.entries.length, n, 'SOL-USD is in its network_error gap already');
  router.connectionGap(a, ['level2:NOPE-USD'], 22, missed, 'unknown');
  t.equal(gaps.entries.length, n, 'a stream outside the plan is ignored');
});
