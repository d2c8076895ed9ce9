import t from 'tap';
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Sink } from '../src/pipeline/sinks.js';
import { AddressAllowList, parseRelayPath } from '../src/relay/paths.js';
import { RelayServer } from '../src/relay/server.js';
import { RelayRefusal } from '../src/relay/types.js';
import { LiveStreamRefusal } from '../src/live-streams.js';
import { createLogger, silentLogger } from '../src/log.js';
import { FakeUpstream, open, rawOf, ref, refusal, startRelay, tradeFrame, until, usdm, type Rig, type TestClient } from './relay-helpers.js';

// The Binance-compatible relay (src/relay/, docs/relay.md) on real sockets: URL shapes, control
// messages, upstream want/release, gap notices, and every way a client can misbehave.

const BTC = 'btcusdt@trade';
const ETH = 'ethusdt@trade';

/** Writes trades t = from..to of `stream` and returns the frames. */
function feed(rig: Rig, stream: string, from: number, to: number, venue = ref(stream)): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = from; i <= to; i++) {
    const f = tradeFrame(stream, i);
    frames.push(f);
    if (!rig.relay.write(f, Date.now(), venue)) throw new Error('write() said false');
  }
  return frames;
}

async function metric(rig: Rig, name: string): Promise<string> {
  return rig.registry.getSingleMetricAsString(name);
}

t.test('the relay is a daemon Sink', async (t) => {
  const rig = await startRelay(t);
  const sink: Sink = rig.relay;
  t.equal(sink.name, 'relay');
  t.equal(sink.healthy(), true);
});

t.test('URL shapes: raw gets the bare event, combined the envelope, byte for byte', async (t) => {
  const rig = await startRelay(t);
  const raw = await open(`${rig.url}/ws/${BTC}`);
  const rawTwo = await open(`${rig.url}/ws/${BTC}/${ETH}`);
  const comb = await open(`${rig.url}/stream?streams=${BTC}/${ETH}`);
  const combSlash = await open(`${rig.url}/stream/?streams=${ETH}`);
  const btc = feed(rig, BTC, 1, 3);
  const eth = feed(rig, ETH, 10, 11);
  for (const f of btc) t.equal(await raw.next(), rawOf(f).toString(), 'raw: the bytes of data');
  t.same(raw.messages.map((m) => m.binary), [false, false, false], 'text frames, as Binance');
  for (const f of btc) t.equal(await rawTwo.next(), rawOf(f).toString());
  for (const f of eth) t.equal(await rawTwo.next(), rawOf(f).toString(), 'raw with two streams');
  for (const f of [...btc, ...eth]) t.ok(Buffer.from(await comb.next()).equals(f), 'combined: the frame as written');
  for (const f of eth) t.equal(await combSlash.next(), f.toString(), 'a trailing slash is the same endpoint');
  t.same(rig.upstream.wants.sort(), [`binance-spot ${BTC}`, `binance-spot ${ETH}`], 'want() once per stream');
  t.equal(raw.messages.length, 3, 'no frame of a stream it did not ask for');
});

t.test('/ws/0 and /ws: a connection without streams, subscribed by SUBSCRIBE', async (t) => {
  const rig = await startRelay(t);
  for (const path of ['/ws/0', '/ws', '/ws/', '/ws/placeholder']) {
    const c = await open(`${rig.url}${path}`);
    t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 1 }), { result: [], id: 1 }, `${path}: no streams`);
    t.same(await c.ask({ method: 'SUBSCRIBE', params: [BTC], id: 2 }), { result: null, id: 2 });
    const [f] = feed(rig, BTC, 1, 1);
    t.equal(await c.next(), rawOf(f!).toString(), `${path}: raw`);
    c.close();
    await c.closed;
  }
  // One segment with an `@` means a stream: a typo is refused, not silently accepted.
  const r = await refusal(`${rig.url}/ws/btcusdt@nonsense`);
  t.equal(r.status, 400);
});

t.test('empty ?streams= is a combined connection without streams', async (t) => {
  const rig = await startRelay(t);
  for (const path of ['/stream?streams=', '/stream']) {
    const c = await open(`${rig.url}${path}`);
    t.same(await c.ask({ method: 'SUBSCRIBE', params: [ETH], id: 'a' }), { result: null, id: 'a' });
    const [f] = feed(rig, ETH, 5, 5);
    t.equal(await c.next(), f!.toString(), `${path}: combined`);
    c.close();
  }
});

