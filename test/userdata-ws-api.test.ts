import t, { type Test } from 'tap';
import { createHmac, generateKeyPairSync, verify } from 'node:crypto';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { buildSubscribeSignatureRequest, parseWsApiFrame, SpotUserDataSubscription, type SpotUserDataMessage } from '../src/userdata/ws-api.js';
import { createSigner, wsApiSignaturePayload } from '../src/rest/signing.js';
import { installUserDataSimulator } from '../src/simulator/userdata/index.js';
import { startSimulator } from '../src/simulator/index.js';
import type { Clock } from '../src/clock.js';

const HMAC_KEY = 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A';
const HMAC_SECRET = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';
const ED_KEY = 'ed25519ApiKeyForTests000000000000000000000000000000000000000000';
const ed = generateKeyPairSync('ed25519');
const ED_PEM = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const ED_PUB = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function setup(t: Test) {
  const host = await startSimulator({ venue: 'binance-spot', eventsPerSecond: 0 });
  const sim = installUserDataSimulator(host, {
    apiKeys: [
      { apiKey: HMAC_KEY, secret: HMAC_SECRET },
      { apiKey: ED_KEY, ed25519PublicKeyPem: ED_PUB },
    ],
  });
  t.teardown(async () => {
    sim.close();
    await host.close();
  });
  return { host, sim };
}

/** A WS API connection that feeds every text frame to the subscription, as the connection worker will. */
async function connect(t: Test, wsUrl: string, sub: SpotUserDataSubscription) {
  const ws = new WebSocket(`${wsUrl}/ws-api/v3`);
  t.teardown(() => ws.terminate());
  const queue: SpotUserDataMessage[] = [];
  const waiters: Array<(m: SpotUserDataMessage) => void> = [];
  ws.on('message', (data) => {
    const m = sub.onMessage(data.toString());
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  await once(ws, 'open');
  const next = (): Promise<SpotUserDataMessage> => {
    const m = queue.shift();
    return m ? Promise.resolve(m) : new Promise((r) => waiters.push(r));
  };
  return { ws, next };
}

t.test('HMAC: the simulator checks the signature and accepts; events, termination, resubscription', async (t) => {
  const { host, sim } = await setup(t);
  const sub = new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET });
  const c = await connect(t, host.wsUrl, sub);
  c.ws.send(sub.subscribeMessage('sub-1'));
  t.equal(sub.state, 'pending');
  t.same(await c.next(), { kind: 'subscribed', subscriptionId: 0 });
  t.equal(sub.state, 'subscribed');
  t.equal(sub.subscriptionId, 0);
  t.equal(sim.wsApiCounters.subscribed, 1);

  t.equal(sim.pushSpotEvent({ e: 'executionReport', E: 1, s: 'BTCUSDT', X: 'NEW' }), 1);
  t.match(await c.next(), { kind: 'event', stream: 'executionReport', subscriptionId: 0, event: { s: 'BTCUSDT', X: 'NEW' } });
  sim.pushSpotEvent({ e: 'outboundAccountPosition', E: 2, B: [] });
  t.match(await c.next(), { kind: 'event', stream: 'outboundAccountPosition' });

  t.equal(sim.terminate(), 1);
  t.match(await c.next(), { kind: 'terminated', event: { e: 'eventStreamTerminated' } });
  t.equal(sub.state, 'terminated');
  t.equal(sim.spotSubscriptions(), 0);

  c.ws.send(sub.subscribeMessage('sub-2'));
  t.same(await c.next(), { kind: 'subscribed', subscriptionId: 1 }, 'subscribe again on the same connection');

  // After a reconnect: a new connection, a new subscription (ids are per connection).
  const c2 = await connect(t, host.wsUrl, sub);
  c.ws.close();
  c2.ws.send(sub.subscribeMessage(7));
  t.same(await c2.next(), { kind: 'subscribed', subscriptionId: 0 });
});

