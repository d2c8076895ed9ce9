import { Clock as TapClock } from '@tapjs/clock';
import t, { type Test } from 'tap';
import { once } from 'node:events';
import cron from 'node-cron';
import { WebSocket } from 'ws';
import { RestClient } from '../src/rest/client.js';
import { RestHostRegistry } from '../src/rest/hosts.js';
import { ListenKeyManager, type ListenKeyManagerOptions, type ListenKeyRenewed } from '../src/userdata/listen-key.js';
import { parseFuturesUserDataMessage, privateStreamUrl } from '../src/userdata/futures-stream.js';
import { installUserDataSimulator } from '../src/simulator/userdata/index.js';
import { startSimulator } from '../src/simulator/index.js';
import { createMetrics, type Metrics } from '../src/metrics/registry.js';
import { silentLogger } from '../src/log.js';
import { mockClock } from './helpers/clock.js';
import { until } from './helpers/stack.js';

const API_KEY = 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A';
/** A cron that never fires during a test: keepalives are driven by hand. */
const NEVER = '0 0 1 1 *';

async function setup(t: Test, opts: { listenKeyTtlMs?: number; apiKey?: string } = {}) {
  const host = await startSimulator({ venue: 'binance-usdm', eventsPerSecond: 0 });
  const sim = installUserDataSimulator(host, { listenKeyTtlMs: opts.listenKeyTtlMs, apiKeys: [{ apiKey: API_KEY, secret: 'x' }] });
  const metrics = createMetrics({ defaultMetrics: false });
  const rest = new RestClient({ baseUrl: host.httpUrl, logger: silentLogger(), metrics, apiKey: opts.apiKey ?? API_KEY, hosts: new RestHostRegistry(), timeoutMs: 2000 });
  const managers: ListenKeyManager[] = [];
  const manager = (o: Partial<ListenKeyManagerOptions> = {}): ListenKeyManager => {
    const m = new ListenKeyManager({ rest, path: '/fapi/v1/listenKey', keepaliveCron: NEVER, logger: silentLogger(), metrics, retry: { initialMs: 50, maxMs: 400 }, ...o });
    managers.push(m);
    return m;
  };
  t.teardown(async () => {
    for (const m of managers) await m.stop();
    sim.close();
    await rest.close();
    await host.close();
  });
  return { host, sim, metrics, rest, manager };
}

async function keepalives(m: Metrics, outcome: string): Promise<number> {
  return (await m.listenKeyKeepalives.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

async function value(g: Metrics['listenKeyAge'] | Metrics['listenKeyRenewals'] | Metrics['restPaused']): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

function nextRenewed(m: ListenKeyManager): Promise<ListenKeyRenewed> {
  return once(m, 'renewed').then(([e]) => e as ListenKeyRenewed);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The manager's keepalive task in node-cron's registry (gone once stop() destroyed it). */
const cronTasks = (): number => [...cron.getTasks().values()].filter((task) => task.name?.startsWith('listen-key-keepalive')).length;

t.test('start POSTs a key, a six-field cron keeps it alive every second, stop DELETEs it', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager({ keepaliveCron: '* * * * * *' });
  const key = await m.start();
  t.equal(m.current(), key);
  t.equal(m.state, 'active');
  t.same(sim.keys().map((k) => k.listenKey), [key]);
  t.equal(sim.counters.post, 1);
  t.equal(cronTasks(), 1, 'one keepalive task scheduled');
  // Three keepalives, awaited: the cron fires them a second apart, not all at once.
  const at: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [{ outcome }] = await once(m, 'keepalive');
    t.equal(outcome, 'ok');
    at.push(Date.now());
  }
  const span = at[2]! - at[0]!;
  t.ok(span >= 1500 && span <= 3500, `3 keepalives over ${span} ms: one a second`);
  const puts = sim.counters.put;
  t.equal(puts, 3, 'one PUT each');
  t.equal(await keepalives(metrics, 'ok'), puts);
  await m.stop();
  t.equal(sim.counters.delete, 1, 'DELETE on stop');
  t.same(sim.keys(), [], 'the key is gone at the exchange');
  t.equal(m.current(), null);
  t.equal(m.state, 'stopped');
  t.equal(cronTasks(), 0, 'no keepalive after stop: the cron task is destroyed');
  await m.keepalive();
  t.equal(sim.counters.put, puts, 'and a keepalive asked for by hand sends nothing');
});

t.test('a key the exchange expired: PUT gets -1125, a new key is POSTed at once, renewed is emitted', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager();
  const first = await m.start();
  t.ok(sim.expire(first));
  const renewed = nextRenewed(m);
  await m.keepalive();
  const e = await renewed;
  t.equal(e.reason, 'unknown_key');
  t.not(e.key, first);
  t.equal(e.previousKeyPrefix, `${first.slice(0, 4)}…`);
  t.equal(m.current(), e.key);
  t.same(sim.keys().map((k) => k.listenKey), [e.key]);
  t.equal(await keepalives(metrics, 'unknown_key'), 1);
  t.equal(await value(metrics.listenKeyRenewals), 1);
  await m.keepalive();
  t.equal(await keepalives(metrics, 'ok'), 1, 'the new key is kept alive');
});