t.test('venues: under /<venue>/, the first also at the root; USD-M /market and /public', async (t) => {
  const rig = await startRelay(t, { venues: ['binance-spot', 'binance-usdm'] });
  const AGG = 'btcusdt@aggTrade';
  const root = await open(`${rig.url}/stream?streams=${BTC}`);
  const spotPrefixed = await open(`${rig.url}/binance-spot/ws/${BTC}`);
  const market = await open(`${rig.url}/binance-usdm/market/stream?streams=${BTC}`);
  const publicRaw = await open(`${rig.url}/binance-usdm/public/ws/${BTC}`);
  const usdmPlain = await open(`${rig.url}/binance-usdm/stream?streams=${AGG}`);
  const s = feed(rig, BTC, 1, 1);
  const u = feed(rig, BTC, 100, 101, ref(BTC, usdm));
  const agg = Buffer.from(`{"stream":"${AGG}","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":7,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true}}`);
  rig.relay.write(agg, 0, ref(AGG, usdm));
  t.equal(await root.next(), s[0]!.toString(), 'the root is binance-spot');
  t.equal(await spotPrefixed.next(), rawOf(s[0]!).toString());
  for (const f of u) t.equal(await market.next(), f.toString(), 'usdm /market/stream');
  for (const f of u) t.equal(await publicRaw.next(), rawOf(f).toString(), 'usdm /public/ws');
  t.equal(await usdmPlain.next(), agg.toString(), 'usdm /stream');
  t.equal(root.messages.length, 1, "the spot client never gets USD-M's btcusdt@trade");
  t.same(rig.upstream.wants.sort(), [`binance-spot ${BTC}`, `binance-usdm ${AGG}`, `binance-usdm ${BTC}`]);
  t.equal((await refusal(`${rig.url}/binance-coinm/ws`)).status, 404, 'a venue the daemon does not carry');
  t.equal((await refusal(`${rig.url}/binance-spot/market/ws`)).status, 404, '/market is USD-M only');

  const usdmFirst = await startRelay(t, { venues: ['binance-usdm'] });
  const c = await open(`${usdmFirst.url}/public/stream?streams=${BTC}`);
  const [f] = feed(usdmFirst, BTC, 1, 1, ref(BTC, usdm));
  t.equal(await c.next(), f!.toString(), 'the root of a USD-M-first relay takes /public too');
});

t.test('refusals before the upgrade: 404, 400 with Binance bodies', async (t) => {
  const rig = await startRelay(t);
  for (const path of ['/', '/nope', '/ws-api/v3', '/streams?streams=x', '/binance-spot', '/wsx/btcusdt@trade']) {
    const r = await refusal(`${rig.url}${path}`);
    t.equal(r.status, 404, `${path}: 404`);
    t.match(JSON.parse(r.body), { code: -1, msg: /No WebSocket endpoint/ });
  }
  const bad = await refusal(`${rig.url}/stream?streams=${BTC}/btcusdt@nonsense`);
  t.equal(bad.status, 400);
  t.same(JSON.parse(bad.body), { code: -1100, msg: 'Invalid stream name: btcusdt@nonsense' });
  t.equal((await refusal(`${rig.url}/ws/${BTC}/BTCUSDT@trade`)).status, 400, 'upper-case symbols are not stream names');
  t.equal((await refusal(`${rig.url}/ws/${BTC}/%E0%A4%A`)).status, 400, 'undecodable');
  const micro = await refusal(`${rig.url}/stream?streams=${BTC}&timeUnit=MICROSECOND`);
  t.equal(micro.status, 400, 'µs event times would be false: refused');
  t.match(JSON.parse(micro.body), { code: -1100, msg: /timeUnit/ });
  const milli = await open(`${rig.url}/stream?streams=${BTC}&timeUnit=millisecond`);
  milli.close();
  t.same(rig.upstream.wants, [`binance-spot ${BTC}`], 'nothing wanted for a refused URL');
  // A plain HTTP request is no upgrade.
  const res = await fetch(`${rig.url.replace('ws:', 'http:')}/ws`);
  t.equal(res.status, 426);
  t.equal((await fetch(`${rig.url.replace('ws:', 'http:')}/x`)).status, 404);
  t.match(await metric(rig, 'feedkeeper_relay_refused_total'), /reason="not_found"\} [1-9]/);
  t.ok(rig.logs.some((l) => l.event === 'relay_refused' && l.level === 'info'), 'relay_refused logged');
});