t.test('Ed25519: a PEM private key signs, the simulator verifies with the public key', async (t) => {
  const { host, sim } = await setup(t);
  const sub = new SpotUserDataSubscription({ apiKey: ED_KEY, secret: ED_PEM, recvWindow: 10_000 });
  const c = await connect(t, host.wsUrl, sub);
  c.ws.send(sub.subscribeMessage('ed-1'));
  t.same(await c.next(), { kind: 'subscribed', subscriptionId: 0 });
  sim.pushSpotEvent({ e: 'balanceUpdate', E: 3, a: 'BTC', d: '1.0' });
  t.match(await c.next(), { kind: 'event', stream: 'balanceUpdate' });
});

t.test('refused: wrong HMAC secret, wrong Ed25519 key, stale timestamp, unknown key', async (t) => {
  const { host, sim } = await setup(t);
  const cases: Array<{ name: string; sub: SpotUserDataSubscription; code: number; status: number }> = [
    { name: 'wrong HMAC secret', sub: new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: 'not-the-secret' }), code: -1022, status: 400 },
    {
      name: 'wrong Ed25519 key',
      sub: new SpotUserDataSubscription({ apiKey: ED_KEY, secret: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }),
      code: -1022,
      status: 400,
    },
    { name: 'HMAC secret for an Ed25519 key', sub: new SpotUserDataSubscription({ apiKey: ED_KEY, secret: HMAC_SECRET }), code: -1022, status: 400 },
    {
      name: 'timestamp 10 s old with the default recvWindow',
      sub: new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET, clock: laggingClock(10_000) }),
      code: -1021,
      status: 400,
    },
    {
      name: 'timestamp 2 s ahead',
      sub: new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET, clock: laggingClock(-2000) }),
      code: -1021,
      status: 400,
    },
    { name: 'unknown API key', sub: new SpotUserDataSubscription({ apiKey: 'unknown', secret: HMAC_SECRET }), code: -2015, status: 401 },
  ];
  for (const k of cases) {
    const c = await connect(t, host.wsUrl, k.sub);
    c.ws.send(k.sub.subscribeMessage(k.name));
    t.match(await c.next(), { kind: 'error', code: k.code, status: k.status }, k.name);
    t.equal(k.sub.state, 'failed');
    t.equal(k.sub.subscriptionId, null);
  }
  t.equal(sim.wsApiCounters.refused, cases.length);
  t.equal(sim.wsApiCounters.subscribed, 0);
  t.equal(sim.pushSpotEvent({ e: 'executionReport' }), 0, 'no subscription exists');
});

t.test('a tampered request (signature of other params) is refused', async (t) => {
  const { host } = await setup(t);
  const sub = new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET });
  const c = await connect(t, host.wsUrl, sub);
  const req = JSON.parse(sub.subscribeMessage('x')) as { params: { timestamp: number } };
  req.params.timestamp -= 1;
  c.ws.send(JSON.stringify(req));
  t.match(await c.next(), { kind: 'error', code: -1022 });
});

t.test('buildSubscribeSignatureRequest: sorted payload, hex HMAC, base64 Ed25519', async (t) => {
  const ts = 1_700_000_000_000;
  const req = buildSubscribeSignatureRequest({ id: 1, apiKey: HMAC_KEY, signer: createSigner(HMAC_SECRET), timestamp: ts, recvWindow: 5000 });
  t.equal(req.method, 'userDataStream.subscribe.signature');
  const payload = `apiKey=${HMAC_KEY}&recvWindow=5000&timestamp=${ts}`;
  t.equal(wsApiSignaturePayload({ timestamp: ts, recvWindow: 5000, apiKey: HMAC_KEY, signature: 'ignored' }), payload);
  t.equal(req.params.signature, createHmac('sha256', HMAC_SECRET).update(payload).digest('hex'));
  t.match(req.params.signature, /^[0-9a-f]{64}$/);

  const edReq = buildSubscribeSignatureRequest({ id: 'a', apiKey: ED_KEY, signer: createSigner(ED_PEM), timestamp: ts });
  const edPayload = `apiKey=${ED_KEY}&timestamp=${ts}`;
  t.ok(verify(null, Buffer.from(edPayload), ed.publicKey, Buffer.from(edReq.params.signature, 'base64')));
  t.notOk('recvWindow' in edReq.params, 'recvWindow only when set');
});

