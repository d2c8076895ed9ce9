import t from 'tap';
import { WebsocketClient } from 'binance';
import { Spot } from '@binance/spot';
import { ref, startRelay, tradeFrame, until, usdm, type Rig } from './relay-helpers.js';

// The third-party clients bots run, pointed at the relay instead of Binance (docs/relay.md,
// "Pointing a bot at it"): each subscribes to a trade stream through the relay and receives exactly
// the frames written, in order. Neither needs more than its base-URL option for plain ws://.

// @binance/common's logger (used by @binance/spot) reads LOG_LEVEL once; keep the test output quiet.
process.env.LOG_LEVEL ??= 'error';

const BTC = 'btcusdt@trade';
const N = 50;

/** Writes trades t = 1..N of `stream` through the relay. */
function feed(rig: Rig, stream: string, venue = ref(stream)): void {
  for (let i = 1; i <= N; i++) if (!rig.relay.write(tradeFrame(stream, i), Date.now(), venue)) throw new Error('write() said false');
}

const quiet = { trace: () => {}, info: () => {}, error: (...a: unknown[]) => console.error('binance:', ...a) };
const ids = (xs: unknown[]) => xs.map((x) => Number((x as { t: unknown }).t));
const oneToN = Array.from({ length: N }, (_, i) => i + 1);

t.test('binance (tiagosiebler) WebsocketClient with wsUrl: the relay', async (t) => {
  const rig = await startRelay(t);
  const client = new WebsocketClient({ wsUrl: rig.url, beautify: false }, quiet);
  t.teardown(() => client.closeAll(true));
  const got: unknown[] = [];
  const responses: unknown[] = [];
  client.on('message', (m) => got.push(m));
  client.on('response', (m) => responses.push(m));
  await client.subscribe([BTC], 'main'); // resolves once connected; the SUBSCRIBE reply comes as a 'response'
  t.ok(await until(() => responses.length > 0, 5000));
  t.match(responses, [{ result: null, id: Number, request: { method: 'SUBSCRIBE', params: [BTC] } }], 'its SUBSCRIBE got a Binance reply');
  const c = rig.relay.stats().perClient[0]!;
  t.match(c, { path: '/stream', combined: true, streams: [BTC] }, 'it dialled /stream and subscribed by SUBSCRIBE');
  feed(rig, BTC);
  t.ok(await until(() => got.length >= N, 5000), `${got.length} messages`);
  t.same(ids(got), oneToN, 'exactly the frames written, in order');
  t.match(got[0], { e: 'trade', s: 'BTCUSDT', streamName: BTC });
  await client.unsubscribe([BTC], 'main');
  t.ok(await until(() => rig.upstream.releases.includes(`binance-spot ${BTC}`)), 'its UNSUBSCRIBE released the stream');
});

t.test('binance WebsocketClient on USD-M: wsUrl <relay>/binance-usdm, wsKey usdmMarket', async (t) => {
  const rig = await startRelay(t, { venues: ['binance-spot', 'binance-usdm'] });
  const client = new WebsocketClient({ wsUrl: `${rig.url}/binance-usdm`, beautify: false }, quiet);
  t.teardown(() => client.closeAll(true));
  const got: unknown[] = [];
  client.on('message', (m) => got.push(m));
  await client.subscribe([BTC], 'usdmMarket');
  t.ok(await until(() => rig.relay.stats().perClient[0]?.streams.length === 1, 5000));
  t.match(rig.relay.stats().perClient[0], { venue: 'binance-usdm', path: '/binance-usdm/market/stream', streams: [BTC] });
  feed(rig, BTC); // spot's btcusdt@trade: not for this client
  feed(rig, BTC, ref(BTC, usdm));
  t.ok(await until(() => got.length >= N, 5000));
  await new Promise((r) => setTimeout(r, 50));
  t.same(ids(got), oneToN, "USD-M's frames only, in order");
});

t.test('@binance/spot websocket streams with configurationWebsocketStreams.wsURL: the relay', async (t) => {
  const rig = await startRelay(t);
  const spot = new Spot({ configurationWebsocketStreams: { wsURL: rig.url } });
  const connection = await spot.websocketStreams.connect();
  t.teardown(() => connection.disconnect());
  const got: unknown[] = [];
  const stream = connection.trade({ symbol: 'BTCUSDT' });
  stream.on('message', (m: unknown) => void got.push(m));
  // Its SUBSCRIBE is fire-and-forget: wait until the relay has it.
  t.ok(await until(() => rig.relay.stats().perClient[0]?.streams.includes(BTC) === true, 5000), 'subscribed through the relay');
  t.match(rig.relay.stats().perClient[0], { path: '/stream?streams=', combined: true });
  feed(rig, BTC);
  t.ok(await until(() => got.length >= N, 5000), `${got.length} messages`);
  t.same(ids(got), oneToN, 'exactly the frames written, in order');
  t.match(got[0], { e: 'trade', s: 'BTCUSDT' });
  stream.unsubscribe();
  t.ok(await until(() => rig.upstream.releases.includes(`binance-spot ${BTC}`)), 'its UNSUBSCRIBE released the stream');
});

t.test('both clients at once on one stream: one want(), each gets every frame', async (t) => {
  const rig = await startRelay(t);
  const a = new WebsocketClient({ wsUrl: rig.url, beautify: false }, quiet);
  t.teardown(() => a.closeAll(true));
  const spot = new Spot({ configurationWebsocketStreams: { wsURL: rig.url } });
  const connection = await spot.websocketStreams.connect();
  t.teardown(() => connection.disconnect());
  const gotA: unknown[] = [];
  const gotB: unknown[] = [];
  a.on('message', (m) => gotA.push(m));
  await a.subscribe([BTC], 'main');
  t.ok(await until(() => rig.relay.stats().streams.includes(`binance-spot ${BTC}`), 5000));
  connection.trade({ symbol: 'BTCUSDT' }).on('message', (m: unknown) => void gotB.push(m));
  t.ok(await until(() => rig.relay.stats().perClient.every((c) => c.streams.includes(BTC)), 5000));
  feed(rig, BTC);
  t.ok(await until(() => gotA.length >= N && gotB.length >= N, 5000));
  t.same(ids(gotA), oneToN);
  t.same(ids(gotB), oneToN);
  t.same(rig.upstream.wants, [`binance-spot ${BTC}`]);
});
