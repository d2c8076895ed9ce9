import t, { type Test } from 'tap';
import { startSimulator, type SimulatorOptions } from '../src/simulator/index.js';
import { connect, refusedUpgrade, waitFor } from './fixtures/sim-client.js';

async function sim(t: Test, opts: SimulatorOptions = {}) {
  const s = await startSimulator(opts);
  t.teardown(() => s.close());
  return s;
}

t.test('more than messagesPerSecond frames in 1 s (text, ping, pong) closes with 1008', async (t) => {
  const s = await sim(t); // spot: 5 per second
  const seen: string[] = [];
  s.onViolation = (v) => seen.push(v.rule);
  const c = await connect(`${s.wsUrl}/ws`);
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 1 });
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
  c.ws.ping('a');
  c.ws.ping('b');
  c.ws.pong('c');
  c.ws.pong('d'); // the sixth
  const closed = await c.closed;
  t.same(closed, { code: 1008, reason: 'too many requests' });
  t.equal(s.violations.length, 1);
  t.equal(s.violations[0]?.rule, 'messages_per_second');
  t.same(seen, ['messages_per_second'], 'onViolation called');
});

t.test('a client that stays within the rate is left alone', async (t) => {
  const s = await sim(t);
  const c = await connect(`${s.wsUrl}/ws`);
  for (let i = 0; i < 5; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
  await c.next((f) => f.includes('"id":4'));
  s.advance(1100); // the exchange's second has passed
  for (let i = 5; i < 10; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
  await c.next((f) => f.includes('"id":9'));
  t.notOk(c.isClosed());
  t.same(s.violations, []);
  t.equal(s.connections()[0]?.messagesFromClient, 10);
  await c.close();
});

t.test('more than connectionAttempts upgrades per window from one IP → 429 with Retry-After', async (t) => {
  const s = await sim(t, { limits: { connectionAttempts: 3, connectionAttemptWindowMs: 60_000 } });
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await connect(`${s.wsUrl}/ws`));
  const r = await refusedUpgrade(`${s.wsUrl}/ws`);
  t.equal(r.status, 429);
  const retryAfter = Number(r.headers['retry-after']);
  t.ok(retryAfter > 50 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  t.same(s.upgradeAttempts.map((a) => a.status), [101, 101, 101, 429]);
  t.equal(s.violations.length, 1);
  t.same([s.violations[0]?.rule, s.violations[0]?.connId], ['connection_attempts', 0]);
  t.equal(s.totalConnections, 3);
  // Closing connections does not give attempts back: it is a rate, not a cap on concurrency.
  await Promise.all(clients.map((c) => c.close()));
  t.equal((await refusedUpgrade(`${s.wsUrl}/ws`)).status, 429);
});

t.test('the attempt window slides, and refused attempts count too', async (t) => {
  const s = await sim(t, { limits: { connectionAttempts: 2, connectionAttemptWindowMs: 2000 } });
  const a = await connect(`${s.wsUrl}/ws`);
  const b = await connect(`${s.wsUrl}/ws`);
  s.advance(1000);
  t.equal((await refusedUpgrade(`${s.wsUrl}/ws`)).status, 429);
  s.advance(1200); // a and b have left the window, the refused attempt has not
  const c = await connect(`${s.wsUrl}/ws`);
  t.equal((await refusedUpgrade(`${s.wsUrl}/ws`)).status, 429, 'the refused attempt still counts');
  t.same(s.upgradeAttempts.map((x) => x.status), [101, 101, 429, 101, 429]);
  await Promise.all([a.close(), b.close(), c.close()]);
});

t.test('server pings carry a payload; a client that pongs stays connected', async (t) => {
  const s = await sim(t, { pingIntervalMs: 300, pongTimeoutMs: 900 }); // pongs count: keep them under 5/s
  const c = await connect(`${s.wsUrl}/ws`); // ws answers pings with their payload
  await c.pinged(4);
  t.ok(c.pings.length >= 4, `${c.pings.length} pings`);
  t.ok(c.pings.every((p) => p.length > 0), 'each ping has a payload');
  t.equal(new Set(c.pings).size, c.pings.length, 'payloads differ');
  t.notOk(c.isClosed());
  t.same(s.violations, []);
  await c.close();
});

t.test('no pong with the ping payload before pongTimeoutMs → closed (unsolicited pongs do not help)', async (t) => {
  const s = await sim(t, { pingIntervalMs: 200, pongTimeoutMs: 300 });
  const c = await connect(`${s.wsUrl}/ws`, { autoPong: false });
  const pongs = setInterval(() => c.ws.pong('unsolicited'), 250);
  t.teardown(() => clearInterval(pongs));
  const closed = await c.closed;
  t.same(closed, { code: 1008, reason: 'pong timeout' });
  t.equal(s.violations.length, 1);
  t.equal(s.violations[0]?.rule, 'pong_timeout');
  t.ok(c.pings.length >= 1);
});

t.test('a late pong answers the earlier pings too', async (t) => {
  const s = await sim(t, { pingIntervalMs: 200, pongTimeoutMs: 700 });
  const c = await connect(`${s.wsUrl}/ws`, { autoPong: false });
  // Answer only every other ping, always within the deadline of the older one.
  c.ws.on('ping', (p) => {
    if (c.pings.length % 2 === 0) c.ws.pong(p);
  });
  await c.pinged(7); // 1.4 s: the 700 ms deadline came and went twice
  t.notOk(c.isClosed());
  t.same(s.violations, []);
  await c.close();
});

t.test('connections are cut at maxLifetimeMs', async (t) => {
  const s = await sim(t, { maxLifetimeMs: 300 });
  const c = await connect(`${s.wsUrl}/stream?streams=btcusdt@trade`);
  const closed = await c.closed;
  t.equal(closed.code, 1001);
  t.equal(closed.reason, 'connection lifetime exceeded');
  await waitFor(() => s.connections().length === 0, 2000, 'connection gone');
  t.same(s.violations, []);
});

t.test('options out of range are refused', async (t) => {
  await t.rejects(startSimulator({ tickMs: 0 }), RangeError);
  await t.rejects(startSimulator({ limits: { messagesPerSecond: 0 } }), /messagesPerSecond/);
});
