import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { ConfigError, PlanOverBudgetError } from '../src/errors.js';
import { plan } from '../src/plan/planner.js';
import { formatPlan, planToJSON } from '../src/plan/report.js';
import { shardOf, shardSymbols } from '../src/plan/shard.js';
import { binanceSpot } from '../src/venues/binance/spot.js';
import { okx } from '../src/venues/okx/index.js';
import { tempDir } from './helpers/stack.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Shards (the third Done-when): shard 0 of 2 and 1 of 2 cover disjoint symbol sets whose
// union is the config; the split is stable (same symbol, same shard; adding symbols moves none).

const base = loadConfig({ files: [], env: {} });
const symbols = (n: number): string[] => Array.from({ length: n }, (_, i) => `S${i}USDT`);
const sharded = (syms: string[], index: number, count: number, limits: Partial<Config['limits']> = {}): Config => ({ ...base, symbols: syms, streams: ['trade', 'depth@100ms'], shard: { index, count }, limits: { ...base.limits, ...limits } });

t.test('two shards: disjoint, their union the config, through the real plan', async (t) => {
  const all = symbols(200);
  const parts = [0, 1].map((i) => plan(sharded(all, i, 2), binanceSpot));
  const sets = parts.map((p) => new Set(p.connections.flatMap((c) => c.symbols)));
  t.ok(sets[0]!.size > 60 && sets[1]!.size > 60, `both shards carry a fair part (${sets[0]!.size} / ${sets[1]!.size})`);
  t.same([...sets[0]!].filter((s) => sets[1]!.has(s)), [], 'disjoint');
  t.same([...sets[0]!, ...sets[1]!].sort(), [...all].sort(), 'the union is the config');
  t.match(parts[0]!.shard, { index: 0, count: 2, symbols: sets[0]!.size, totalSymbols: 200 });
  // Each shard keeps every stream of its symbols, in config order.
  t.same(parts[1]!.connections.flatMap((c) => c.symbols), all.filter((s) => sets[1]!.has(s)), 'config order kept');
  t.equal(parts[0]!.totalStreams, sets[0]!.size * 2);
});

t.test('stable: the same symbol on the same shard, adding symbols moves none', async (t) => {
  const before = symbols(300);
  const after = [...before, ...Array.from({ length: 50 }, (_, i) => `N${i}BTC`)];
  for (const count of [2, 3, 5]) {
    const reversed = new Set(shardSymbols([...before].reverse(), { index: 0, count }));
    t.same(shardSymbols(before, { index: 0, count }).filter((s) => !reversed.has(s)), [], `count ${count}: a symbol's shard does not depend on the list around it`);
    for (let i = 0; i < count; i++) {
      const was = shardSymbols(before, { index: i, count });
      const now = shardSymbols(after, { index: i, count });
      t.same(now.filter((s) => before.includes(s)), was, `count ${count}, shard ${i}: no symbol moved when 50 were added`);
    }
  }
  // 2 → 3 shards: a symbol only moves to the new shard.
  const wrong = before.filter((s) => shardOf(s, 3) !== 2 && shardOf(s, 3) !== shardOf(s, 2));
  t.same(wrong, [], 'growing from 2 to 3 shards moves symbols only onto the new shard');
  t.same(shardSymbols(before, { index: 0, count: 1 }), before, 'one shard: everything');
});

t.test('another venue: the same split', async (t) => {
  const c = { ...base, venue: 'okx', symbols: ['BTC-USDT', 'ETH-USDT', 'SOL-USDT', 'XRP-USDT', 'DOGE-USDT', 'ADA-USDT'], streams: ['trades'], shard: { index: 1, count: 2 } } as Config;
  const p = plan({ ...c, limits: { ...c.limits, streamsPerSubscribe: 10, streamsPerConnection: 100 } }, okx);
  t.same(p.connections.flatMap((x) => x.symbols), c.symbols.filter((s) => shardOf(s, 2) === 1));
});

