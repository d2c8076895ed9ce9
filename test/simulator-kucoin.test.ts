import t, { type Test } from 'tap';
import { startVenueSimulator, type KucoinSimulator, type VenueSimulatorOptions } from '../src/simulator/venues/index.js';
import { kucoinSpot } from '../src/venues/kucoin/index.js';
import type { FrameKeys } from '../src/venues/types.js';
import { connect, waitFor, type Client } from './fixtures/sim-client.js';
import { shape } from './helpers/shape.js';

// The KuCoin dialect over loopback with a real WebSocket client: bullet-public, token checks,
// welcome, ping/pong, subscribe limits, frames in the docs' key order that the venue's readers read.

/** Frames from ../shared/fixtures/kucoin/docs-examples.ndjson (KuCoin's docs), verbatim. */
const FIXTURE = {
  match:
    '{"topic":"/market/match:BTC-USDT","type":"message","subject":"trade.l3match","data":{"makerOrderId":"671b5007389355000701b1d3","price":"67523","sequence":"11067996711960577","side":"buy","size":"0.003","symbol":"BTC-USDT","takerOrderId":"671b50161777ff00074c168d","time":"1729843222921000000","tradeId":"11067996711960577","type":"match"}}',
  level2:
    '{"topic":"/market/level2:BTC-USDT","type":"message","subject":"trade.l2update","data":{"changes":{"asks":[["67993.3","1.21427407","14701689783"]],"bids":[]},"sequenceEnd":14701689783,"sequenceStart":14701689783,"symbol":"BTC-USDT","time":1729816425625}}',
  welcome: '{"id":"hQvf8jkno","type":"welcome"}',
  pong: '{"id":"1545910590801","type":"pong"}',
};

async function sim(t: Test, opts: Omit<VenueSimulatorOptions, 'venue'> = {}): Promise<KucoinSimulator> {
  const s = await startVenueSimulator({ eventsPerSecond: 20, tickMs: 20, ...opts, venue: 'kucoin-spot' });
  t.teardown(() => s.close());
  return s;
}

interface BulletReply {
  code: string;
  data: { token: string; instanceServers: Array<{ endpoint: string; encrypt: boolean; protocol: string; pingInterval: number; pingTimeout: number }> };
}

async function bullet(s: KucoinSimulator): Promise<BulletReply> {
  const res = await fetch(`${s.httpUrl}/api/v1/bullet-public`, { method: 'POST' });
  return (await res.json()) as BulletReply;
}

async function open(s: KucoinSimulator, token?: string, connectId = 'cid1'): Promise<{ c: Client; token: string }> {
  const tok = token ?? (await bullet(s)).data.token;
  const c = await connect(`${s.wsUrl}/?token=${encodeURIComponent(tok)}&connectId=${connectId}`);
  return { c, token: tok };
}

const scratch = (): FrameKeys => ({ from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 });

t.test('bullet-public: the reply in the docs shape, the endpoint this server, a new token each time', async (t) => {
  const s = await sim(t, { pingIntervalMs: 700 });
  const a = await bullet(s);
  const b = await bullet(s);
  t.equal(a.code, '200000');
  t.equal(a.data.instanceServers[0]!.endpoint, `${s.wsUrl}/`);
  t.equal(a.data.instanceServers[0]!.pingInterval, 700);
  t.equal(a.data.instanceServers[0]!.pingTimeout, 10000);
  t.not(a.data.token, b.data.token);
  t.equal(s.bulletRequests, 2);
  t.equal(s.tokensIssued, 2);
  const status = await (await fetch(`${s.httpUrl}/api/v1/status`)).json();
  t.match(status, { code: '200000', data: { status: 'open' } });
});

