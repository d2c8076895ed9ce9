import t from 'tap';
import WebSocket from 'ws';
import { sleep, startStack, until } from './helpers/stack.js';

// /readyz and streams that push on a timer (depth, tickers, klines): one silent past
// health.silentAfterMs makes the daemon unready, named in the reasons. Silence counts from its last
// message or from when it was subscribed: a stream a relay client (or the universe) added a moment
// ago is not yet silent, however long the daemon has run.

const SILENT_MS = 1200;

t.test('a timed stream: silent past health.silentAfterMs makes /readyz fail; one added live counts from its subscription', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20 },
    config: {
      symbols: ['BTCUSDT'],
      streams: ['depth@100ms'],
      health: { silentAfterMs: SILENT_MS },
      // The silence watch would resubscribe a silent stream: here it must stay silent.
      silence: { afterMs: 600_000 },
      relay: { enabled: true, port: 0 },
    },
  });
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('btcusdt@depth@100ms')?.received ?? 0) > 0, 5000), 'the planned stream delivers');
  // Run past the silence bound since the start, everything delivering.
  await sleep(SILENT_MS + 300);
  t.same(daemon.readiness().reasons, [], 'ready while every timed stream delivers');

  // The exchange goes quiet, then a client asks for another timed stream: it is subscribed upstream
  // and sends nothing.
  sim.pause();
  const c = new WebSocket(`${daemon.relay!.url}/ws/0`);
  t.teardown(() => c.terminate());
  const replies: string[] = [];
  c.on('message', (d) => replies.push(d.toString()));
  await new Promise((r) => c.once('open', r));
  // The daemon subscribes after this moment: its silence bound cannot end before sentAt + SILENT_MS.
  const sentAt = Date.now();
  c.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['ethusdt@depth@100ms'], id: 1 }));
  t.ok(await until(() => sim.connections()[0]?.streams.has('ethusdt@depth@100ms') === true, 5000), 'subscribed upstream');
  const addedAt = Date.now();
  t.notOk(
    daemon.readiness().reasons.some((r) => r.includes('ethusdt@depth@100ms')),
    `a stream subscribed ${Date.now() - addedAt} ms ago is not held against readiness`,
  );
  t.ok(await until(() => daemon.readiness().reasons.some((r) => r.includes('ethusdt@depth@100ms')), 5000), 'once silent past the bound, it is');
  t.ok(Date.now() - sentAt >= SILENT_MS - 50, `not before the bound (${Date.now() - sentAt} ms after the SUBSCRIBE was sent)`);
  const r = daemon.readiness();
  t.equal(r.ready, false);
  t.ok(r.reasons.some((x) => /^\d+ streams silent past their interval/.test(x)), r.reasons.join('; '));

  sim.resume();
  t.ok(await until(() => daemon.readiness().ready, 5000), 'ready again once the streams deliver');
  t.same(sim.violations, []);
});
