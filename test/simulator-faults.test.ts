import t, { type Test } from 'tap';
import { startSimulator, type SimulatorOptions } from '../src/simulator/index.js';
import { connect, data, refusedUpgrade, sleep, waitFor } from './fixtures/sim-client.js';

async function sim(t: Test, opts: SimulatorOptions = {}) {
  const s = await startSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts });
  t.teardown(() => s.close());
  return s;
}

t.test('stall: no frames, no pings, input ignored, TCP stays open', async (t) => {
  const s = await sim(t, { pingIntervalMs: 250, pongTimeoutMs: 800 }); // pongs count: at most 4/s
  const a = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  const b = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  await waitFor(() => a.frames.length >= 2 && a.pings.length >= 1, 3000, 'traffic on a');
  const idA = s.connections()[0]!.id; // a was accepted first
  t.equal(s.stall((c) => c.id === idA), 1, 'only the filtered connection');
  await sleep(150); // frames already on the wire still arrive
  const frames = a.frames.length;
  const pings = a.pings.length;
  let pongs = 0;
  a.ws.on('pong', () => pongs++);
  a.ws.ping('are you there');
  a.send({ method: 'LIST_SUBSCRIPTIONS', id: 1 });
  const bFrames = b.frames.length;
  // Four more pings on b: 1 s, past a's pong deadline (800 ms). A stalled server does not enforce its own deadline either.
  await b.pinged(b.pings.length + 4);
  t.equal(a.frames.length, frames, 'no data, no replies');
  t.equal(a.pings.length, pings, 'no pings');
  t.equal(pongs, 0, 'client pings unanswered');
  t.notOk(a.isClosed(), 'TCP still open');
  t.ok(b.frames.length > bFrames, 'the other connection still flows');
  t.equal(s.connections().find((c) => c.id === idA)?.state, 'stalled');
  t.same(s.violations, []);
  // The client gives up on the dead connection: the exchange notices the socket close.
  a.ws.terminate();
  await waitFor(() => s.connections().length === 1, 3000, 'stalled connection gone');
  await b.close();
});

t.test('serverShutdown: the event on combined and raw connections, then close after the grace period', async (t) => {
  const s = await sim(t, { clock: () => 1_700_000_000_000 });
  const comb = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  const raw = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  t.equal(s.serverShutdown(undefined, { graceMs: 1000 }), 2);
  t.same(JSON.parse(await comb.next((f) => f.includes('serverShutdown'))), {
    stream: '!serverShutdown',
    data: { e: 'serverShutdown', E: 1_700_000_000_000 },
  });
  t.equal(await raw.next((f) => f.includes('serverShutdown')), '{"e":"serverShutdown","E":1700000000000}');
  t.ok(s.connections().every((c) => c.state === 'shutting-down'));
  const i = comb.frames.length;
  await comb.next(() => true, { from: i }); // data still flows during the grace period
  const [c1, c2] = await Promise.all([comb.closed, raw.closed]);
  t.equal(c1.code, 1001);
  t.equal(c2.code, 1001);
  t.equal(s.serverShutdown(), 0, 'nobody left');
});

t.test('maintenance: drop all, 503 with Retry-After, status endpoint says so, then normal', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  s.maintenance(1500);
  t.equal((await c.closed).code, 1001);
  const r = await refusedUpgrade(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  t.equal(r.status, 503);
  t.ok(['1', '2'].includes(r.headers['retry-after'] as string), 'Retry-After: the seconds left');
  t.same(await (await fetch(`${s.httpUrl}/sapi/v1/system/status`)).json(), { status: 1, msg: 'system_maintenance' });
  s.advance(1600); // the window is over
  t.same(await (await fetch(`${s.httpUrl}/sapi/v1/system/status`)).json(), { status: 0, msg: 'normal' });
  const again = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  await again.next(() => true);
  await again.close();

  s.maintenance(500, { status: 502, retryAfterS: 42 });
  const r2 = await refusedUpgrade(`${s.wsUrl}/ws`);
  t.same([r2.status, r2.headers['retry-after']], [502, '42']);
});