t.test('welcome with the connectId, ping → pong, subscribe acked, data in the docs key order', async (t) => {
  const s = await sim(t);
  const { c } = await open(s, undefined, 'myconn');
  const welcome = await c.next((f) => f.includes('"welcome"'));
  t.equal(welcome, '{"id":"myconn","type":"welcome"}');
  t.same(shape(JSON.parse(welcome)), shape(JSON.parse(FIXTURE.welcome)));
  c.send({ id: '1545910590801', type: 'ping' });
  const pong = await c.next((f) => f.includes('"pong"'));
  t.same(shape(JSON.parse(pong)), shape(JSON.parse(FIXTURE.pong)));
  t.equal(JSON.parse(pong).id, '1545910590801');
  c.send({ id: 7, type: 'subscribe', topic: '/market/match:BTC-USDT,ETH-USDT', privateChannel: false, response: true });
  c.send({ id: 8, type: 'subscribe', topic: '/market/level2:BTC-USDT', privateChannel: false, response: true });
  c.send({ id: 9, type: 'subscribe', topic: '/market/ticker:BTC-USDT', privateChannel: false, response: true });
  c.send({ id: 10, type: 'subscribe', topic: '/market/snapshot:BTC-USDT', privateChannel: false, response: true });
  await waitFor(() => ['7', '8', '9', '10'].every((id) => c.frames.includes(`{"id":${id},"type":"ack"}`)), 3000, 'acks');
  const want = ['match:BTC-USDT', 'match:ETH-USDT', 'level2:BTC-USDT', 'ticker:BTC-USDT', 'snapshot:BTC-USDT'];
  await waitFor(() => want.every((w) => c.frames.some((f) => kucoinSpot.readStream(Buffer.from(f), scratch()) === w)), 5000, 'a push of every stream');
  const first = (w: string): string => c.frames.find((f) => kucoinSpot.readStream(Buffer.from(f), scratch()) === w)!;
  t.same(shape(JSON.parse(first('match:BTC-USDT'))), shape(JSON.parse(FIXTURE.match)), 'match in the docs shape');
  t.same(shape(JSON.parse(first('level2:BTC-USDT'))), shape(JSON.parse(FIXTURE.level2)), 'level2 in the docs shape');
  for (const w of want) {
    const f = Buffer.from(first(w));
    const out = scratch();
    kucoinSpot.readStream(f, out);
    t.ok(kucoinSpot.streamType(kucoinSpot.typeOf(w))!.keys(f, out), `${w}: the venue reads its keys`);
  }
  // level2 pushes chain: next start = last end + 1.
  const l2 = c.frames.filter((f) => f.includes('"/market/level2:BTC-USDT"')).map((f) => JSON.parse(f).data as { sequenceStart: number; sequenceEnd: number });
  for (let i = 1; i < l2.length; i++) t.equal(l2[i]!.sequenceStart, l2[i - 1]!.sequenceEnd + 1, `level2 push ${i} follows`);
  t.same(s.violations, []);
  await c.close();
});

t.test('a used token is refused (401) and counted; so is one past its lifetime; an unknown one too', async (t) => {
  const s = await sim(t, { tokenTtlMs: 300 });
  const first = await open(s);
  await first.c.next((f) => f.includes('"welcome"'));
  const again = await open(s, first.token, 'cid2');
  const refusal = await again.c.next((f) => f.includes('"error"'));
  t.same(JSON.parse(refusal), { id: 'cid2', type: 'error', code: 401, data: 'token is expired' });
  await again.c.closed;
  t.notOk(again.c.frames.some((f) => f.includes('welcome')), 'no welcome');
  t.match(s.violations, [{ rule: 'token_reused' }]);

  const old = (await bullet(s)).data.token;
  s.advance(400); // past its 300 ms lifetime
  const late = await open(s, old, 'cid3');
  t.match(JSON.parse(await late.c.next((f) => f.includes('"error"'))), { code: 401, data: 'token is expired' });
  t.match(s.violations.at(-1), { rule: 'token_expired' });

  const unknown = await open(s, 'made-up', 'cid4');
  t.match(JSON.parse(await unknown.c.next((f) => f.includes('"error"'))), { code: 401, data: 'token is invalid' });
});

t.test('expireTokens(n): the next n fresh tokens are refused, without a violation (the server expired them)', async (t) => {
  const s = await sim(t);
  s.expireTokens(1);
  const a = await open(s);
  t.match(JSON.parse(await a.c.next((f) => f.includes('"error"'))), { code: 401, data: 'token is expired' });
  const b = await open(s);
  await b.c.next((f) => f.includes('"welcome"'));
  t.same(s.violations, []);
  await b.c.close();
});

