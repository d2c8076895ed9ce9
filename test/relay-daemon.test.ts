import t from 'tap';
import WebSocket from 'ws';
import { startStack, until } from './helpers/stack.js';

// The relay inside the daemon, against the Binance simulator: a bot's connection stays open across
// upstream faults, gets every message once, hears of gaps if it asked, and a stream the config does
// not carry is subscribed upstream on a connection with room, then dropped after relay.lingerMs.

const FAST = { handshakeTimeoutMs: 3000, switchoverTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };

interface Client {
  ws: WebSocket;
  frames: string[];
  closed: boolean;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const c: Client = { ws, frames: [], closed: false };
  ws.on('message', (d) => c.frames.push(d.toString()));
  ws.on('close', () => (c.closed = true));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return c;
}

const tradeIds = (c: Client): number[] =>
  c.frames
    .map((f) => JSON.parse(f) as { e?: string; t?: number; stream?: string; data?: { t?: number } })
    .filter((m) => m.e === 'trade' || m.data?.t !== undefined)
    .map((m) => (m.e === 'trade' ? m.t! : m.data!.t!));

t.test('a raw client gets the bare events, a combined one the envelope; a serverShutdown switch-over loses and doubles nothing and never closes them', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20, shutdownGraceMs: 1500 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade'], connection: FAST, relay: { enabled: true, port: 0, lingerMs: 300 } },
  });
  const url = daemon.relay!.url;
  const raw = await connect(`${url}/ws/btcusdt@trade`);
  const combined = await connect(`${url}/binance-spot/stream?streams=btcusdt@trade`);
  t.teardown(() => {
    raw.ws.terminate();
    combined.ws.terminate();
  });
  t.ok(await until(() => raw.frames.length > 5 && combined.frames.length > 5, 5000), 'both receive');
  t.match(JSON.parse(raw.frames[0]!), { e: 'trade', s: 'BTCUSDT' }, 'raw: the bare event');
  t.match(JSON.parse(combined.frames[0]!), { stream: 'btcusdt@trade', data: { e: 'trade' } }, 'combined: the envelope');

  t.equal(sim.serverShutdown(), 1);
  t.ok(await until(() => sim.totalConnections === 2 && sim.connections().length === 1, 8000), 'switched over upstream');
  const n = raw.frames.length;
  t.ok(await until(() => raw.frames.length > n + 10, 5000), 'still receiving');
  raw.ws.close();
  combined.ws.close();
  await until(() => raw.closed && combined.closed, 2000);
  t.equal(raw.closed && combined.closed, true);
  const a = tradeIds(raw);
  const b = tradeIds(combined);
  t.equal(new Set(a).size, a.length, 'raw: no trade twice');
  for (let i = 1; i < a.length; i++) if (a[i] !== a[i - 1]! + 1) t.fail(`raw: ${a[i - 1]} then ${a[i]}`);
  t.equal(new Set(b).size, b.length, 'combined: no trade twice');
  for (let i = 1; i < b.length; i++) if (b[i] !== b[i - 1]! + 1) t.fail(`combined: ${b[i - 1]} then ${b[i]}`);
  const sent = sim.sentIds('btcusdt@trade');
  const at = sent.indexOf(a[0]!);
  t.ok(at >= 0);
  t.same(a, sent.slice(at, at + a.length), 'exactly what the exchange sent, in order, once');
  t.same(sim.violations, []);
});

t.test('a stream outside the config is subscribed upstream on the open connection, and unsubscribed after lingerMs', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20 },
    config: { symbols: ['BTCUSDT'], streams: ['trade'], connection: FAST, relay: { enabled: true, port: 0, lingerMs: 300 } },
  });
  const c = await connect(`${daemon.relay!.url}/ws/0`);
  t.teardown(() => c.ws.terminate());
  await until(() => sim.connections().length === 1, 5000);
  const at = Date.now();
  c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['solusdt@trade'], id: 1 }));
  t.ok(await until(() => c.frames.some((f) => f === '{"result":null,"id":1}'), 5000), 'SUBSCRIBE answered as Binance does');
  t.ok(await until(() => tradeIds(c).length > 3, 5000), `delivers within 5 s (${Date.now() - at} ms)`);
  t.equal(sim.totalConnections, 1, 'on the existing connection: no new one');
  t.ok(sim.connections()[0]!.streams.has('solusdt@trade'));
  t.ok(daemon.feeds[0]!.carries('solusdt@trade'), 'routed, recorded and ledgered like any other');

  c.ws.send(JSON.stringify({ method: 'UNSUBSCRIBE', params: ['solusdt@trade'], id: 2 }));
  t.ok(await until(() => !sim.connections()[0]!.streams.has('solusdt@trade') && !daemon.feeds[0]!.carries('solusdt@trade'), 5000), 'unsubscribed upstream after lingerMs, no longer routed');
  t.ok(sim.connections()[0]!.streams.has('btcusdt@trade'), 'the configured stream is never dropped');

  c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['btcusdt@nonsense'], id: 3 }));
  t.ok(await until(() => c.frames.some((f) => /"error":\{"code":2/.test(f) && f.includes('"id":3')), 3000), 'a stream the venue does not have: a Binance-shaped error');
  t.same(sim.violations, []);
});

t.test('an upstream drop: an opted-in client gets one !gap notice when it opens and one when it closes, the ledger entry itself', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20 },
    config: { symbols: ['BTCUSDT'], streams: ['trade'], connection: FAST, relay: { enabled: true, port: 0 } },
  });
  const c = await connect(`${daemon.relay!.url}/stream?streams=btcusdt@trade`);
  const quiet = await connect(`${daemon.relay!.url}/stream?streams=btcusdt@trade`);
  t.teardown(() => {
    c.ws.terminate();
    quiet.ws.terminate();
  });
  c.ws.send(JSON.stringify({ method: 'SET_PROPERTY', params: ['gaps', true], id: 7 }));
  t.ok(await until(() => c.frames.includes('{"result":null,"id":7}') && tradeIds(c).length > 3, 5000));
  sim.dropAll({ code: 1001 });
  const gaps = () => c.frames.map((f) => JSON.parse(f) as { stream?: string; data?: { id: string; end: number | null; cause: string; missed: unknown } }).filter((m) => m.stream === '!gap');
  t.ok(await until(() => gaps().length >= 2, 8000), 'opened, then closed');
  const [open, close] = gaps();
  t.equal(open!.data!.id, close!.data!.id, 'the same entry');
  t.equal(open!.data!.end, null);
  t.equal(close!.data!.cause, 'server_close');
  t.match(close!.data!.missed, { field: 't' }, 'with the exact range');
  t.notOk(c.closed, 'the client stayed connected');
  t.equal(quiet.frames.filter((f) => f.includes('"!gap"')).length, 0, 'no notice to a client that did not opt in');
});