t.test('control messages: replies, ids and error codes 0-3', async (t) => {
  const rig = await startRelay(t);
  const c = await open(`${rig.url}/ws`);
  t.same(await c.ask({ method: 'SUBSCRIBE', params: [BTC, ETH, BTC], id: 1 }), { result: null, id: 1 });
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 'list-1' }), { result: [BTC, ETH], id: 'list-1' });
  t.same(await c.ask({ method: 'UNSUBSCRIBE', params: [ETH], id: null }), { result: null, id: null });
  t.same(await c.ask({ method: 'UNSUBSCRIBE', params: ['solusdt@trade'], id: 3 }), { result: null, id: 3 }, 'not subscribed: still a result');
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 4 }), { result: [BTC], id: 4 });
  t.same(await c.ask({ method: 'GET_PROPERTY', params: ['combined'], id: 5 }), { result: false, id: 5 });
  t.same(await c.ask({ method: 'SET_PROPERTY', params: ['combined', true], id: 6 }), { result: null, id: 6 });
  t.same(await c.ask({ method: 'GET_PROPERTY', params: ['combined'], id: 7 }), { result: true, id: 7 });
  const [f] = feed(rig, BTC, 1, 1);
  t.equal(await c.next(), f!.toString(), 'combined: true switches a raw connection to envelopes');
  t.same(await c.ask({ method: 'SET_PROPERTY', params: ['combined', false], id: 8 }), { result: null, id: 8 });
  const [g] = feed(rig, BTC, 2, 2);
  t.equal(await c.next(), rawOf(g!).toString(), 'and back');
  t.same(await c.ask({ method: 'GET_PROPERTY', params: ['gaps'], id: 9 }), { result: false, id: 9 });
  t.same(await c.ask({ method: 'SET_PROPERTY', params: ['gaps', true], id: 10 }), { result: null, id: 10 });
  t.same(await c.ask({ method: 'GET_PROPERTY', params: ['gaps'], id: 11 }), { result: true, id: 11 });
  const big = 2 ** 53 - 1;
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: big }), { result: [BTC], id: big }, 'large integer id');
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: -5 }), { result: [BTC], id: -5 }, 'negative id');
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 'x'.repeat(36) }), { result: [BTC], id: 'x'.repeat(36) }, '36-character id');

  const err = (code: number, msg: RegExp | string, id: unknown) => ({ error: { code, msg }, id });
  const cases: Array<[unknown, ReturnType<typeof err>]> = [
    [{ method: 'SET_PROPERTY', params: ['nope', true], id: 20 }, err(0, 'Unknown property', 20)],
    [{ method: 'GET_PROPERTY', params: ['nope'], id: 21 }, err(0, 'Unknown property', 21)],
    [{ method: 'SET_PROPERTY', params: ['combined', 'yes'], id: 22 }, err(1, 'Invalid value type: expected Boolean', 22)],
    [{ method: 'SET_PROPERTY', params: ['gaps', 1], id: 23 }, err(1, 'Invalid value type: expected Boolean', 23)],
    [{ method: 'SET_PROPERTY', params: ['combined'], id: 24 }, err(2, 'Invalid request: missing parameters', 24)],
    [{ method: 'GET_PROPERTY', params: ['combined', true], id: 25 }, err(2, 'Invalid request: too many parameters', 25)],
    [{ method: 'GET_PROPERTY', params: [1], id: 26 }, err(2, 'Invalid request: property name must be a string', 26)],
    [{ method: 'SUBSCRIBE', params: ['btcusdt@nonsense'], id: 27 }, err(2, 'Invalid request: unknown stream `btcusdt@nonsense`', 27)],
    [{ method: 'SUBSCRIBE', params: 'btcusdt@trade', id: 28 }, err(2, 'Invalid request: params must be an array of stream names', 28)],
    [{ method: 'SUBSCRIBE', params: [1], id: 29 }, err(2, 'Invalid request: params must be an array of stream names', 29)],
    [{ method: 'SUBSCRIBE', id: 30 }, err(2, 'Invalid request: missing field `params`', 30)],
    [{ method: 'UNSUBSCRIBE', params: ['nope'], id: 31 }, err(2, 'Invalid request: unknown stream `nope`', 31)],
    [{ method: 'PING', id: 32 }, err(2, /^Invalid request: unknown variant `PING`, expected one of `SUBSCRIBE`/, 32)],
    [{ params: [], id: 33 }, err(2, 'Invalid request: missing field `method`', 33)],
    [{ method: 'LIST_SUBSCRIPTIONS' }, err(2, /request ID must be/, null)],
    [{ method: 'LIST_SUBSCRIPTIONS', id: 1.5 }, err(2, /request ID must be/, null)],
    [{ method: 'LIST_SUBSCRIPTIONS', id: 'x'.repeat(37) }, err(2, /request ID must be/, null)],
    [{ method: 'LIST_SUBSCRIPTIONS', id: { a: 1 } }, err(2, /request ID must be/, null)],
    [{ method: 'LIST_SUBSCRIPTIONS', id: true }, err(2, /request ID must be/, null)],
    [{ method: 'LIST_SUBSCRIPTIONS', id: 2 ** 64 }, err(2, /request ID must be/, null)],
    [[1, 2], err(2, 'Invalid request: expected a JSON object', null)],
    ['"SUBSCRIBE"', err(2, 'Invalid request: expected a JSON object', null)],
    ['{"method":', err(3, /^Invalid JSON: /, null)],
    ['not json at all', err(3, /^Invalid JSON: /, null)],
    ['', err(3, /^Invalid JSON: /, null)],
  ];
  for (const [req, want] of cases) t.match(await c.ask(req), want, `${typeof req === 'string' ? req : JSON.stringify(req)}`);
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 99 }), { result: [BTC], id: 99 }, 'errors changed nothing');
  t.match(await metric(rig, 'feedkeeper_relay_control_requests_total'), /method="SUBSCRIBE",outcome="ok"\} 1\n/);
  t.match(await metric(rig, 'feedkeeper_relay_control_requests_total'), /method="invalid",outcome="error"\} [1-9]/);
});

