import t from 'tap';
import { installUserDataSimulator, type UserDataSim } from '../src/simulator/userdata/index.js';
import { startStack, readRecording, until, sleep, ledgerEntries } from './helpers/stack.js';

const API_KEY = 'fkTestApiKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';
const API_SECRET = 'fkTestSecret0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO';

t.test('USD-M: the listen key never lapses, an expired key is replaced within 5 s and logged as a gap, shutdown deletes it', async (t) => {
  let ud!: UserDataSim;
  const { daemon, config } = await startStack(t, {
    sim: { venue: 'binance-usdm', eventsPerSecond: 2 },
    beforeDaemon: (sim) => (ud = installUserDataSimulator(sim, { apiKeys: [{ apiKey: API_KEY }], listenKeyTtlMs: 9000 })),
    env: { FEEDKEEPER_API_KEY: API_KEY },
    config: {
      venue: 'binance-usdm',
      symbols: ['BTCUSDT'],
      streams: ['aggTrade'],
      userData: { enabled: true, keepaliveCron: '*/3 * * * * *' },
    },
  });
  t.teardown(() => ud.close());
  const user = () => daemon.userData!.worker;
  t.ok(await until(() => user().state === 'open', 5000), 'user-data connection open');
  const firstKey = ud.keys()[0]!.listenKey;

  // 20 s: more than two lifetimes of a 9 s key, kept alive by a PUT every 3 s.
  const started = Date.now();
  let pushed = 0;
  while (Date.now() - started < 20_000) {
    ud.pushEvent({ e: 'ORDER_TRADE_UPDATE', E: Date.now(), o: { i: ++pushed } });
    await sleep(1000);
  }
  t.equal(ud.keys().length, 1, 'one key');
  t.equal(ud.keys()[0]!.listenKey, firstKey, 'the same key after 20 s: it never lapsed');
  t.ok(ud.counters.put >= 5, `${ud.counters.put} keepalive PUTs`);
  t.same((await ledgerEntries(config)).filter((g) => g.stream === 'userData'), [], 'no user-data gap');

  // The exchange expires the key: listenKeyExpired, stream closed; the daemon renews and resumes.
  const expiredAt = Date.now();
  t.ok(ud.expire(firstKey), 'expired by the exchange');
  t.ok(
    await until(() => ud.keys().some((k) => k.listenKey !== firstKey) && user().state === 'open' && ud.privateStreams() > 0, 5000),
    'a new key and the stream back',
  );
  const resumedMs = Date.now() - expiredAt;
  t.ok(resumedMs < 5000, `resumed in ${resumedMs} ms`);
  ud.pushEvent({ e: 'ORDER_TRADE_UPDATE', E: Date.now(), o: { i: 999 } });
  await sleep(300);
  await daemon.ledger.flush();
  const gaps = (await ledgerEntries(config)).filter((g) => g.stream === 'userData');
  t.equal(gaps.length, 1, 'the interruption is in the ledger');
  t.equal(gaps[0]!.cause, 'listen_key_expired');
  t.not(gaps[0]!.end, null, 'and closed when the stream was back');

  await daemon.stop('test');
  t.equal(ud.counters.delete, 1, 'shutdown deleted the key');
  t.equal(ud.keys().length, 0);
  const events = readRecording(config.recorder.dir).filter((l) => l.stream === 'userData');
  const ids = events.map((e) => (e.data.o as { i: number }).i);
  t.ok(ids.includes(999), 'the event after the renewal was recorded');
  t.equal(new Set(ids).size, ids.length, 'no event twice');
  t.ok(ids.length >= pushed - 1, `${ids.length} of ${pushed + 1} events recorded`);
});

t.test('COIN-M: the listen key is kept under /dapi, events recorded, shutdown deletes it', async (t) => {
  let ud!: UserDataSim;
  const { daemon, config } = await startStack(t, {
    sim: { venue: 'binance-coinm', eventsPerSecond: 2 },
    beforeDaemon: (sim) => (ud = installUserDataSimulator(sim, { apiKeys: [{ apiKey: API_KEY }], listenKeyTtlMs: 60_000 })),
    env: { FEEDKEEPER_API_KEY: API_KEY },
    config: {
      venue: 'binance-coinm',
      symbols: ['BTCUSD_PERP'],
      streams: ['aggTrade'],
      userData: { enabled: true, keepaliveCron: '*/1 * * * * *' },
    },
  });
  t.teardown(() => ud.close());
  t.ok(await until(() => daemon.userData!.worker.state === 'open' && ud.privateStreams() > 0, 5000), 'user-data connection open');
  t.same(ud.keys().map((k) => k.path), ['/dapi/v1/listenKey'], 'the key is a COIN-M one (/fapi is USD-M)');
  t.ok(await until(() => ud.counters.put >= 1, 5000), 'kept alive with a PUT');
  t.equal(ud.pushEvent({ e: 'ORDER_TRADE_UPDATE', E: Date.now(), o: { i: 7 } }), 1, 'an event delivered');
  t.ok(await until(() => readRecording(config.recorder.dir).some((l) => l.stream === 'userData'), 5000, 50), 'and recorded');
  await daemon.stop('test');
  t.equal(ud.counters.delete, 1, 'shutdown deleted the key');
});

t.test('spot: account events through the WebSocket API, resubscribed after a drop and after eventStreamTerminated', async (t) => {
  let ud!: UserDataSim;
  const { sim, daemon, config } = await startStack(t, {
    sim: { eventsPerSecond: 2 },
    beforeDaemon: (sim) => (ud = installUserDataSimulator(sim, { apiKeys: [{ apiKey: API_KEY, secret: API_SECRET }] })),
    env: { FEEDKEEPER_API_KEY: API_KEY, FEEDKEEPER_API_SECRET: API_SECRET },
    config: { symbols: ['BTCUSDT'], streams: ['trade'], userData: { enabled: true } },
  });
  t.teardown(() => ud.close());
  const user = () => daemon.userData!.worker;
  t.ok(await until(() => user().state === 'open' && ud.spotSubscriptions() === 1, 5000), 'subscribed with a signed request');
  ud.pushSpotEvent({ e: 'executionReport', E: Date.now(), i: 1 });
  // A drop of every connection: the user-data connection comes back and subscribes again.
  sim.dropAll();
  t.ok(await until(() => user().state === 'open' && ud.spotSubscriptions() === 1 && ud.wsApiCounters.subscribed >= 2, 8000), 'resubscribed after the drop');
  ud.pushSpotEvent({ e: 'executionReport', E: Date.now(), i: 2 });
  // eventStreamTerminated: a gap, and a new subscription on the same connection.
  t.equal(ud.terminate(), 1, 'terminated');
  t.ok(await until(() => ud.wsApiCounters.subscribed >= 3 && ud.spotSubscriptions() === 1, 5000), 'subscribed again');
  ud.pushSpotEvent({ e: 'executionReport', E: Date.now(), i: 3 });
  await sleep(300);
  await daemon.stop('test');
  const ids = readRecording(config.recorder.dir)
    .filter((l) => l.stream === 'userData')
    .map((l) => l.data.i);
  t.same(ids, [1, 2, 3], 'every account event recorded once');
  const gaps = (await ledgerEntries(config)).filter((g) => g.stream === 'userData');
  t.same(gaps.map((g) => g.cause).sort(), ['server_close', 'shutdown', 'stream_terminated'].sort(), 'the drop, the termination and the shutdown are in the ledger');
});