t.test('limits: >100 symbols in a topic (509), >400 topics on a connection, unknown topics, no ping → cut', async (t) => {
  const symbols = Array.from({ length: 120 }, (_, i) => `C${i}-USDT`);
  const s = await sim(t, { instruments: symbols, pongTimeoutMs: 600, eventsPerSecond: 0 });
  const { c } = await open(s);
  await c.next((f) => f.includes('"welcome"'));
  c.send({ id: 'a', type: 'subscribe', topic: `/market/ticker:${symbols.join(',')}`, response: true });
  t.match(JSON.parse(await c.next((f) => f.includes('"a"'))), { id: 'a', type: 'error', code: 509, data: 'exceed max subscription count limitation of 100 per time' });
  t.match(s.violations, [{ rule: 'args_per_subscribe' }]);
  for (const [i, type] of ['ticker', 'match', 'level2', 'snapshot'].entries()) {
    c.send({ id: `s${i}`, type: 'subscribe', topic: `/market/${type}:${symbols.slice(0, 100).join(',')}`, response: true });
    await c.next((f) => f.includes(`"s${i}"`));
  }
  t.equal(s.connections()[0]!.streams.size, 400, '400 topics');
  c.send({ id: 'over', type: 'subscribe', topic: `/market/ticker:${symbols[100]}`, response: true });
  t.match(JSON.parse(await c.next((f) => f.includes('"over"'))), { type: 'error', code: 509 });
  t.match(s.violations.at(-1), { rule: 'streams_per_connection' });
  c.send({ id: 'nf', type: 'subscribe', topic: '/market/level2Depth5:C1-USDT', response: true });
  t.match(JSON.parse(await c.next((f) => f.includes('"nf"'))), { type: 'error', code: 404 });
  const closed = await c.closed;
  t.same(closed, { code: 1000, reason: 'Ping timeout' }, 'no ping: the server hangs up');
  t.match(s.violations.at(-1), { rule: 'ping_timeout' });
});

t.test('pings keep a connection open; more than 100 messages in 10 s are a violation', async (t) => {
  const s = await sim(t, { pongTimeoutMs: 1000, limits: { messagesPerSecond: 1000 } });
  const { c } = await open(s);
  await c.next((f) => f.includes('"welcome"'));
  for (let i = 0; i < 10; i++) {
    c.send({ id: `p${i}`, type: 'ping' });
    await c.next((f) => f.includes(`"p${i}"`));
    await new Promise((r) => setTimeout(r, 150));
  }
  t.notOk(c.isClosed(), 'still open after 1.5 s (the cut is at 1 s without a ping) with pings every 150 ms');
  for (let i = 0; i < 100; i++) c.send({ id: `q${i}`, type: 'ping' });
  t.match(await c.closed, { code: 1008 });
  t.match(s.violations, [{ rule: 'messages_per_second', detail: /100 messages from the client within 10 s/ }]);
});

t.test('skip(): level2 pushes are swallowed whole; forced cut after maxLifetimeMs', async (t) => {
  const s = await sim(t, { maxLifetimeMs: 1500 });
  const { c } = await open(s);
  await c.next((f) => f.includes('"welcome"'));
  c.send({ id: 1, type: 'subscribe', topic: '/market/level2:BTC-USDT', response: true });
  await c.next((f) => f.includes('"/market/level2:BTC-USDT"'));
  s.skip('level2:BTC-USDT', 5);
  await waitFor(() => s.skippedIds('level2:BTC-USDT').length === 5, 3000, 'five skipped');
  const skipped = s.skippedIds('level2:BTC-USDT');
  await waitFor(() => c.frames.some((f) => f.includes(`"sequenceStart":${skipped.at(-1)! + 1}`)), 3000, 'the push after the skip');
  const l2 = c.frames.filter((f) => f.includes('"/market/level2:BTC-USDT"')).map((f) => JSON.parse(f).data as { sequenceStart: number; sequenceEnd: number });
  const jump = l2.findIndex((d, i) => i > 0 && d.sequenceStart !== l2[i - 1]!.sequenceEnd + 1);
  t.equal(l2[jump - 1]!.sequenceEnd, s.sentIds('level2:BTC-USDT')[s.sentIds('level2:BTC-USDT').indexOf(skipped[0]!) - 1], 'the last push before the skip');
  t.equal(l2[jump]!.sequenceStart - 1, skipped.at(-1), 'five pushes missing, up to the last skipped sequenceEnd');
  t.match(await c.closed, { code: 1001 }, 'the forced cut');
});