t.test('a shard with none of the symbols is refused on shard.count', async (t) => {
  const one = ['BTCUSDT'];
  const empty = shardOf('BTCUSDT', 2) === 0 ? 1 : 0;
  t.throws(() => plan(sharded(one, empty, 2), binanceSpot), { name: 'ConfigError', key: 'shard.count', message: /gets none of the 1 binance-spot symbols/ });
  t.throws(() => plan(sharded(one, empty, 2), binanceSpot), ConfigError);
});

t.test('over one IP budget: the error names the shard count that fits', async (t) => {
  const c = { ...sharded(symbols(1000), 0, 1, { streamsPerConnection: 2 }), streams: ['trade'] };
  // 1000 symbols at 2 per connection: 500 connections, 300 allowed per IP.
  const err = (() => {
    try {
      plan(c, binanceSpot);
    } catch (e) {
      return e;
    }
  })() as PlanOverBudgetError;
  t.type(err, PlanOverBudgetError);
  const m = /shard\.count (\d+)/.exec(err.message);
  t.ok(m, `suggests a shard count: ${err.message}`);
  const n = Number(m![1]);
  t.ok(n >= 2, `${n} shards`);
  for (let i = 0; i < n; i++) t.doesNotThrow(() => plan({ ...c, shard: { index: i, count: n } }, binanceSpot), `shard ${i} of ${n} fits one IP`);
});

t.test('plan shows the shard part and the whole; config checks', async (t) => {
  const p = plan(sharded(symbols(10), 1, 2), binanceSpot);
  const text = formatPlan(p);
  t.match(text, new RegExp(`shard 1 of 2: ${p.shard.symbols} of 10 symbols`));
  t.match(planToJSON(p), { shard: { index: 1, count: 2, totalSymbols: 10 } });
  t.notMatch(formatPlan(plan({ ...sharded(symbols(10), 0, 1) }, binanceSpot)), /shard/, 'no shard line without sharding');

  const dir = tempDir(t);
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ shard: { index: 2, count: 2 } }));
  t.throws(() => loadConfig({ files: [file], env: {} }), { name: 'ConfigError', key: 'shard.index', message: /must be less than shard.count \(2\), got 2/ });
  t.throws(() => loadConfig({ files: [], env: { FEEDKEEPER_SHARD_COUNT: '0' } }), { name: 'ConfigError', key: 'shard.count', message: /positive integer/ });
  t.match(loadConfig({ files: [], env: { FEEDKEEPER_SHARD_COUNT: '3', FEEDKEEPER_SHARD_INDEX: '2' } }).shard, { index: 2, count: 3 });
});

t.test('two daemons, shard 0 and 1 of 2, against one simulator: disjoint streams whose union is the config', async (t) => {
  const { startStack, until, readRecording } = await import('./helpers/stack.js');
  const all = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT', 'DOGEUSDT', 'ADAUSDT', 'TRXUSDT'];
  const a = await startStack(t, { sim: { eventsPerSecond: 20, tickMs: 50 }, config: { symbols: all, streams: ['trade'], shard: { index: 0, count: 2 } } });
  const b = await startStack(t, { config: { symbols: all, streams: ['trade'], shard: { index: 1, count: 2 }, endpoints: { stream: a.sim.wsUrl, rest: a.sim.httpUrl } } });
  const names = (d: typeof a.daemon): string[] => [...d.router.names].sort();
  const sa = names(a.daemon);
  const sb = names(b.daemon);
  t.same(sa.filter((s) => sb.includes(s)), [], 'disjoint');
  t.same([...sa, ...sb].sort(), all.map((s) => `${s.toLowerCase()}@trade`).sort(), 'together: every configured stream');
  const recorded = (dir: string): Set<string> => new Set(readRecording(dir).map((l) => l.stream));
  t.ok(await until(() => recorded(a.config.recorder.dir).size === sa.length && recorded(b.config.recorder.dir).size === sb.length, 10_000), 'each records exactly its shard');
  t.same([...recorded(a.config.recorder.dir)].sort(), sa);
});
