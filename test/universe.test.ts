import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { Daemon } from '../src/daemon.js';
import { silentLogger } from '../src/log.js';
import { plan } from '../src/plan/planner.js';
import { formatPlan, planToJSON } from '../src/plan/report.js';
import { startSimulator, type Simulator } from '../src/simulator/index.js';
import { resolveUniverses } from '../src/universe/resolve.js';
import { diffSymbols, selectUniverse } from '../src/universe/select.js';
import { parseUniverseSpec } from '../src/universe/spec.js';
import { getVenue } from '../src/venues/index.js';
import type { Instrument } from '../src/venues/types.js';
import { ledgerEntries, tempDir, until, writeTestConfig } from './helpers/stack.js';

// A living symbol set (docs/configuration.md, "A universe instead of a list"): symbols resolved
// from the simulator's exchangeInfo before planning, listings followed and delistings dropped on
// the live connections, a start from the saved list when exchangeInfo is down.

const FAST = { handshakeTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };
const spot = getVenue('binance-spot')!;

const inst = (symbol: string, over: Partial<Instrument> = {}): Instrument => ({ symbol, status: 'TRADING', quoteAsset: 'USDT', permissions: ['SPOT'], contractType: null, ...over });
const spec = (over: Record<string, unknown> = {}) => parseUniverseSpec({ from: 'exchangeInfo', ...over }, 'symbols', '');

t.test('selectUniverse: every filter, include/exclude, and a sticky max', async (t) => {
  const list = [
    inst('BTCUSDT'),
    inst('ETHBTC', { quoteAsset: 'BTC' }),
    inst('LUNAUSDT', { status: 'BREAK' }),
    inst('MARGINONLYUSDT', { permissions: ['MARGIN'] }),
    inst('SOLUSDT'),
    inst('bad symbol'),
  ];
  t.same(selectUniverse(list, spec(), spot.isSymbol), ['BTCUSDT', 'ETHBTC', 'MARGINONLYUSDT', 'SOLUSDT'], 'status TRADING by default; a malformed symbol never');
  t.same(selectUniverse(list, spec({ quoteAssets: ['USDT'], permissions: ['SPOT'] }), spot.isSymbol), ['BTCUSDT', 'SOLUSDT']);
  t.same(selectUniverse(list, spec({ quoteAssets: ['USDT'], include: ['ETHBTC'], exclude: ['SOLUSDT'] }), spot.isSymbol), ['BTCUSDT', 'ETHBTC', 'MARGINONLYUSDT']);
  t.same(selectUniverse(list, spec({ status: 'BREAK' }), spot.isSymbol), ['LUNAUSDT']);
  // max: the symbols followed now stay; a new listing does not push one out.
  const capped = spec({ quoteAssets: ['USDT'], max: 2 });
  t.same(selectUniverse(list, capped, spot.isSymbol, ['SOLUSDT', 'MARGINONLYUSDT']), ['MARGINONLYUSDT', 'SOLUSDT']);
  t.same(selectUniverse([inst('AAAUSDT'), ...list], capped, spot.isSymbol, ['SOLUSDT', 'MARGINONLYUSDT']), ['MARGINONLYUSDT', 'SOLUSDT'], 'AAAUSDT waits for room');
  t.same(selectUniverse(list, spec({ contractTypes: ['PERPETUAL'] }), spot.isSymbol), [], 'a contract-type filter keeps no spot symbol');
  t.same(diffSymbols(['A', 'B', 'C'], ['B', 'C', 'D']), { added: ['D'], removed: ['A'] });
});

t.test('the universe form of symbols: bad values name their key, and only venues with an instrument list take it', async (t) => {
  const dir = tempDir(t);
  const file = (name: string, data: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(data));
    return p;
  };
  const cases: Array<[unknown, string, RegExp]> = [
    [{ symbols: { from: 'exchangeInfo', quoteAsset: ['USDT'] } }, 'symbols.quoteAsset', /unknown key/],
    [{ symbols: { from: 'coingecko' } }, 'symbols.from', /must be "exchangeInfo"/],
    [{ symbols: { from: 'exchangeInfo', quoteAssets: ['usdt'] } }, 'symbols.quoteAssets[0]', /upper-case/],
    [{ symbols: { from: 'exchangeInfo', max: -1 } }, 'symbols.max', /integer >= 0/],
    [{ symbols: { from: 'exchangeInfo', include: ['BTCUSDT'], exclude: ['BTCUSDT'] } }, 'symbols.exclude', /in include too/],
    [{ venue: 'okx', symbols: { from: 'exchangeInfo' } }, 'symbols.from', /okx has no instrument list/],
    [{ feeds: [{ venue: 'binance-spot', symbols: ['BTCUSDT'] }, { venue: 'binance-usdm', symbols: { from: 'exchangeInfo', status: 7 } }] }, 'feeds[1].symbols.status', /upper-case status/],
  ];
  for (const [i, [data, key, message]] of cases.entries()) {
    t.throws(() => loadConfig({ files: [file(`c${i}.json`, data)], env: {} }), { name: 'ConfigError', key, message }, key);
  }
  const ok = loadConfig({ files: [file('ok.json', { symbols: { from: 'exchangeInfo', quoteAssets: ['USDT'], max: 10 } })], env: {} });
  t.match(ok.symbolsFrom, { from: 'exchangeInfo', quoteAssets: ['USDT'], status: 'TRADING', max: 10 });
  t.same(ok.symbols, [], 'no symbols until resolved');
  // A later file (or the environment) with a list wins over the universe.
  const later = loadConfig({ files: [file('u.json', { symbols: { from: 'exchangeInfo' } }), file('l.json', { symbols: ['BTCUSDT'] })], env: {} });
  t.equal(later.symbolsFrom, null);
  t.same(later.symbols, ['BTCUSDT']);
  t.equal(loadConfig({ files: [file('u2.json', { symbols: { from: 'exchangeInfo' } })], env: { FEEDKEEPER_SYMBOLS: 'ETHUSDT' } }).symbolsFrom, null);
});

