import t from 'tap';
import { request } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { FeedkeeperError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { GapsQueryError, startHttpServer, type HealthSource, type HttpServerOptions } from '../src/metrics/server.js';
import { until as waitUntil } from './helpers/stack.js';

type Readiness = ReturnType<HealthSource['readiness']>;

function healthOf(r: Readiness | (() => Readiness)): HealthSource {
  return { readiness: typeof r === 'function' ? r : () => r };
}

const READY: Readiness = { ready: true, reasons: [], connections: { planned: 2, open: 2 } };

async function start(t: { teardown(fn: () => unknown): void }, extra: Partial<HttpServerOptions> = {}) {
  const metrics = createMetrics({ defaultMetrics: false });
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: healthOf(READY),
    logger: silentLogger(),
    ...extra,
  });
  t.teardown(() => server.close());
  return { server, metrics };
}

t.test('binds port 0 and reports the real port and url', async (t) => {
  const { server } = await start(t);
  t.ok(server.port > 0);
  t.equal(server.url, `http://127.0.0.1:${server.port}`);
});

t.test('GET /metrics serves the registry in the exposition format', async (t) => {
  const { server, metrics } = await start(t);
  metrics.connectionsOpen.set(3);
  const res = await fetch(`${server.url}/metrics`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), metrics.registry.contentType);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const body = await res.text();
  t.match(body, /^feedkeeper_connections_open 3$/m);
  t.match(body, /^# TYPE feedkeeper_reconnects_total counter$/m);
});

t.test('GET /healthz is ok while the loop is responsive', async (t) => {
  const { server } = await start(t);
  const res = await fetch(`${server.url}/healthz`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^application\/json/);
  t.equal(res.headers.get('cache-control'), 'no-store');
  t.same(await res.json(), { status: 'ok' });
});

t.test('GET /healthz is 503 with a reason after the loop was blocked past the limit', async (t) => {
  const { server } = await start(t, { eventLoop: { maxLagMs: 100, intervalMs: 20, windowMs: 60_000 } });
  await new Promise((r) => setTimeout(r, 50)); // let the monitor tick once
  const until = Date.now() + 300;
  while (Date.now() < until) {
    // block the event loop, as a synchronous hot spot would
  }
  await new Promise((r) => setTimeout(r, 50));
  const res = await fetch(`${server.url}/healthz`);
  t.equal(res.status, 503);
  const body = (await res.json()) as { status: string; reason: string; eventLoopLagMs: number };
  t.equal(body.status, 'unhealthy');
  t.match(body.reason, /event loop lag \d+ ms exceeded 100 ms/);
  t.ok(body.eventLoopLagMs >= 200, `lag ${body.eventLoopLagMs} ms`);
});

t.test('GET /healthz recovers once the lag leaves the window', async (t) => {
  const { server } = await start(t, { eventLoop: { maxLagMs: 100, intervalMs: 20, windowMs: 200 } });
  await new Promise((r) => setTimeout(r, 50));
  const until = Date.now() + 250;
  while (Date.now() < until) {
    // block
  }
  await new Promise((r) => setTimeout(r, 30));
  t.equal((await fetch(`${server.url}/healthz`)).status, 503);
  // 200 again once the blocked tick has left the 200 ms window: awaited, not slept for (a loaded
  // machine's own lag may keep it a little longer).
  t.ok(await waitUntil(async () => (await fetch(`${server.url}/healthz`)).status === 200, 5000), '200 again');
});

t.test('GET /readyz follows the health source', async (t) => {
  let current: Readiness = READY;
  const { server } = await start(t, { health: healthOf(() => current) });
  let res = await fetch(`${server.url}/readyz`);
  t.equal(res.status, 200);
  t.same(await res.json(), { status: 'ready', ...READY });

  current = { ready: false, reasons: ['1 of 2 connections not open', 'btcusdt@trade silent for 90 s'], connections: { planned: 2, open: 1 } };
  res = await fetch(`${server.url}/readyz`);
  t.equal(res.status, 503);
  t.same(await res.json(), { status: 'not_ready', ...current });
});

t.test('GET /readyz is 503 when the health source throws', async (t) => {
  const { server } = await start(t, {
    health: healthOf(() => {
      throw new Error('supervisor not started');
    }),
  });
  const res = await fetch(`${server.url}/readyz`);
  t.equal(res.status, 503);
  t.same(await res.json(), { status: 'not_ready', ready: false, reasons: ['readiness check failed'] });
});

