import t, { type Test } from 'tap';
import { createHmac, generateKeyPairSync, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RestClient } from '../src/rest/client.js';
import { RestHostRegistry } from '../src/rest/hosts.js';
import { RestError } from '../src/rest/errors.js';
import { createMetrics, type Metrics } from '../src/metrics/registry.js';
import { silentLogger } from '../src/log.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  at: number;
}

/** A loopback HTTP server whose answers each test scripts. */
async function server(t: Test, handler: Handler) {
  const seen: Seen[] = [];
  let connections = 0;
  const srv = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ method: req.method ?? '', url, headers: req.headers, at: Date.now() });
    req.resume();
    handler(req, res, url);
  });
  srv.on('connection', () => connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen, connections: () => connections };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function client(t: Test, baseUrl: string, metrics: Metrics, extra: Partial<ConstructorParameters<typeof RestClient>[0]> = {}): RestClient {
  const c = new RestClient({ baseUrl, logger: silentLogger(), metrics, hosts: new RestHostRegistry(), ...extra });
  t.teardown(() => c.close());
  return c;
}

async function counter(m: Metrics, status: string): Promise<number> {
  const v = (await m.restRequests.get()).values.find((x) => x.labels.status === status);
  return v?.value ?? 0;
}

async function gauge(g: Metrics['restPaused'] | Metrics['restUsedWeight']): Promise<number> {
  return (await g.get()).values[0]?.value ?? 0;
}

t.test('tracks X-MBX-USED-WEIGHT-1M, counts 2xx, sends X-MBX-APIKEY, reuses one connection', async (t) => {
  let w = 0;
  const s = await server(t, (_req, res) => json(res, 200, { ok: true }, { 'X-MBX-USED-WEIGHT-1M': String((w += 5)) }));
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m, { apiKey: 'key-123' });
  t.same(await c.request('GET', '/api/v3/ping'), { ok: true });
  await c.request('GET', '/api/v3/ping', { query: { symbol: 'BTCUSDT', limit: 5, skip: undefined } });
  t.equal(await gauge(m.restUsedWeight), 10);
  t.equal(await counter(m, '2xx'), 2);
  t.equal(s.seen[0]!.headers['x-mbx-apikey'], 'key-123');
  t.equal(s.seen[1]!.url.search, '?symbol=BTCUSDT&limit=5');
  for (let i = 0; i < 8; i++) await c.request('GET', '/api/v3/ping');
  t.ok(s.connections() <= 2, `10 calls over ${s.connections()} connection(s): the pool keeps them`);
});

t.test('maps Binance error bodies to FK_ERR_REST with status and binanceCode', async (t) => {
  const s = await server(t, (_req, res, url) => {
    if (url.pathname === '/bad') json(res, 400, { code: -1125, msg: 'This listenKey does not exist.' });
    else {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    }
  });
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m);
  const err = await c.request('PUT', '/bad').catch((e: unknown) => e);
  t.type(err, RestError);
  t.match(err, { code: 'FK_ERR_REST', status: 400, binanceCode: -1125 });
  t.match((err as Error).message, /PUT \/bad .*400.*-1125/);
  const err2 = await c.request('GET', '/gateway').catch((e: unknown) => e);
  t.match(err2, { code: 'FK_ERR_REST', status: 502, binanceCode: null });
  t.equal(await counter(m, '4xx'), 1);
  t.equal(await counter(m, '5xx'), 1);
  t.equal(s.seen.length, 2, 'errors other than 429/418 are not retried');
});

t.test('429: waits Retry-After, pauses the host, retries, succeeds', async (t) => {
  let n = 0;
  const s = await server(t, (_req, res) => {
    if (n++ === 0) json(res, 429, { code: -1003, msg: 'Too much request weight used' }, { 'Retry-After': '1' });
    else json(res, 200, { ok: n });
  });
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m);
  const started = Date.now();
  const p = c.request<{ ok: number }>('GET', '/x');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(await gauge(m.restPaused), 1, 'restPaused while backing off');
  t.same(await p, { ok: 2 });
  const waited = s.seen[1]!.at - s.seen[0]!.at;
  t.ok(waited >= 900 && waited < 3000, `retried after Retry-After (${waited} ms)`);
  t.ok(Date.now() - started >= 900);
  t.equal(await counter(m, '429'), 1);
  t.equal(await counter(m, '2xx'), 1);
  t.equal(await gauge(m.restPaused), 0, 'pause over');
});