t.test('want() once per stream across clients; release() after the last one leaves', async (t) => {
  const rig = await startRelay(t);
  rig.upstream.delayMs = 30;
  const a = await open(`${rig.url}/stream?streams=${BTC}`);
  const b = await open(`${rig.url}/ws`);
  const c = await open(`${rig.url}/ws/${BTC}`);
  t.same(await b.ask({ method: 'SUBSCRIBE', params: [BTC, ETH], id: 1 }), { result: null, id: 1 });
  t.same(rig.upstream.wants, [`binance-spot ${BTC}`, `binance-spot ${ETH}`], 'once each, whoever asked');
  // Two clients asking at once for a stream nobody has: one want().
  const d = await open(`${rig.url}/ws`);
  const e = await open(`${rig.url}/ws`);
  d.send({ method: 'SUBSCRIBE', params: ['solusdt@trade'], id: 1 });
  e.send({ method: 'SUBSCRIBE', params: ['solusdt@trade'], id: 1 });
  t.same(await d.nextJson(), { result: null, id: 1 });
  t.same(await e.nextJson(), { result: null, id: 1 });
  t.equal(rig.upstream.wants.filter((w) => w.endsWith('solusdt@trade')).length, 1, 'concurrent asks share one want()');

  t.same(await b.ask({ method: 'UNSUBSCRIBE', params: [ETH], id: 2 }), { result: null, id: 2 });
  t.same(rig.upstream.releases, [`binance-spot ${ETH}`], 'ETH released: its only client left');
  a.close();
  await a.closed;
  t.same(await b.ask({ method: 'UNSUBSCRIBE', params: [BTC], id: 3 }), { result: null, id: 3 });
  t.same(rig.upstream.releases, [`binance-spot ${ETH}`], 'BTC still held by c');
  c.ws.terminate();
  t.ok(await until(() => rig.upstream.releases.includes(`binance-spot ${BTC}`)), 'released when the last holder disconnects');
  d.close();
  e.close();
  t.ok(await until(() => rig.upstream.releases.includes('binance-spot solusdt@trade')));
  t.equal(rig.upstream.releases.length, 3, 'each once');
  // Wanted again after its release: a new want().
  t.same(await b.ask({ method: 'SUBSCRIBE', params: [ETH], id: 4 }), { result: null, id: 4 });
  t.equal(rig.upstream.wants.filter((w) => w.endsWith(ETH)).length, 2);
});

t.test('a refusal upstream: a Binance-shaped error and nothing of the request subscribed', async (t) => {
  const rig = await startRelay(t);
  rig.upstream.behaviour.set(`binance-spot ${ETH}`, new RelayRefusal(2, `Invalid request: ${ETH} is over relay.maxExtraStreams`));
  // The daemon's own refusal class has the same shape and is read the same way.
  rig.upstream.behaviour.set('binance-spot xrpusdt@trade', new LiveStreamRefusal(2, 'Invalid request: no room'));
  rig.upstream.behaviour.set('binance-spot adausdt@trade', new Error('socket hang up'));
  const c = await open(`${rig.url}/ws`);
  t.same(await c.ask({ method: 'SUBSCRIBE', params: [BTC, ETH], id: 7 }), { error: { code: 2, msg: `Invalid request: ${ETH} is over relay.maxExtraStreams` }, id: 7 });
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 8 }), { result: [], id: 8 }, 'BTC was not subscribed either');
  t.same(rig.upstream.releases, [`binance-spot ${BTC}`], 'the stream wanted for the failed request is released; the refused one is not');
  t.same(await c.ask({ method: 'SUBSCRIBE', params: ['xrpusdt@trade'], id: 9 }), { error: { code: 2, msg: 'Invalid request: no room' }, id: 9 });
  t.match(await c.ask({ method: 'SUBSCRIBE', params: ['adausdt@trade'], id: 10 }), { error: { code: 2, msg: /adausdt@trade could not be subscribed: socket hang up/ }, id: 10 });
  feed(rig, BTC, 1, 2);
  t.same(await c.ask({ method: 'SUBSCRIBE', params: [BTC], id: 11 }), { result: null, id: 11 }, 'nothing of BTC arrived before');
  t.equal(rig.upstream.wants.filter((w) => w.endsWith(ETH)).length, 1);
  t.same(await c.ask({ method: 'SUBSCRIBE', params: [ETH], id: 12 }), { error: { code: 2, msg: `Invalid request: ${ETH} is over relay.maxExtraStreams` }, id: 12 });
  t.equal(rig.upstream.wants.filter((w) => w.endsWith(ETH)).length, 2, 'a refused stream is asked again next time');
  t.match(await metric(rig, 'feedkeeper_relay_control_requests_total'), /method="SUBSCRIBE",outcome="refused"\} 4/);
  t.match(rig.logs.find((l) => l.event === 'relay_subscribe_refused'), { level: 'info', streams: [BTC, ETH], stream: ETH, code: 2 });
  t.match(rig.logs.find((l) => l.event === 'relay_upstream_error'), { level: 'warn', stream: 'adausdt@trade', err: { message: 'socket hang up' } }, 'an unexpected failure is no refusal');
  // In the URL: refused before the upgrade, with the same body.
  const r = await refusal(`${rig.url}/stream?streams=${BTC}/${ETH}`);
  t.equal(r.status, 503);
  t.same(JSON.parse(r.body), { code: 2, msg: `Invalid request: ${ETH} is over relay.maxExtraStreams` });
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 13 }), { result: [BTC], id: 13 });
});

