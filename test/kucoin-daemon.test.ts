import t from 'tap';
import { createLogger } from '../src/log.js';
import type { KucoinSimulator } from '../src/simulator/venues/index.js';
import { ledgerEntries, startStack, until } from './helpers/stack.js';

// The daemon against the KuCoin dialect: a fresh token before every connection, the ping interval
// of the bullet reply, recovery from a refused token, exact level2 gaps, no token in the logs.

const SYMBOLS = ['BTC-USDT', 'ETH-USDT'];
const STREAMS = ['match', 'level2', 'ticker', 'snapshot'];

async function kucoinStack(t: Parameters<typeof startStack>[0]) {
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (l: string) => void logs.push(l) });
  const stack = await startStack(t, {
    // The bullet reply says: ping every 250 ms; the server cuts after 2.5 s without one. The
    // config's pingIntervalMs stays at KuCoin's 18 s: only the reply can keep this connection up.
    sim: { venue: 'kucoin-spot', eventsPerSecond: 20, tickMs: 20, pingIntervalMs: 250, pongTimeoutMs: 2500 },
    config: {
      venue: 'kucoin-spot',
      symbols: SYMBOLS,
      streams: STREAMS,
      log: { level: 'debug' },
      connection: { backoff: { initialMs: 100, maxMs: 400 } },
    },
    logger,
  });
  return { ...stack, sim: stack.sim as KucoinSimulator, logs };
}

t.test('kucoin-spot: every stream delivers; pings at the reply interval; a drop fetches a new token; a refused token is survived', async (t) => {
  const { sim, daemon, config, logs } = await kucoinStack(t);
  const feed = daemon.feeds[0]!;
  const names = [...feed.router.names];
  t.equal(names.length, 8);
  t.ok(await until(() => names.every((n) => (feed.router.stream(n)?.received ?? 0) > 0), 10_000), 'every stream delivered within 10 s');
  t.equal(sim.bulletRequests, 1, 'one token for the one connection');
  // Three pings awaited at the exchange, each within the server's 2.5 s cut: the reply's interval
  // (250 ms, as fast as the outgoing limiter's one urgent slot per 1.1 s lets it), not the config's 18 s.
  const from = sim.pings.length;
  t.ok(await until(() => sim.pings.length >= from + 3, 5000), 'three client pings');
  const gaps = sim.pings.slice(from, from + 3).map((at, i, a) => Math.round(at - (a[i - 1] ?? at))).slice(1);
  t.ok(gaps.every((g) => g < 2500), `a ping every ${gaps.join(', ')} ms`);
  t.equal(sim.totalConnections, 1, 'no cut');
  t.same(sim.violations, []);

  // A drop: the reconnect asks for a new token first (the simulator refuses a reused one).
  sim.dropAll({ code: 1001 });
  t.ok(await until(() => sim.totalConnections === 2 && sim.connections().length === 1 && feed.supervisor.workers[0]!.state === 'open', 8000), 'back after the drop');
  t.equal(sim.bulletRequests, 2, 'a second token before the second connection');
  t.same(sim.violations, [], 'the old token was not reused');

  // The server refuses the next token as expired: that attempt fails, the next fetches another.
  sim.expireTokens(1);
  sim.dropAll({ code: 1001 });
  t.ok(await until(() => sim.totalConnections === 4 && feed.supervisor.workers[0]!.state === 'open', 8000), 'back after the refusal');
  t.equal(sim.bulletRequests, 4, 'the refused token, then a fresh one');
  t.same(sim.violations, []);
  const before = names.map((n) => feed.router.stream(n)!.received);
  t.ok(await until(() => names.every((n, i) => feed.router.stream(n)!.received > before[i]!), 5000), 'every stream delivers again');

  const entries = await ledgerEntries(config);
  t.ok(entries.filter((e) => e.end !== null).length >= 8, 'the drops are in the ledger, closed');
  t.ok(entries.every((e) => e.venue === 'kucoin-spot'));

  await daemon.stop('test over');
  const all = logs.join('');
  t.ok(all.includes('"event":"connection_state"'), 'the logs were captured');
  t.ok(sim.secrets.length >= 8, `${sim.secrets.length} tokens and connectIds handed out`);
  for (const secret of sim.secrets) t.notOk(all.includes(secret) || all.includes(encodeURIComponent(secret)), 'no token or connectId in the logs');
});

t.test('kucoin-spot: a level2 sequence skip is an exact gap', async (t) => {
  const { sim, daemon, config } = await kucoinStack(t);
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('level2:BTC-USDT')?.received ?? 0) > 3, 10_000));
  sim.skip('level2:BTC-USDT', 6);
  const skipped = await (async () => {
    await until(() => sim.skippedIds('level2:BTC-USDT').length === 6, 5000);
    return sim.skippedIds('level2:BTC-USDT');
  })();
  t.equal(skipped.length, 6);
  t.ok(await until(async () => (await ledgerEntries(config)).some((e) => e.cause === 'sequence'), 5000), 'a sequence gap');
  const gap = (await ledgerEntries(config)).find((e) => e.cause === 'sequence')!;
  t.equal(gap.stream, 'level2:BTC-USDT');
  const sent = sim.sentIds('level2:BTC-USDT');
  const lastBefore = sent[sent.indexOf(skipped[0]!) - 1]!;
  t.same(gap.missed, { field: 'sequence', from: lastBefore + 1, to: skipped.at(-1), count: null }, 'the exact range of the six skipped pushes');
  t.same(sim.violations, []);
});

t.test('kucoin-spot: a failing bullet-public (HTTP 500, then 429) fails the attempt before any socket; the worker backs off and comes back', async (t) => {
  const { sim, daemon } = await kucoinStack(t);
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => feed.supervisor.workers[0]!.state === 'open', 10_000));
  const upgrades = sim.upgradeAttempts.length;
  sim.failBullets(2, 500);
  sim.dropAll({ code: 1001 });
  t.ok(await until(() => sim.bulletRequests === 4 && feed.supervisor.workers[0]!.state === 'open', 8000), 'two failed token requests, then a good one');
  t.equal(sim.upgradeAttempts.length, upgrades + 1, 'no upgrade was tried without a token');
  sim.failBullets(1, 429);
  sim.dropAll({ code: 1001 });
  t.ok(await until(() => sim.bulletRequests === 6 && feed.supervisor.workers[0]!.state === 'open', 8000), 'a 429 too');
  const names = [...feed.router.names];
  const before = names.map((n) => feed.router.stream(n)!.received);
  t.ok(await until(() => names.every((n, i) => feed.router.stream(n)!.received > before[i]!), 5000), 'every stream delivers again');
  t.equal((await daemon.metrics.connectionsOpen.get()).values.reduce((n, v) => n + v.value, 0), 1, 'one connection open: the failed attempts left nothing behind');
  t.same(sim.violations, []);
});