t.test('refuseUpgrades: the next N upgrades get the status with Retry-After', async (t) => {
  const s = await sim(t);
  s.refuseUpgrades(2, 418, 30);
  const r1 = await refusedUpgrade(`${s.wsUrl}/ws`);
  const r2 = await refusedUpgrade(`${s.wsUrl}/ws`);
  t.same([r1.status, r1.headers['retry-after']], [418, '30']);
  t.equal(r2.status, 418);
  const c = await connect(`${s.wsUrl}/ws`);
  t.same(s.upgradeAttempts.map((a) => a.status), [418, 418, 101]);
  s.refuseUpgrades(1, 429);
  const r3 = await refusedUpgrade(`${s.wsUrl}/ws`);
  t.same([r3.status, r3.headers['retry-after']], [429, '1']);
  t.same(s.violations, [], 'injected refusals are not the client’s fault');
  await c.close();
});

t.test('drop and dropAll: close codes and abrupt TCP close', async (t) => {
  const s = await sim(t);
  const a = await connect(`${s.wsUrl}/ws`);
  const b = await connect(`${s.wsUrl}/ws`);
  const c = await connect(`${s.wsUrl}/ws`);
  const [ia, ib] = s.connections().map((x) => x.id);
  s.drop(ia!, { code: 4000 });
  t.equal((await a.closed).code, 4000);
  s.drop(ib!, { abrupt: true });
  t.equal((await b.closed).code, 1006, 'no close frame');
  await waitFor(() => s.connections().length === 1, 2000, 'two gone');
  t.equal(s.dropAll(), 1);
  t.equal((await c.closed).code, 1001);
  s.drop(9999); // unknown id: nothing happens
});

t.test('pause stops generation, resume restarts it', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  await c.next(() => true);
  s.pause();
  await sleep(50);
  const n = s.generated('btcusdt@trade');
  const frames = c.frames.length;
  await sleep(300);
  t.equal(s.generated('btcusdt@trade'), n);
  t.equal(c.frames.length, frames);
  s.resume();
  await c.next(() => true, { from: frames });
  const ids = c.frames.map((f) => JSON.parse(f).t as number);
  for (let i = 1; i < ids.length; i++) t.equal(ids[i], ids[i - 1]! + 1, 'no gap across a pause');
  await c.close();
});

t.test('a stream with no subscriber moves on: a resubscriber sees a real gap', async (t) => {
  const s = await sim(t);
  const a = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  await waitFor(() => a.frames.length >= 2, 3000, 'trades');
  await a.close();
  const last = JSON.parse(a.frames.at(-1)!).t as number;
  await waitFor(() => s.connections().length === 0, 2000, 'a gone');
  s.advance(500); // half a second of market (10 trades) while nobody listens
  const b = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  const first = data(await b.next(() => true)).t as number;
  t.ok(first > last + 3, `gap: last ${last}, then ${first}`);
  const sent = s.sentIds('btcusdt@trade');
  const i = sent.indexOf(last);
  t.same(sent.slice(i, sent.indexOf(first) + 1), Array.from({ length: first - last + 1 }, (_, k) => last + k), 'sentIds has every ID, the missed ones included');
  await b.close();
});

t.test('advanceWhileIdle: false keeps IDs contiguous across an unsubscribed period', async (t) => {
  const s = await sim(t, { advanceWhileIdle: false });
  const a = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  await waitFor(() => a.frames.length >= 1, 3000, 'a trade');
  await a.close();
  const last = JSON.parse(a.frames.at(-1)!).t as number;
  await waitFor(() => s.connections().length === 0, 2000, 'a gone');
  s.advance(300);
  const b = await connect(`${s.wsUrl}/ws/btcusdt@trade`);
  t.equal(data(await b.next(() => true)).t, last + 1);
  await b.close();
});

t.test('a client that does not read is cut as a slow consumer and noted', async (t) => {
  const s = await sim(t, { eventsPerSecond: 500, tickMs: 20, maxBufferedBytes: 256 * 1024 });
  const streams = Array.from({ length: 40 }, (_, i) => `s${i}usdt@depth20`).join('/');
  const c = await connect(`${s.wsUrl}/stream?streams=${streams}`);
  c.ws.pause(); // stop reading: the kernel buffers fill, then the server's
  await waitFor(() => s.notes.length > 0, 15_000, 'slow consumer note');
  t.equal(s.notes[0]?.kind, 'slow_consumer');
  await waitFor(() => s.connections().length === 0, 3000, 'cut');
  t.same(s.violations, [], 'not a violation of the client');
  c.ws.terminate();
});
