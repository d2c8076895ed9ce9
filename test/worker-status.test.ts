import t from 'tap';
import { StatusChannel } from '../src/connection/status.js';
import type { WorkerStatus } from '../src/connection/status.js';
import { startStack, within } from './helpers/stack.js';

t.test('StatusChannel: a reader gets every status from the moment it asked, until end()', async (t) => {
  const ch = new StatusChannel<number>();
  const it = ch.iterate();
  ch.push(1); // before the first next(): not lost
  const even = ch.next((n) => n % 2 === 0);
  ch.push(2);
  ch.push(3);
  t.equal(await even, 2, 'next() resolves with the first match');
  t.same(await it.next(), { done: false, value: 1 });
  t.same(await it.next(), { done: false, value: 2 });
  const pending = ch.next((n) => n > 100);
  const ac = new AbortController();
  const aborted = ch.next(() => false, ac.signal);
  ac.abort();
  t.equal(await aborted, null, 'an aborted next() resolves null');
  ch.end();
  t.same(await it.next(), { done: false, value: 3 }, 'what was pushed before end() is still read');
  t.same(await it.next(), { done: true, value: undefined });
  t.equal(await pending, null, 'a next() still waiting at end() resolves null');
  t.equal(await ch.next(() => true), null, 'and so does one asked after');
  const late: number[] = [];
  for await (const n of ch.iterate()) late.push(n);
  t.same(late, [], 'an iterator made after end() is done at once');

  const ch2 = new StatusChannel<number>();
  const got: number[] = [];
  const reading = (async () => {
    for await (const n of ch2.iterate()) {
      got.push(n);
      if (n === 2) break;
    }
  })();
  for (const n of [1, 2, 3]) ch2.push(n);
  await reading;
  t.same(got, [1, 2], 'a reader that breaks out stops reading');
});

t.test('a worker reports its transitions as statuses: drop, reconnect, rotation, stop', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 10, tickMs: 50 },
    config: { symbols: ['BTCUSDT'], streams: ['trade'], connection: { backoff: { initialMs: 50, maxMs: 200 } } },
  });
  const worker = daemon.supervisor.workers[0]!;
  await worker.opened;
  const first = worker.session!.id;
  const statuses = worker.status();
  const seen: WorkerStatus[] = [];
  const reading = (async () => {
    for await (const s of statuses) seen.push(s);
  })();

  t.equal(sim.dropAll({ code: 1011 }), 1);
  const back = await within(worker.nextStatus('open'), 5000);
  t.match(back, { type: 'open', connection: worker.id, reason: 'server_close' }, 'open again, awaited');
  t.not(back!.session, first, 'on a new session');

  const rotated = await within(
    (async () => {
      const open = worker.nextStatus('open', (s) => s.replaced !== undefined);
      worker.rotate('lifetime');
      return open;
    })(),
    5000,
  );
  t.match(rotated, { type: 'open', reason: 'lifetime', replaced: back!.session, streamsNotOverlapped: 0 }, 'switched over to a replacement');

  await daemon.stop('test');
  await reading;
  t.same(
    seen.map((s) => s.type),
    ['lost', 'backoff', 'connecting', 'open', 'rotating', 'open', 'closed'],
    'every transition once, in order; the iterator ends when the worker is closed',
  );
  t.match(seen[0], { type: 'lost', session: first, cause: 'server_close', code: 1011 });
  t.match(seen[1], { type: 'backoff', reason: 'server_close', code: 1011 });
  t.match(seen[4], { type: 'rotating', reason: 'lifetime', session: back!.session });
  t.match(seen[6], { type: 'closed', reason: 'shutdown' });
  t.equal(await worker.nextStatus('open'), null, 'a closed worker has nothing more to say');
});