t.test('control messages are answered in order, a slow SUBSCRIBE included', async (t) => {
  const rig = await startRelay(t);
  let go!: () => void;
  rig.upstream.behaviour.set(`binance-spot ${ETH}`, new Promise<void>((r) => (go = r)));
  const c = await open(`${rig.url}/ws`);
  c.send({ method: 'SUBSCRIBE', params: [ETH], id: 1 });
  c.send({ method: 'LIST_SUBSCRIPTIONS', id: 2 });
  c.send({ method: 'UNSUBSCRIBE', params: [ETH], id: 3 });
  await new Promise((r) => setTimeout(r, 50));
  t.equal(c.messages.length, 0, 'nothing answered while the SUBSCRIBE waits upstream');
  go();
  t.same(await c.nextJson(), { result: null, id: 1 });
  t.same(await c.nextJson(), { result: [ETH], id: 2 });
  t.same(await c.nextJson(), { result: null, id: 3 });
  t.same(rig.upstream.releases, [`binance-spot ${ETH}`]);
});

t.test('a client that leaves while its SUBSCRIBE waits: the stream is released once it is delivered', async (t) => {
  const rig = await startRelay(t);
  let go!: () => void;
  rig.upstream.behaviour.set(`binance-spot ${ETH}`, new Promise<void>((r) => (go = r)));
  const c = await open(`${rig.url}/ws`);
  c.send({ method: 'SUBSCRIBE', params: [ETH], id: 1 });
  await until(() => rig.upstream.wants.length === 1);
  c.ws.terminate();
  await c.closed;
  await new Promise((r) => setTimeout(r, 20));
  t.same(rig.upstream.releases, []);
  go();
  t.ok(await until(() => rig.upstream.releases.length === 1), 'released after want() settled');
  t.same(rig.relay.stats().streams, []);
});

t.test('gap notices go only to subscribers that opted in', async (t) => {
  const rig = await startRelay(t, { venues: ['binance-spot', 'binance-usdm'] });
  const optedIn = await open(`${rig.url}/stream?streams=${BTC}`);
  const raw = await open(`${rig.url}/ws/${BTC}`);
  const notOpted = await open(`${rig.url}/stream?streams=${BTC}`);
  const other = await open(`${rig.url}/stream?streams=${ETH}`);
  const usdmClient = await open(`${rig.url}/binance-usdm/stream?streams=${BTC}`);
  for (const c of [optedIn, raw, other, usdmClient]) t.same(await c.ask({ method: 'SET_PROPERTY', params: ['gaps', true], id: 1 }), { result: null, id: 1 });
  const before = (c: TestClient) => c.messages.length;
  const [otherBefore, usdmBefore] = [before(other), before(usdmClient)];
  const entry = { id: '20260709T070000.123Z-000001', venue: 'binance-spot', stream: BTC, connection: 'c0', start: 1, end: null, durationMs: null, cause: 'server_close', code: 1001, detail: null, maintenance: null, missed: null };
  const line = JSON.stringify(entry);
  rig.relay.gap(entry, line);
  const want = `{"stream":"!gap","data":${line}}`;
  t.equal(await optedIn.next(), want, 'combined subscriber that opted in');
  t.equal(await raw.next(), want, 'raw subscriber that opted in: the same envelope');
  rig.relay.gap({ ...entry, venue: null }, line);
  t.equal(await optedIn.next(), want, 'an entry without a venue is the first venue');
  const [f] = feed(rig, BTC, 1, 1);
  t.equal(await optedIn.next(), f!.toString());
  t.equal(await notOpted.next(), f!.toString(), 'not opted in: data only');
  t.equal(notOpted.messages.length, 1);
  t.equal(other.messages.length, otherBefore, 'another stream: nothing');
  t.equal(usdmClient.messages.length, usdmBefore, "the other venue's btcusdt@trade: nothing");
  t.match(await metric(rig, 'feedkeeper_relay_gap_notices_total'), /feedkeeper_relay_gap_notices_total 4/);
});