async function universeConfig(sim: Simulator, dir: string, over: Record<string, unknown> = {}): Promise<Config> {
  const loaded = loadConfig({ files: [writeTestConfig(dir, sim, over)], env: {} });
  return resolveUniverses(loaded, { logger: silentLogger() });
}

t.test('600 symbols × 2 streams from exchangeInfo: planned within limits, delivering; a listing joins live, a delisting leaves, no other stream touched', async (t) => {
  const dir = tempDir(t);
  // 6 usual USDT pairs and 594 synthetic ones are trading; LUNAUSDT (BREAK) and two BTC pairs are not taken.
  const sim = await startSimulator({ listings: 594, eventsPerSecond: 1 });
  t.teardown(() => sim.close());
  const config = await universeConfig(sim, dir, {
    symbols: { from: 'exchangeInfo', quoteAssets: ['USDT'] },
    streams: ['trade', 'kline_1m'],
    universe: { refreshMs: 400 },
    connection: FAST,
  });
  t.equal(config.symbols.length, 600, 'every trading USDT pair');
  t.notOk(config.symbols.includes('LUNAUSDT'), 'a symbol in BREAK is not TRADING');
  t.notOk(config.symbols.includes('ETHBTC'), 'another quote asset is filtered out');
  const p = plan(config, spot);
  t.equal(p.totalStreams, 1200);
  t.ok(p.usage.streamsPerConnection.max <= 1024, `${p.connections.length} connections, at most ${p.usage.streamsPerConnection.max} streams each`);
  t.match(formatPlan(p), /universe: 600 symbols from \/api\/v3\/exchangeInfo \(status TRADING, quote USDT\); refreshed every 0.4 s at weight 20/);
  t.match(planToJSON(p).universe, { path: '/api/v3/exchangeInfo', weight: 20, spec: { quoteAssets: ['USDT'] } });

  const daemon = new Daemon(config, { logger: silentLogger(), configFiles: [], env: {} });
  t.teardown(() => daemon.stop('test over'));
  await daemon.start();
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => config.symbols.every((s) => (feed.router.stream(`${s.toLowerCase()}@kline_1m`)?.received ?? 0) > 0), 20_000), 'every kline stream delivers');
  const connections = sim.totalConnections;

  sim.list!('NEW1USDT');
  sim.delist!('T0001USDT');
  const at = Date.now();
  t.ok(await until(() => (feed.router.stream('new1usdt@trade')?.received ?? 0) > 0 && (feed.router.stream('new1usdt@kline_1m')?.received ?? 0) > 0, 10_400), `the listing delivers within refreshMs + 10 s (${Date.now() - at} ms)`);
  t.ok(await until(() => !sim.connections().some((c) => c.streams.has('t0001usdt@trade') || c.streams.has('t0001usdt@kline_1m')), 5000), 'the delisted symbol is unsubscribed upstream');
  t.notOk(feed.carries('t0001usdt@trade'), 'and no longer routed');
  t.equal(sim.totalConnections, connections, 'no connection was opened or reconnected for it: the connection with room took it');
  t.equal(feed.symbols.length, 600);
  const gaps = (await ledgerEntries(config)).filter((e) => e.cause !== 'shutdown');
  t.same(gaps.map((g) => `${g.stream} ${g.cause}`), [], 'no stream saw a gap');
  t.same(sim.violations, [], 'no limit broken');
  const text = await daemon.metrics.registry.metrics();
  t.match(text, /feedkeeper_universe_changes_total\{[^}]*change="added"[^}]*\} 1/);
  t.match(text, /feedkeeper_universe_symbols\{venue="binance-spot"\} 600/);
});