t.test('GET /gaps is 404 when no gaps source is configured', async (t) => {
  const { server } = await start(t);
  const res = await fetch(`${server.url}/gaps`);
  t.equal(res.status, 404);
  t.same(await res.json(), { error: 'not_found', path: '/gaps' });
});

t.test('GET /gaps passes the query string and answers JSON', async (t) => {
  const seen: string[] = [];
  const { server } = await start(t, {
    gaps: async (q) => {
      seen.push(q.toString());
      if (q.get('since') === 'bad') throw new GapsQueryError('since: not a date');
      if (q.get('since') === 'boom') throw new Error('ledger file vanished: /var/lib/feedkeeper/ledger.ndjson');
      return { gaps: [{ stream: 'btcusdt@trade', cause: 'server_close', missed: 12 }] };
    },
  });
  let res = await fetch(`${server.url}/gaps?since=2026-07-09T06:00:00Z&stream=btcusdt%40trade`);
  t.equal(res.status, 200);
  t.same(await res.json(), { gaps: [{ stream: 'btcusdt@trade', cause: 'server_close', missed: 12 }] });
  t.same(seen, ['since=2026-07-09T06%3A00%3A00Z&stream=btcusdt%40trade']);

  res = await fetch(`${server.url}/gaps?since=bad`);
  t.equal(res.status, 400);
  t.same(await res.json(), { error: 'since: not a date' });

  res = await fetch(`${server.url}/gaps?since=boom`);
  t.equal(res.status, 500);
  const text = await res.text();
  t.same(JSON.parse(text), { error: 'internal_error' });
  t.notMatch(text, /var\/lib/, 'internal details stay in the log');
});

t.test('unknown paths are 404, other methods 405, HEAD like GET without a body', async (t) => {
  const { server } = await start(t);
  let res = await fetch(`${server.url}/`);
  t.equal(res.status, 404);
  await res.arrayBuffer();
  res = await fetch(`${server.url}/metrics/extra`);
  t.equal(res.status, 404);
  await res.arrayBuffer();
  res = await fetch(`${server.url}/nope`, { method: 'POST', body: 'x' });
  t.equal(res.status, 404, 'unknown path wins over the method');
  await res.arrayBuffer();
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    res = await fetch(`${server.url}/metrics`, { method });
    t.equal(res.status, 405, method);
    t.equal(res.headers.get('allow'), 'GET, HEAD');
    await res.arrayBuffer();
  }
  res = await fetch(`${server.url}/healthz`, { method: 'HEAD' });
  t.equal(res.status, 200);
  t.equal(await res.text(), '');
  res = await fetch(`${server.url}/healthz?verbose=1`);
  t.equal(res.status, 200, 'a query string does not change the route');
  await res.arrayBuffer();
});

t.test('a request target that is not a URL is answered 400', async (t) => {
  const { server } = await start(t);
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path: 'http://[', method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(status, 400);
});

t.test('close() resolves while a scraper holds a keep-alive connection', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false });
  const server = await startHttpServer({ host: '127.0.0.1', port: 0, metrics, health: healthOf(READY), logger: silentLogger() });
  const res = await fetch(`${server.url}/metrics`, { headers: { connection: 'keep-alive' } });
  await res.text();
  const started = Date.now();
  await server.close();
  t.ok(Date.now() - started < 1000, 'closed promptly');
  await server.close(); // idempotent
  await t.rejects(fetch(`${server.url}/healthz`));
});

t.test('a port in use is a config error naming metrics.port', async (t) => {
  const { server } = await start(t);
  const err = await startHttpServer({
    host: '127.0.0.1',
    port: server.port,
    metrics: createMetrics({ defaultMetrics: false }),
    health: healthOf(READY),
    logger: silentLogger(),
  }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof FeedkeeperError);
  t.match(err, { code: 'FK_ERR_CONFIG', key: 'metrics.port' });
});

const ipv6 = await new Promise<string | null>((resolve) => {
  const probe = createNetServer();
  probe.once('error', (err) => resolve(err.message));
  probe.listen(0, '::1', () => probe.close(() => resolve(null)));
});

t.test('listens on IPv6 loopback with a bracketed url', { skip: ipv6 === null ? false : `no IPv6 loopback here: ${ipv6}` }, async (t) => {
  const { server } = await start(t, { host: '::1' });
  t.equal(server.url, `http://[::1]:${server.port}`);
  t.equal((await fetch(`${server.url}/healthz`)).status, 200);
});