t.test('a client that stops reading is dropped with 1008 within its bound; the others get everything', async (t) => {
  const LIMIT = 256 * 1024;
  const rig = await startRelay(t, { clientBufferBytes: LIMIT });
  const slow = await open(`${rig.url}/stream?streams=${BTC}`);
  const good = await open(`${rig.url}/ws/${BTC}`);
  const good2 = await open(`${rig.url}/stream?streams=${BTC}`);
  (slow.ws as unknown as { _socket: Socket })._socket.pause();
  let written = 0;
  let falses = 0;
  let maxSeen = 0;
  const stat = () => rig.relay.stats().perClient.find((c) => c.id === 1);
  for (let batch = 0; batch < 2000 && stat()?.state === 'open'; batch++) {
    for (let i = 0; i < 50; i++) {
      written++;
      if (!rig.relay.write(tradeFrame(BTC, written, 2000), 0, ref(BTC))) falses++;
    }
    maxSeen = Math.max(maxSeen, stat()?.bufferedBytes ?? 0);
    await new Promise((r) => setImmediate(r));
  }
  t.not(stat()?.state ?? 'closed', 'open', `dropped after ${written} messages`);
  t.equal(falses, 0, 'write() never said false for a slow client');
  t.ok(maxSeen <= LIMIT, `its buffer stayed within the bound (${maxSeen} ≤ ${LIMIT})`);
  const after = written;
  for (let i = 0; i < 10; i++) rig.relay.write(tradeFrame(BTC, ++written, 2000), 0, ref(BTC));
  t.ok(await until(() => good.messages.length === written && good2.messages.length === written, 10_000), `the others got all ${written}`);
  const ids = good.messages.map((m) => (JSON.parse(m.data.toString()) as { t: number }).t);
  t.same(ids, Array.from({ length: written }, (_, i) => i + 1), 'in order, once each');
  (slow.ws as unknown as { _socket: Socket })._socket.resume();
  const closed = await slow.closed;
  t.equal(closed.code, 1008);
  t.equal(closed.reason, `send buffer over ${LIMIT} bytes: reading too slowly`);
  t.ok(slow.messages.length < after, `the slow client got ${slow.messages.length} of ${after}`);
  const dropped = rig.logs.filter((l) => l.event === 'relay_client_dropped');
  t.equal(dropped.length, 1, 'logged once');
  t.match(dropped[0], { level: 'warn', reason: 'slow', client: 1 });
  t.match(await metric(rig, 'feedkeeper_relay_clients_dropped_total'), /reason="slow"\} 1\n/);
  t.match(await metric(rig, 'feedkeeper_relay_messages_sent_total'), /feedkeeper_relay_messages_sent_total [1-9]/);
});

t.test('over messagesPerSecond: closed with 1008 "too many requests", as Binance', async (t) => {
  const rig = await startRelay(t, { messagesPerSecond: 5 });
  const c = await open(`${rig.url}/ws`);
  const bystander = await open(`${rig.url}/ws/${BTC}`);
  for (let i = 0; i < 10; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i });
  const closed = await c.closed;
  t.same(closed, { code: 1008, reason: 'too many requests' });
  t.equal(c.messages.length, 5, 'the first five were answered');
  const [f] = feed(rig, BTC, 1, 1);
  t.equal(await bystander.next(), rawOf(f!).toString(), 'another client is not affected');
  t.match(await metric(rig, 'feedkeeper_relay_clients_dropped_total'), /reason="rate_limited"\} 1\n/);
  // Pings count too (Binance: pings, pongs and control messages).
  const p = await open(`${rig.url}/ws`);
  for (let i = 0; i < 8; i++) p.ws.ping();
  t.equal((await p.closed).code, 1008);
});

t.test('a message over maxPayloadBytes: closed with 1009', async (t) => {
  const rig = await startRelay(t, { maxPayloadBytes: 1024 });
  const c = await open(`${rig.url}/ws`);
  const bystander = await open(`${rig.url}/ws/${BTC}`);
  c.send({ method: 'SUBSCRIBE', params: Array.from({ length: 100 }, (_, i) => `s${i}usdt@trade`), id: 1 });
  t.equal((await c.closed).code, 1009);
  const [f] = feed(rig, BTC, 1, 1);
  t.equal(await bystander.next(), rawOf(f!).toString());
  t.match(await metric(rig, 'feedkeeper_relay_clients_dropped_total'), /reason="payload_too_large"\} 1\n/);
});