t.test('exchangeInfo unreachable at start: the saved universe, said in the log; none saved: exit 2 naming symbols.from', async (t) => {
  const dir = tempDir(t);
  const sim = await startSimulator({ listings: 3 });
  const over = { symbols: { from: 'exchangeInfo', quoteAssets: ['USDT'] }, streams: ['trade'] };
  const first = await universeConfig(sim, dir, over);
  t.equal(first.symbols.length, 9, '6 usual + 3 synthetic USDT pairs (LUNAUSDT is in BREAK)');
  const loaded = loadConfig({ files: [writeTestConfig(dir, sim, over)], env: {} });
  await sim.close();

  const lines: Array<Record<string, unknown>> = [];
  const { createLogger } = await import('../src/log.js');
  const logger = createLogger('info', { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const again = await resolveUniverses(loaded, { logger });
  t.same(again.symbols, first.symbols, 'the list saved by the first resolution');
  t.ok(lines.some((l) => l.event === 'universe_from_saved'), 'and the log says so');

  const other = tempDir(t);
  const fresh = loadConfig({ files: [writeTestConfig(other, sim, over)], env: {} });
  await t.rejects(resolveUniverses(fresh, { logger: silentLogger() }), { name: 'ConfigError', key: 'symbols.from', message: /could not be fetched .* no universe was saved/ });
});

t.test('a delisted symbol whose stream is in a gap: the gap closes with cause delisted', async (t) => {
  const dir = tempDir(t);
  const sim = await startSimulator({ eventsPerSecond: 5 });
  t.teardown(() => sim.close());
  const config = await universeConfig(sim, dir, { symbols: { from: 'exchangeInfo', include: ['BTCUSDT', 'ETHUSDT'], quoteAssets: ['FDUSD'] }, streams: ['trade'], universe: { refreshMs: 300 }, connection: FAST });
  t.same(config.symbols, ['BTCUSDT', 'ETHUSDT']);
  const daemon = new Daemon(config, { logger: silentLogger(), configFiles: [], env: {} });
  t.teardown(() => daemon.stop('test over'));
  await daemon.start();
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => (feed.router.stream('ethusdt@trade')?.received ?? 0) > 0, 5000));
  // The stream goes dark (its subscription lost: trades have no cadence, so nothing reconciles it).
  const session = feed.supervisor.workers[0]!.session!;
  t.equal(sim.dropSubscription!('ethusdt@trade'), 1);
  await new Promise((r) => setTimeout(r, 100)); // frames already on the wire arrive first
  feed.router.markGap('ethusdt@trade', session, 'silent', Date.now(), 'test');
  sim.delist!('ETHUSDT');
  t.ok(await until(() => !feed.carries('ethusdt@trade'), 5000), 'unsubscribed');
  await daemon.ledger.flush();
  const entries = (await ledgerEntries(config)).filter((e) => e.stream === 'ethusdt@trade');
  t.equal(entries.length, 1);
  t.match(entries[0], { cause: 'delisted', detail: /ETHUSDT was delisted/ });
  t.not(entries[0]!.end, null, 'closed');
});

t.test('USD-M follows !contractInfo: a listing is picked up at once, not at the next refresh', async (t) => {
  const dir = tempDir(t);
  const sim = await startSimulator({ venue: 'binance-usdm', listings: 4, eventsPerSecond: 5 });
  t.teardown(() => sim.close());
  const config = await universeConfig(sim, dir, {
    venue: 'binance-usdm',
    symbols: { from: 'exchangeInfo', quoteAssets: ['USDT'], contractTypes: ['PERPETUAL'] },
    streams: ['aggTrade'],
    universe: { refreshMs: 600_000 },
    connection: FAST,
  });
  t.equal(config.symbols.length, 10);
  const daemon = new Daemon(config, { logger: silentLogger(), configFiles: [], env: {} });
  t.teardown(() => daemon.stop('test over'));
  await daemon.start();
  const feed = daemon.feeds[0]!;
  t.ok(await until(() => sim.connections().some((c) => c.streams.has('!contractInfo') && c.path.startsWith('/market/')), 5000), '!contractInfo subscribed on the market route');
  const at = Date.now();
  sim.list!('NEW1USDT');
  t.ok(await until(() => (feed.router.stream('new1usdt@aggTrade')?.received ?? 0) > 0, 8000), `the listing delivers ${Date.now() - at} ms later (refreshMs is 10 min)`);
  t.ok((feed.router.stream('!contractInfo')?.received ?? 0) >= 1, 'the event was routed (and recorded)');
  sim.delist!('T0001USDT');
  t.ok(await until(() => !feed.carries('t0001usdt@aggTrade'), 5000), 'a delisting too');
  t.same(sim.violations, []);
});