t.test('a key expired by its TTL, seen on the private stream: listenKeyExpired → notifyExpired → renewed', async (t) => {
  const { host, sim, manager } = await setup(t, { listenKeyTtlMs: 600 });
  const m = manager();
  const key = await m.start();
  const ws = new WebSocket(privateStreamUrl(host.wsUrl, key, ['ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE']));
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  const frames: string[] = [];
  ws.on('message', (d) => frames.push(d.toString()));
  t.equal(sim.pushEvent({ e: 'ORDER_TRADE_UPDATE', E: 1, o: { s: 'BTCUSDT' } }), 1);
  t.equal(sim.pushEvent({ e: 'MARGIN_CALL', E: 2 }), 0, 'events not asked for are not sent');
  const renewed = nextRenewed(m);
  ws.on('message', (d) => {
    const msg = parseFuturesUserDataMessage(d.toString());
    if (msg.kind === 'expired') m.notifyExpired(msg.listenKey);
  });
  const [code] = await once(ws, 'close');
  t.equal(code, 1000, 'the exchange closes the stream after listenKeyExpired');
  const e = await renewed;
  t.equal(e.reason, 'expired');
  t.not(e.key, key);
  t.match(parseFuturesUserDataMessage(frames[0]!), { kind: 'event', stream: 'ORDER_TRADE_UPDATE' });
  t.match(parseFuturesUserDataMessage(frames[1]!), { kind: 'expired', listenKey: key });

  m.notifyExpired(key);
  await sleep(100);
  t.equal(m.current(), e.key, 'a late listenKeyExpired for the old key is ignored');

  const ws2 = new WebSocket(privateStreamUrl(host.wsUrl, e.key, ['ORDER_TRADE_UPDATE']));
  t.teardown(() => ws2.terminate());
  await once(ws2, 'open');
  t.equal(sim.privateStreams(e.key), 1, 'the new key opens a private stream');

  const ws3 = new WebSocket(privateStreamUrl(host.wsUrl, key, []));
  const [code3] = await once(ws3, 'close');
  t.equal(code3, 1008, 'an unknown key is refused');
});

t.test('a failed PUT is retried with backoff', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager();
  await m.start();
  sim.failRest(2, 503);
  const t0 = Date.now();
  await m.keepalive();
  t.equal(sim.counters.put, 3, 'two failures, then success');
  t.ok(Date.now() - t0 >= 140, 'waited 50 + 100 ms between tries');
  t.equal(await keepalives(metrics, 'error'), 2);
  t.equal(await keepalives(metrics, 'ok'), 1);
  t.equal(await value(metrics.listenKeyRenewals), 0, 'no renewal needed');
});

t.test('PUTs failing for as long as the key could live: renewal (keepalive_failed), itself retried', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager({ validityMs: 300, retry: { initialMs: 100, maxMs: 400 } });
  const key = await m.start();
  sim.failRest(3, 500); // PUT, PUT, then the first POST
  const renewed = nextRenewed(m);
  await m.keepalive();
  const e = await renewed;
  t.equal(e.reason, 'keepalive_failed');
  t.equal(e.key, key, 'the exchange still had the key, so POST returned it');
  t.equal(sim.counters.put, 2);
  t.equal(sim.counters.post, 3, 'start, failed renewal, renewal');
  t.equal(await keepalives(metrics, 'error'), 2);
});

