import t, { type Test } from 'tap';
import { parseControl, type Id } from '../src/relay/protocol.js';
import { RelayRefusal } from '../src/relay/types.js';
import { FakeUpstream, open, startRelay, type TestClient } from './relay-helpers.js';

// The control-message parser under a few thousand random and mutated messages: it never throws,
// and over a socket every message gets exactly one Binance-shaped reply (or the client is closed).

/** mulberry32: a small seeded PRNG, so that a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.RELAY_FUZZ_SEED ?? 20260709);
const STREAMS = ['btcusdt@trade', 'ethusdt@aggTrade', 'bnbusdt@depth@100ms', 'solusdt@kline_1m', 'xrpusdt@bookTicker', 'btcusdt@depth5', 'adausdt@trade'];
const JUNK = ['btcusdt@nonsense', 'BTCUSDT@trade', '@trade', 'btcusdt', '', '!bookTicker', 'x'.repeat(300), 'btc usdt@trade', '\u0000', '🙂@trade'];

function gen(r: () => number): { text: string; expect?: Id } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const anyValue = (depth = 0): unknown => {
    const k = Math.floor(r() * (depth > 2 ? 6 : 9));
    switch (k) {
      case 0:
        return null;
      case 1:
        return r() < 0.5;
      case 2:
        return pick([0, -1, 1.5, 2 ** 63, -(2 ** 63), 2 ** 64, Number.MAX_SAFE_INTEGER, 1e308, -0]);
      case 3:
        return pick(['', 'combined', 'gaps', 'SUBSCRIBE', 'x'.repeat(37), ...STREAMS, ...JUNK]);
      case 4:
        return Math.floor(r() * 1000);
      case 5:
        return pick(STREAMS);
      case 6:
        return Array.from({ length: Math.floor(r() * 4) }, () => anyValue(depth + 1));
      case 7:
        return Object.fromEntries(Array.from({ length: Math.floor(r() * 3) }, () => [pick(['method', 'params', 'id', '__proto__', 'x']), anyValue(depth + 1)]));
      default:
        return { method: pick(['SUBSCRIBE', 'UNSUBSCRIBE']), params: [pick(STREAMS)], id: 1 };
    }
  };
  const id = (): Id => pick<Id>([null, Math.floor(r() * 1e6), -Math.floor(r() * 1e6), `req-${Math.floor(r() * 1e6)}`, 'x'.repeat(36)]);
  const clean = (): { msg: Record<string, unknown>; id: Id } => {
    const i = id();
    const m = pick(['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY']);
    const params =
      m === 'SUBSCRIBE' || m === 'UNSUBSCRIBE'
        ? Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(STREAMS))
        : m === 'SET_PROPERTY'
          ? [pick(['combined', 'gaps']), r() < 0.5]
          : m === 'GET_PROPERTY'
            ? [pick(['combined', 'gaps'])]
            : undefined;
    return { msg: params === undefined ? { method: m, id: i } : { method: m, params, id: i }, id: i };
  };
  const kind = r();
  if (kind < 0.3) {
    const c = clean();
    return { text: JSON.stringify(c.msg), expect: c.id };
  }
  if (kind < 0.6) {
    // A clean message with its bytes mutated: flipped, dropped, inserted characters, truncation.
    let s = JSON.stringify(clean().msg);
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) {
      const at = Math.floor(r() * (s.length + 1));
      const op = Math.floor(r() * 4);
      const ch = pick(['"', '{', '}', '[', ']', ',', ':', '\\', 'a', '0', ' ', '\u0000', '\ud800', 'é', 'null']);
      s = op === 0 ? s.slice(0, at) + ch + s.slice(at + 1) : op === 1 ? s.slice(0, at) + s.slice(at + 1) : op === 2 ? s.slice(0, at) + ch + s.slice(at) : s.slice(0, at);
    }
    return { text: s };
  }
  if (kind < 0.9) {
    // Right keys, wrong values.
    const msg: Record<string, unknown> = {};
    if (r() < 0.9) msg.method = r() < 0.7 ? pick(['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY']) : anyValue();
    if (r() < 0.8) msg.params = r() < 0.5 ? [anyValue(), anyValue()].slice(0, 1 + Math.floor(r() * 2)) : anyValue();
    if (r() < 0.9) msg.id = r() < 0.6 ? id() : anyValue();
    return { text: JSON.stringify(msg) };
  }
  return { text: r() < 0.5 ? JSON.stringify(anyValue()) : String.fromCharCode(...Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 0x3000))) };
}

function wellFormedReply(t: Test, text: string, expect: Id | undefined, what: string): void {
  let reply: { result?: unknown; error?: { code: unknown; msg: unknown }; id?: unknown };
  try {
    reply = JSON.parse(text) as typeof reply;
  } catch {
    t.fail(`${what}: the reply is not JSON: ${text}`);
    return;
  }
  const keys = Object.keys(reply).sort().join(',');
  if (keys === 'id,result') {
    if (expect !== undefined && reply.id !== expect) t.fail(`${what}: id ${JSON.stringify(reply.id)}, sent ${JSON.stringify(expect)}`);
    return;
  }
  if (keys !== 'error,id' || typeof reply.error?.msg !== 'string' || ![0, 1, 2, 3].includes(reply.error.code as number)) {
    t.fail(`${what}: not a Binance reply: ${text}`);
    return;
  }
  if (expect !== undefined && reply.id !== expect) t.fail(`${what}: id ${JSON.stringify(reply.id)}, sent ${JSON.stringify(expect)}`);
}

t.test('parseControl: 5000 random and mutated messages, never a throw, always a Binance reply or a request', async (t) => {
  const r = rng(SEED);
  const valid = (s: string): boolean => new FakeUpstream().valid('binance-spot', s);
  let requests = 0;
  for (let i = 0; i < 5000; i++) {
    const { text, expect } = gen(r);
    let parsed: ReturnType<typeof parseControl>;
    try {
      parsed = parseControl(text, valid);
    } catch (err) {
      t.fail(`threw on ${JSON.stringify(text)}: ${(err as Error).message}`);
      continue;
    }
    if (parsed.ok) {
      requests++;
      if (expect !== undefined && parsed.request.id !== expect) t.fail(`id of ${text}`);
    } else {
      wellFormedReply(t, parsed.reply, undefined, text);
    }
  }
  t.ok(requests > 1000 && requests < 4500, `${requests} requests, the rest errors (seed ${SEED})`);
});

t.test('over the socket: 3000 messages on 4 clients, one reply each, in order; the relay goes on', async (t) => {
  const upstream = new FakeUpstream();
  upstream.behaviour.set('binance-spot adausdt@trade', new RelayRefusal(2, 'Invalid request: adausdt@trade refused'));
  const rig = await startRelay(t, { upstream, messagesPerSecond: 100_000, maxPayloadBytes: 4096 });
  const r = rng(SEED + 1);
  const clients: TestClient[] = [];
  for (let i = 0; i < 4; i++) clients.push(await open(`${rig.url}${i % 2 === 0 ? '/ws' : '/stream?streams='}`));
  let replies = 0;
  let closed = 0;
  await Promise.all(
    clients.map(async (c, ci) => {
      // A window of 8 messages in flight: within the relay's queue of control messages.
      const inFlight: Array<{ text: string; expect?: Id }> = [];
      for (let i = 0; i < 750; i++) {
        const m = gen(r);
        inFlight.push(m);
        c.send(m.text);
        if (inFlight.length < 8 && i < 749) continue;
        while (inFlight.length > 0) {
          const sent = inFlight.shift()!;
          let text: string;
          try {
            text = await c.next(3000);
          } catch {
            t.fail(`client ${ci}: no reply to ${JSON.stringify(sent.text)}`);
            closed++;
            return;
          }
          replies++;
          wellFormedReply(t, text, sent.expect, `client ${ci}: ${sent.text}`);
        }
      }
    }),
  );
  t.equal(replies, 3000, 'one reply per message');
  t.equal(closed, 0);
  t.equal(rig.relay.stats().clients, 4, 'nobody was dropped');
  const fresh = await open(`${rig.url}/ws/btcusdt@trade`);
  t.same(await fresh.ask({ method: 'LIST_SUBSCRIPTIONS', id: 1 }), { result: ['btcusdt@trade'], id: 1 }, 'a new client is served');
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.closed));
  fresh.close();
  await fresh.closed;
  const held = (s: string) => upstream.wants.filter((w) => w === s).length - upstream.releases.filter((w) => w === s).length;
  await new Promise((res) => setTimeout(res, 50));
  for (const s of new Set(upstream.wants)) t.equal(held(s), s.includes('adausdt') ? upstream.wants.filter((w) => w === s).length : 0, `${s}: every want() released once nobody holds it`);
  t.same(rig.relay.stats().streams, []);
});

t.test('a flood of SUBSCRIBEs waiting upstream: closed with 1008, never a crash', async (t) => {
  const upstream = new FakeUpstream();
  upstream.delayMs = 200;
  const rig = await startRelay(t, { upstream, messagesPerSecond: 100_000 });
  const c = await open(`${rig.url}/ws`);
  for (let i = 0; i < 200; i++) c.send({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: i });
  t.same(await c.closed, { code: 1008, reason: 'too many requests' });
  const other = await open(`${rig.url}/ws`);
  t.same(await other.ask({ method: 'LIST_SUBSCRIPTIONS', id: 1 }), { result: [], id: 1 });
  await new Promise((res) => setTimeout(res, 300));
  t.same(upstream.wants, ['binance-spot btcusdt@trade']);
  t.same(upstream.releases, ['binance-spot btcusdt@trade'], 'released after the dropped client was cut');
});