t.test('more than maxClients: HTTP 503 with Retry-After; room again once one leaves', async (t) => {
  const rig = await startRelay(t, { maxClients: 2 });
  const a = await open(`${rig.url}/ws`);
  await open(`${rig.url}/ws`);
  const r = await refusal(`${rig.url}/ws`);
  t.equal(r.status, 503);
  t.equal(r.headers['retry-after'], '1');
  t.match(JSON.parse(r.body), { code: -1, msg: /at most 2/ });
  t.match(await metric(rig, 'feedkeeper_relay_refused_total'), /reason="max_clients"\} 1\n/);
  a.close();
  await a.closed;
  t.ok(await until(() => rig.relay.stats().clients === 1));
  const c = await open(`${rig.url}/ws`);
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 1 }), { result: [], id: 1 });
});

t.test('a client that does not answer pings is terminated; one that does stays', async (t) => {
  const rig = await startRelay(t, { pingIntervalMs: 100, pongTimeoutMs: 300 });
  const mute = await open(`${rig.url}/ws`, { autoPong: false });
  const alive = await open(`${rig.url}/ws`);
  const at = Date.now();
  const closed = await mute.closed;
  t.equal(closed.code, 1006, 'terminated: no close frame');
  t.ok(Date.now() - at >= 300, `after the pong timeout (${Date.now() - at} ms)`);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(alive.ws.readyState, alive.ws.OPEN, 'the client that pongs is still connected');
  t.match(await metric(rig, 'feedkeeper_relay_clients_dropped_total'), /reason="pong_timeout"\} 1\n/);
  // Client pings are answered.
  const pong = new Promise<void>((r) => alive.ws.once('pong', () => r()));
  alive.ws.ping('hi');
  await pong;
});

t.test('a socket that never sends its upgrade request is closed after handshakeTimeoutMs', async (t) => {
  const rig = await startRelay(t, { handshakeTimeoutMs: 300 });
  const port = Number(new URL(rig.url).port);
  const idle = connect(port, '127.0.0.1');
  const partial = connect(port, '127.0.0.1', () => partial.write('GET /ws HTTP/1.1\r\nHost: x\r\n'));
  const answers: string[] = [];
  const ended = (s: Socket) =>
    new Promise<number>((r) => {
      s.on('data', (d: Buffer) => answers.push(d.toString().split('\r\n')[0]!)); // read, or the FIN is never seen
      s.once('close', () => r(Date.now()));
    });
  const at = Date.now();
  const [a, b] = await Promise.all([ended(idle), ended(partial)]);
  t.ok(a - at < 3000 && b - at < 3000, `both closed (${a - at} ms, ${b - at} ms)`);
  t.same(answers, ['HTTP/1.1 408 Request Timeout', 'HTTP/1.1 408 Request Timeout']);
  const c = await open(`${rig.url}/ws`);
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 1 }), { result: [], id: 1 }, 'the server goes on');
});

t.test('who may connect: loopback and relay.allow; anyone else gets 403', async (t) => {
  const list = new AddressAllowList(['10.0.0.0/8', '192.168.1.20', 'fd00::/8']);
  for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '10.1.2.3', '::ffff:10.1.2.3', '192.168.1.20', 'fd12::1']) t.ok(list.allows(a), `${a} allowed`);
  for (const a of ['192.168.1.21', '11.0.0.1', '::2', 'fe80::1', '', 'nonsense', undefined]) t.notOk(list.allows(a), `${String(a)} refused`);
  t.throws(() => new AddressAllowList(['10.0.0.0/33']));
  t.throws(() => new AddressAllowList(['nope']));

  // A real connection from a non-loopback address of this host, if it has one.
  const own = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
  if (own === undefined) {
    t.comment('no non-loopback IPv4 address on this host: the socket half is skipped');
    return;
  }
  const rig = await startRelay(t, { host: '0.0.0.0' });
  const port = new URL(rig.url).port;
  const r = await refusal(`ws://${own.address}:${port}/ws`);
  t.equal(r.status, 403);
  t.match(JSON.parse(r.body), { code: -1, msg: /not allowed/ });
  t.match(await metric(rig, 'feedkeeper_relay_refused_total'), /reason="not_allowed"\} 1\n/);
  const allowed = await startRelay(t, { host: '0.0.0.0', allow: [`${own.address}/32`] });
  const c = await open(`ws://${own.address}:${new URL(allowed.url).port}/ws`);
  t.same(await c.ask({ method: 'LIST_SUBSCRIPTIONS', id: 1 }), { result: [], id: 1 }, 'allowed by relay.allow');
});