t.test('429: gives up after maxRetries with the 429 error', async (t) => {
  const s = await server(t, (_req, res) => json(res, 429, { code: -1003, msg: 'slow down' }, { 'Retry-After': '0' }));
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m, { maxRetries: 2 });
  const err = await c.request('GET', '/x').catch((e: unknown) => e);
  t.match(err, { code: 'FK_ERR_REST', status: 429, binanceCode: -1003 });
  t.equal(s.seen.length, 3, 'one try plus two retries');
});

t.test('418: every call through every client of the host waits until Retry-After', async (t) => {
  let banned = true;
  const s = await server(t, (_req, res) => {
    if (banned) {
      banned = false;
      json(res, 418, { code: -1003, msg: 'Way too much request weight used; IP banned' }, { 'Retry-After': '1' });
    } else json(res, 200, {});
  });
  const m = createMetrics({ defaultMetrics: false });
  const hosts = new RestHostRegistry();
  const a = client(t, s.url, m, { hosts });
  const b = client(t, `${s.url}/other-base`, m, { hosts });
  const t0 = Date.now();
  const pa = a.request('GET', '/a');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await gauge(m.restPaused), 1, 'restPaused = 1 during the ban');
  const pb = b.request('GET', '/b');
  const pc = a.request('GET', '/c');
  await Promise.all([pa, pb, pc]);
  const elapsed = Date.now() - t0;
  t.ok(elapsed >= 900 && elapsed < 3000, `calls resumed after the ban (${elapsed} ms)`);
  const after = s.seen.slice(1);
  t.equal(after.length, 3, 'the banned call was retried and the two others went once');
  for (const r of after) t.ok(r.at - s.seen[0]!.at >= 900, `${r.url.pathname} was held back (${r.at - s.seen[0]!.at} ms)`);
  t.equal(await counter(m, '418'), 1);
  t.equal(await gauge(m.restPaused), 0);
});

t.test('418 longer than maxBanWaitMs: calls fail fast with FK_ERR_REST_BANNED and send nothing', async (t) => {
  const s = await server(t, (_req, res) => json(res, 418, { code: -1003, msg: 'banned' }, { 'Retry-After': '3600' }));
  const m = createMetrics({ defaultMetrics: false });
  const hosts = new RestHostRegistry();
  const a = client(t, s.url, m, { hosts });
  const b = client(t, s.url, m, { hosts });
  const err = await a.request('GET', '/a').catch((e: unknown) => e);
  t.match(err, { code: 'FK_ERR_REST_BANNED' });
  t.ok((err as { retryAfterMs: number }).retryAfterMs > 3_500_000);
  const t0 = Date.now();
  const err2 = await b.request('GET', '/b').catch((e: unknown) => e);
  t.match(err2, { code: 'FK_ERR_REST_BANNED' });
  t.ok(Date.now() - t0 < 200, 'failed fast');
  t.equal(s.seen.length, 1, 'nothing sent while banned');
  t.equal(await gauge(m.restPaused), 1);
});

t.test('a call waiting out a pause is cancelled by its AbortSignal', async (t) => {
  const s = await server(t, (_req, res) => json(res, 418, { code: -1003, msg: 'banned' }, { 'Retry-After': '30' }));
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m);
  const first = c.request('GET', '/a', { signal: AbortSignal.timeout(150) }).catch((e: unknown) => e);
  const t0 = Date.now();
  t.match(await first, { code: 'FK_ERR_ABORTED' });
  t.ok(Date.now() - t0 < 1000);
  const ac = new AbortController();
  const second = c.request('GET', '/b', { signal: ac.signal }).catch((e: unknown) => e);
  setTimeout(() => ac.abort(), 50);
  t.match(await second, { code: 'FK_ERR_ABORTED' });
  t.equal(s.seen.length, 1);
});