t.test('429 on a keepalive: the REST client waits Retry-After and the keepalive succeeds', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager();
  await m.start();
  sim.rateLimitRest(1, 1);
  const t0 = Date.now();
  await m.keepalive();
  t.ok(Date.now() - t0 >= 900);
  t.equal(await keepalives(metrics, 'ok'), 1);
  t.equal(await keepalives(metrics, 'error'), 0);
});

t.test('stop during a retry cancels it; stop is idempotent', async (t) => {
  const { sim, manager } = await setup(t);
  const m = manager({ retry: { initialMs: 5000, maxMs: 5000 } });
  await m.start();
  sim.failRest(1, 500);
  const failed = once(m, 'keepalive');
  const k = m.keepalive();
  t.match(await failed, [{ outcome: 'error' }], 'the first PUT failed: the 5 s retry is pending');
  const t0 = Date.now();
  await m.stop();
  await k.catch(() => undefined);
  t.ok(Date.now() - t0 < 1000, 'did not wait for the 5 s retry');
  t.equal(sim.counters.delete, 1);
  await m.stop();
  t.equal(sim.counters.delete, 1);
  await t.rejects(m.renew('manual'), { code: 'FK_ERR_LISTEN_KEY' });
});

t.test('listenKeyAge follows the clock', async (t) => {
  const { metrics, manager } = await setup(t);
  // A Clock of @tapjs/clock's own, not the plugin's t.clock: t.clock's type exists only after tap
  // has generated its plugin types, and the build (tsc) runs before tap on a clean clone.
  const clock = new TapClock();
  const m = manager({ clock: mockClock(clock) });
  await m.start();
  t.equal(await value(metrics.listenKeyAge), 0);
  clock.advance(1000);
  t.equal(await value(metrics.listenKeyAge), 1, 'updated every second');
  clock.advance(1000);
  t.equal(await value(metrics.listenKeyAge), 2);
  await m.keepalive();
  t.equal(await value(metrics.listenKeyAge), 0, 'reset by a successful PUT');
});

t.test('start fails with the exchange error for an unknown API key; a bad cron is a config error', async (t) => {
  const { manager } = await setup(t, { apiKey: 'nope' });
  await t.rejects(manager().start(), { code: 'FK_ERR_REST', status: 401, binanceCode: -2015 });
  t.throws(() => manager({ keepaliveCron: 'every 30 minutes' }), { code: 'FK_ERR_CONFIG', key: 'userData.keepaliveCron' });
});

t.test('the COIN-M path works the same and holds its own key', async (t) => {
  const { sim, manager } = await setup(t);
  const usdm = manager();
  const coinm = manager({ path: '/dapi/v1/listenKey' });
  const a = await usdm.start();
  const b = await coinm.start();
  t.not(a, b);
  t.same(sim.keys().map((k) => k.path).sort(), ['/dapi/v1/listenKey', '/fapi/v1/listenKey']);
});


t.test('418 from the exchange: the keepalive waits out the ban (restPaused = 1) and succeeds', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager();
  await m.start();
  sim.banRest(1);
  const t0 = Date.now();
  const k = m.keepalive();
  t.ok(await until(async () => (await value(metrics.restPaused)) === 1, 1000), 'restPaused = 1 while the ban lasts');
  await k;
  t.ok(Date.now() - t0 >= 700, `waited ${Date.now() - t0} ms`);
  t.equal(await keepalives(metrics, 'ok'), 1);
  t.equal((await metrics.restPaused.get()).values[0]?.value, 0);
});

t.test('stop does not hang on a REST pause: the DELETE gives up after deleteTimeoutMs', async (t) => {
  const { sim, metrics, manager } = await setup(t);
  const m = manager();
  await m.start();
  sim.banRest(30);
  const k = m.keepalive(); // meets the 418: the host is now paused for 30 s, the PUT waits
  t.ok(await until(async () => (await value(metrics.restPaused)) === 1, 1000), 'the host is paused');
  const t0 = Date.now();
  await m.stop({ deleteTimeoutMs: 300 });
  await k.catch(() => undefined);
  t.ok(Date.now() - t0 < 1500, `stopped in ${Date.now() - t0} ms`);
  t.equal(m.state, 'stopped');
});