t.test('a bug while serving one client closes that client (1011); the others go on', async (t) => {
  const rig = await startRelay(t);
  const victim = await open(`${rig.url}/ws/${BTC}`);
  const other = await open(`${rig.url}/ws/${BTC}`);
  const control = (rig.relay as unknown as { control: (...a: unknown[]) => unknown }).control;
  Object.assign(rig.relay, { control: () => { throw new Error('boom'); } });
  victim.send({ method: 'LIST_SUBSCRIPTIONS', id: 1 });
  t.same(await victim.closed, { code: 1011, reason: 'internal error' });
  Object.assign(rig.relay, { control });
  t.same(await other.ask({ method: 'LIST_SUBSCRIPTIONS', id: 2 }), { result: [BTC], id: 2 });
  t.match(rig.logs.find((l) => l.event === 'relay_internal_error'), { level: 'error', err: { message: 'boom' } });
  t.match(await metric(rig, 'feedkeeper_relay_clients_dropped_total'), /reason="internal_error"\} 1$/m);
});

t.test('a port already taken: listen() rejects with a config error naming relay.port, relay_server_error is logged', async (t) => {
  const rig = await startRelay(t);
  const logs: Array<{ event?: string }> = [];
  const port = Number(new URL(rig.url).port);
  const taken = new RelayServer({ ...rigOptions(rig), port, logger: createLogger('debug', { write: (l: string) => void logs.push(JSON.parse(l) as { event?: string }) }) });
  await t.rejects(taken.listen(), { code: 'FK_ERR_CONFIG', key: 'relay.port', message: `relay.port: cannot listen on 127.0.0.1:${port}: EADDRINUSE`, cause: { code: 'EADDRINUSE' } });
  t.ok(logs.some((l) => l.event === 'relay_server_error'));
  await taken.close();
});

t.test('close(): clients get 1001, streams are released, write() says false', async (t) => {
  const rig = await startRelay(t);
  const c = await open(`${rig.url}/ws/${BTC}`);
  await rig.relay.close();
  t.same(await c.closed, { code: 1001, reason: 'relay shutting down' });
  t.same(rig.upstream.releases, [`binance-spot ${BTC}`]);
  t.equal(rig.relay.write(tradeFrame(BTC, 1), 0, ref(BTC)), false);
  t.equal(rig.relay.healthy(), false);
  t.ok(rig.logs.some((l) => l.event === 'relay_stopped'));
  t.ok(rig.logs.some((l) => l.event === 'relay_listening'));
  await rig.relay.close();
});

t.test('every log line has an event; connects and closes at debug', async (t) => {
  const rig = await startRelay(t);
  const c = await open(`${rig.url}/ws`);
  c.close();
  await c.closed;
  t.ok(await until(() => rig.logs.some((l) => l.event === 'relay_client_closed')));
  t.match(rig.logs.find((l) => l.event === 'relay_client_connected'), { level: 'debug', path: '/ws' });
  t.same(rig.logs.filter((l) => typeof l.event !== 'string'), []);
});

t.test('two relays on one registry share the metrics; options are checked', async (t) => {
  const rig = await startRelay(t);
  const second = new RelayServer({ ...rigOptions(rig), port: 0 });
  await second.listen();
  t.teardown(() => second.close());
  await open(`${second.url}/ws`);
  await open(`${rig.url}/ws`);
  t.match(await metric(rig, 'feedkeeper_relay_clients_connected'), /feedkeeper_relay_clients_connected 2/);
  t.throws(() => new RelayServer({ ...rigOptions(rig), venues: ['okx'] }), /not a Binance venue/);
  t.throws(() => new RelayServer({ ...rigOptions(rig), venues: [] }));
  t.throws(() => new RelayServer({ ...rigOptions(rig), clientBufferBytes: 0 }));
});

t.test('parseRelayPath', async (t) => {
  const v = ['binance-spot', 'binance-usdm'];
  const p = (s: string) => parseRelayPath(v, new URL(s, 'http://x'));
  t.same(p('/ws/a@trade/b@trade'), { venue: 'binance-spot', combined: false, names: ['a@trade', 'b@trade'] });
  t.same(p('/stream?streams=a@trade/a@trade/'), { venue: 'binance-spot', combined: true, names: ['a@trade'] });
  t.same(p('/binance-usdm/public/stream?streams='), { venue: 'binance-usdm', combined: true, names: [] });
  t.same(p('/binance-usdm/market/ws/x@aggTrade'), { venue: 'binance-usdm', combined: false, names: ['x@aggTrade'] });
  t.equal(p('/binance-usdm/private/ws'), null);
  t.equal(p('/public/ws'), null, 'the root is spot here');
  t.equal(p('/binance-coinm/ws'), null);
});

function rigOptions(rig: Rig) {
  return {
    host: '127.0.0.1',
    port: 0,
    venues: ['binance-spot'],
    maxClients: 8,
    clientBufferBytes: 1 << 20,
    maxPayloadBytes: 65_536,
    messagesPerSecond: 50,
    pingIntervalMs: 20_000,
    pongTimeoutMs: 60_000,
    allow: [],
    upstream: new FakeUpstream(),
    logger: silentLogger(),
    registry: rig.registry,
  };
}