t.test('timeouts: no headers within timeoutMs → FK_ERR_REST with status null, counted as error', async (t) => {
  const s = await server(t, (_req, res) => {
    setTimeout(() => json(res, 200, {}), 2000).unref();
  });
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m, { timeoutMs: 200 });
  const t0 = Date.now();
  const err = await c.request('GET', '/slow').catch((e: unknown) => e);
  t.match(err, { code: 'FK_ERR_REST', status: null });
  t.match((err as Error).message, /UND_ERR_HEADERS_TIMEOUT/);
  t.ok(Date.now() - t0 < 1500, 'gave up at the timeout');
  t.equal(await counter(m, 'error'), 1);
});

t.test('timeouts: a body that stalls → FK_ERR_REST', async (t) => {
  const s = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"a":');
  });
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m, { timeoutMs: 200 });
  const err = await c.request('GET', '/stall').catch((e: unknown) => e);
  t.match(err, { code: 'FK_ERR_REST', status: null });
});

t.test('connection refused → FK_ERR_REST, status null', async (t) => {
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, 'http://127.0.0.1:1', m, { timeoutMs: 500 });
  const err = await c.request('GET', '/x').catch((e: unknown) => e);
  t.match(err, { code: 'FK_ERR_REST', status: null });
});

t.test('signed calls: HMAC hex and Ed25519 base64 over the query string, with timestamp', async (t) => {
  const secret = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const s = await server(t, (_req, res) => json(res, 200, {}));
  const m = createMetrics({ defaultMetrics: false });
  const c = client(t, s.url, m, { apiKey: 'k' });

  await c.request('GET', '/api/v3/account', { signed: true, secret, query: { omitZeroBalances: true }, recvWindow: 5000 });
  const q1 = s.seen[0]!.url.search.slice(1);
  const [payload1, sig1] = q1.split('&signature=') as [string, string];
  t.match(payload1, /^omitZeroBalances=true&recvWindow=5000&timestamp=\d+$/);
  t.equal(sig1, createHmac('sha256', secret).update(payload1).digest('hex'));

  await c.request('GET', '/api/v3/account', { signed: true, secret: pem });
  const q2 = s.seen[1]!.url.search.slice(1);
  const [payload2, sig2] = q2.split('&signature=') as [string, string];
  t.ok(verify(null, Buffer.from(payload2), publicKey, Buffer.from(decodeURIComponent(sig2), 'base64')), 'Ed25519 signature verifies');

  const err = await c.request('GET', '/api/v3/account', { signed: true }).catch((e: unknown) => e);
  t.match(err, { code: 'FK_ERR_SECRET' });
});

t.test('weightLimit: a call that would overspend the minute waits for the next one', async (t) => {
  const s = await server(t, (_req, res) => json(res, 200, {}, { 'X-MBX-USED-WEIGHT-1M': '2390' }));
  const m = createMetrics({ defaultMetrics: false });
  // A clock 300 ms before a minute boundary, so the wait is short.
  const start = Date.now();
  const base = Math.ceil(start / 60_000) * 60_000 + 60_000 - 300;
  const clock = {
    now: () => base + (Date.now() - start),
    setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
    clearTimeout: (h: ReturnType<typeof setTimeout> | undefined) => clearTimeout(h),
  };
  const c = client(t, s.url, m, { clock, weightLimit: 2400 });
  await c.request('GET', '/a');
  const t0 = Date.now();
  await c.request('GET', '/b', { weight: 5 });
  t.ok(Date.now() - t0 < 200, 'within budget: no wait');
  const t1 = Date.now();
  await c.request('GET', '/c', { weight: 20 });
  const waited = Date.now() - t1;
  t.ok(waited >= 150 && waited < 1000, `waited for the next minute (${waited} ms)`);
});
