import t from 'tap';
import ccxt from 'ccxt';
import { startStack, until } from './helpers/stack.js';

// ccxt's pro binance client, the third one bots run, pointed at the relay inside the daemon
// (docs/relay.md, "ccxt"): markets loaded from the simulator's exchangeInfo over REST, trades
// watched through the relay. It gets every trade ID the exchange sent, once, in order, filed under
// the spot symbol, across an upstream serverShutdown switch-over, and its connection stays open.
// What this needs of ccxt (4.5) is what the docs say: `await loadHttpProxyAgent()` before any
// plain ws:// or http:// URL (ccxt refuses them otherwise), urls.api.ws.spot, and isSpotUrl.

const FAST = { handshakeTimeoutMs: 3000, switchoverTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 500, multiplier: 2 } };

/** The subclass docs/relay.md gives: through ws://127.0.0.1 the URL has no `/stream` in it. */
class RelayBinance extends ccxt.pro.binance {
  override isSpotUrl(client: { url: string }): boolean {
    return !client.url.includes('/binance-usdm/') && !client.url.includes('/binance-coinm/');
  }
}

interface Trade {
  id: string;
  symbol: string;
}

t.test('ccxt.pro.binance: watchTrades through the relay gets every trade once, in order, across a serverShutdown', async (t) => {
  const { sim, daemon } = await startStack(t, {
    sim: { eventsPerSecond: 20, shutdownGraceMs: 1500 },
    config: { symbols: ['BTCUSDT', 'ETHUSDT'], streams: ['trade'], connection: FAST, relay: { enabled: true, port: 0 } },
  });
  const ex = new RelayBinance({ options: { fetchMarkets: { types: ['spot'] } } });
  await ex.loadHttpProxyAgent();
  const urls = ex.urls as unknown as { api: Record<string, unknown> & { ws: Record<string, string> } };
  urls.api.public = `${sim.httpUrl}/api/v3`;
  urls.api.ws.spot = `${daemon.relay!.url}/ws`;
  let closed = false;
  t.teardown(() => {
    closed = true;
    return ex.close();
  });
  await ex.loadMarkets();
  t.ok(ex.markets?.['BTC/USDT'], 'markets loaded from the simulator');

  const got: Trade[] = [];
  const errors: unknown[] = [];
  void (async () => {
    while (!closed) {
      try {
        // Each call returns the trades that arrived since the last one (ccxt's newUpdates): all kept, doubles included.
        got.push(...((await ex.watchTrades('BTC/USDT')) as Trade[]));
      } catch (err) {
        if (!closed) errors.push(err);
        return;
      }
    }
  })();
  t.ok(await until(() => got.length > 5, 8000), `trades arrive (${got.length})`);
  t.match(daemon.relay!.stats().perClient, [{ path: '/ws/0', streams: ['btcusdt@trade'] }], 'ccxt dialled /ws/0 and subscribed by SUBSCRIBE');

  t.equal(sim.serverShutdown(), 1);
  t.ok(await until(() => sim.totalConnections === 2 && sim.connections().length === 1, 8000), 'switched over upstream');
  const n = got.length;
  t.ok(await until(() => got.length > n + 10, 5000), 'still receiving after the switch-over');
  t.same(errors, [], 'the connection never failed');
  t.equal(daemon.relay!.stats().perClient.length, 1, 'the one connection stayed open');

  t.ok(got.every((tr) => tr.symbol === 'BTC/USDT'), 'filed under the spot symbol');
  const ids = got.map((tr) => Number(tr.id));
  const sent = sim.sentIds('btcusdt@trade');
  const at = sent.indexOf(ids[0]!);
  t.ok(at >= 0, 'the first trade is one the exchange sent');
  t.same(ids, sent.slice(at, at + ids.length), 'exactly what the exchange sent, in order, once');
  t.same(sim.violations, []);
});
