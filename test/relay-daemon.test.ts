import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { startSimulator } from '../src/simulator/index.js';
import { startStack, tempDir, until, writeTestConfig } from './helpers/stack.js';

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

t.test('20 relay clients on overlapping stream sets cost the simulator no more connections than the plan', async (t) => {
  const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT'];
  const types = ['trade', 'aggTrade'];
  // 8 streams at 5 per connection: the plan has 2 connections, one with room for the extra stream.
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20 },
    config: { symbols, streams: types, limits: { streamsPerConnection: 5 }, connection: FAST, relay: { enabled: true, port: 0, lingerMs: 300 } },
  });
  const planned = daemon.plan.connections.length;
  t.equal(planned, 2, 'the plan: 2 connections');
  await until(() => sim.connections().length === planned, 5000);
  const configured = symbols.flatMap((s) => types.map((ty) => `${s.toLowerCase()}@${ty}`));
  const extra = 'xrpusdt@trade';
  const url = daemon.relay!.url;
  // Client i: three configured streams starting at i (every stream is shared by several clients),
  // raw, combined, or subscribed after connecting; every fifth also wants a stream outside the config.
  const wanted = Array.from({ length: 20 }, (_, i) => [...[0, 1, 3].map((k) => configured[(i + k) % configured.length]!), ...(i % 5 === 0 ? [extra] : [])]);
  const clients = await Promise.all(
    wanted.map(async (streams, i) => {
      if (i % 3 === 0) return connect(`${url}/ws/${streams.join('/')}`);
      if (i % 3 === 1) return connect(`${url}/stream?streams=${streams.join('/')}`);
      const c = await connect(`${url}/stream`);
      c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: streams, id: i }));
      return c;
    }),
  );
  t.teardown(() => {
    for (const c of clients) c.ws.terminate();
  });
  const seen = (c: Client): Set<string> => {
    const out = new Set<string>();
    for (const f of c.frames) {
      const m = JSON.parse(f) as { stream?: string; e?: string; s?: string; result?: unknown };
      if (m.stream !== undefined) out.add(m.stream);
      else if (m.e !== undefined && m.s !== undefined) out.add(`${m.s.toLowerCase()}@${m.e}`);
    }
    return out;
  };
  t.ok(await until(() => clients.every((c, i) => wanted[i]!.every((s) => seen(c).has(s))), 10_000), 'every client gets every stream it asked for');
  clients.forEach((c, i) => t.same([...seen(c)].sort(), [...wanted[i]!].sort(), `client ${i}: its streams and no other`));

  t.equal(sim.totalConnections, planned, `the simulator saw ${planned} connections in all: the relay multiplied nothing`);
  const upstream = sim.connections().flatMap((c) => [...c.streams]);
  t.same([...upstream].sort(), [...configured, extra].sort(), 'each stream subscribed upstream once, on the planned connections');
  t.notOk(clients.some((c) => c.closed), 'no client was closed');
  t.same(sim.violations, []);
});

const CLI = new URL('../dist/src/cli/main.js', import.meta.url).pathname;

t.test('relay.port already taken: exit 2 naming relay.port, before anything connects upstream', async (t) => {
  const sim = await startSimulator({ eventsPerSecond: 2 });
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  const dir = tempDir(t);
  t.teardown(async () => {
    blocker.close();
    await sim.close();
  });
  const file = writeTestConfig(dir, sim, { symbols: ['BTCUSDT'], streams: ['trade'], relay: { enabled: true, port }, log: { level: 'info' } });
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 2, 'exit code 2');
  t.match(out, new RegExp(`relay\\.port: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`), 'the key and the port are named');
  t.match(out, /daemon_start_failed/);
  t.match(out, /FK_ERR_CONFIG/);
  t.equal(sim.totalConnections, 0, 'nothing connected upstream: the relay port is taken before the connections start');
});