t.test('onMessage: answers to other requests, malformed frames, errors with id null, other subscriptions', async (t) => {
  const sub = new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET });
  sub.subscribeMessage('mine');
  t.same(sub.onMessage('{"id":"other","status":200,"result":{}}'), { kind: 'other', reason: 'unrelated' });
  t.same(sub.onMessage('not json'), { kind: 'other', reason: 'malformed' });
  t.same(sub.onMessage('[1,2]'), { kind: 'other', reason: 'malformed' });
  t.same(sub.onMessage('{"result":null,"id":3}'), { kind: 'other', reason: 'unrelated' });
  t.same(sub.onMessage('{"id":"mine","status":200,"result":{"subscriptionId":4}}'), { kind: 'subscribed', subscriptionId: 4 });
  t.same(sub.onMessage('{"subscriptionId":5,"event":{"e":"executionReport"}}'), { kind: 'other', reason: 'unrelated' }, 'not our subscription');
  t.match(sub.onMessage('{"subscriptionId":4,"event":{"E":1}}'), { kind: 'event', stream: 'unknown' });
  t.same(sub.onMessage('{"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}}'), {
    kind: 'error',
    code: -2015,
    msg: 'Invalid API-key, IP, or permissions for action.',
    status: 401,
  });
  t.match(parseWsApiFrame('{"id":1,"status":429,"error":{"code":-1003,"msg":"Too many requests"}}'), { type: 'response', status: 429, error: { code: -1003 } });
});

t.test('fuzz: onMessage never throws', async (t) => {
  const sub = new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET });
  const pieces = ['{', '}', '"id"', ':', '"status"', '200', 'null', '[', ']', ',', '"event"', '"subscriptionId"', '0', '"e"', '"eventStreamTerminated"', '"result"', '\\', '"'];
  for (let i = 0; i < 5000; i++) {
    let s = '';
    const n = Math.floor(Math.random() * 16);
    for (let j = 0; j < n; j++) s += pieces[Math.floor(Math.random() * pieces.length)];
    sub.onMessage(s);
  }
  t.pass('5000 random frames');
});

function laggingClock(lagMs: number): Clock {
  return {
    now: () => Date.now() - lagMs,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h),
  };
}

t.test('the WS API route is a simulator connection: a drop ends it, a new connection subscribes again', async (t) => {
  const { host, sim } = await setup(t);
  const sub = new SpotUserDataSubscription({ apiKey: HMAC_KEY, secret: HMAC_SECRET });
  const c = await connect(t, host.wsUrl, sub);
  c.ws.send(sub.subscribeMessage(1));
  t.match(await c.next(), { kind: 'subscribed' });
  t.equal(host.connections().filter((x) => x.path === '/ws-api/v3').length, 1);
  const closed = once(c.ws, 'close');
  t.equal(host.dropAll(), 1);
  await closed;
  await new Promise((r) => setTimeout(r, 50));
  t.equal(sim.spotSubscriptions(), 0, 'the subscription died with its connection');
  const c2 = await connect(t, host.wsUrl, sub);
  c2.ws.send(sub.subscribeMessage(2));
  t.match(await c2.next(), { kind: 'subscribed', subscriptionId: 0 });
  t.equal(sim.pushSpotEvent({ e: 'executionReport' }), 1);
  t.match(await c2.next(), { kind: 'event', stream: 'executionReport' });
});
