import t from 'tap';
import { WebSocket } from 'ws';
import { once } from 'node:events';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics/registry.js';
import { RestClient } from '../src/rest/client.js';
import { RestHostRegistry } from '../src/rest/hosts.js';
import { ListenKeyManager, type ListenKeyRenewed } from '../src/userdata/listen-key.js';
import { loadCredentials } from '../src/userdata/secrets.js';
import { parseFuturesUserDataMessage, privateStreamUrl } from '../src/userdata/futures-stream.js';
import { installUserDataSimulator } from '../src/simulator/userdata/index.js';
import { startSimulator } from '../src/simulator/index.js';

const KEY = 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A';
const SECRET = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';

t.test('at level trace, no log line carries the API key, the secret or a full listen key', async (t) => {
  let out = '';
  const logger = createLogger('trace', { write: (s: string) => void (out += s) });
  const host = await startSimulator({ venue: 'binance-usdm', eventsPerSecond: 0 });
  const sim = installUserDataSimulator(host, { apiKeys: [{ apiKey: KEY, secret: SECRET }] });
  const metrics = createMetrics({ defaultMetrics: false });
  const creds = loadCredentials({ userData: { enabled: true, keepaliveCron: '', apiKeyFile: '', apiSecretFile: '', apiKey: '', apiSecret: '', events: [] } }, {
    FEEDKEEPER_API_KEY: KEY,
    FEEDKEEPER_API_SECRET: SECRET,
  })!;
  const rest = new RestClient({ baseUrl: host.httpUrl, logger, metrics, apiKey: creds.apiKey, hosts: new RestHostRegistry() });
  const m = new ListenKeyManager({ rest, path: '/fapi/v1/listenKey', keepaliveCron: '* * * * * *', logger, metrics, retry: { initialMs: 50, maxMs: 200 } });
  const keys = new Set<string>();
  m.on('renewed', (e: ListenKeyRenewed) => keys.add(e.key));
  t.teardown(async () => {
    await m.stop();
    await rest.close();
    sim.close();
    await host.close();
  });

  const first = await m.start();
  keys.add(first);
  t.match(await once(m, 'keepalive'), [{ outcome: 'ok' }], 'a cron keepalive');

  sim.failRest(2, 500); // failed PUTs, retried
  await m.keepalive();

  sim.expire(m.current()!); // -1125 → renew
  await m.keepalive();

  // listenKeyExpired from the private stream → notifyExpired → renew
  const ws = new WebSocket(privateStreamUrl(host.wsUrl, m.current()!, ['ORDER_TRADE_UPDATE']));
  await once(ws, 'open');
  ws.on('message', (d) => {
    const msg = parseFuturesUserDataMessage(d.toString());
    if (msg.kind === 'expired') m.notifyExpired(msg.listenKey);
  });
  const renewed = once(m, 'renewed');
  sim.expire(m.current()!);
  await renewed;
  await once(ws, 'close').catch(() => undefined);

  sim.rateLimitRest(1, 0); // 429, retried
  await m.keepalive();

  // Signed calls, one failing.
  await rest.request('POST', '/fapi/v1/listenKey', { signed: true, secret: SECRET });
  sim.failRest(1, 400);
  await rest.request('POST', '/fapi/v1/listenKey', { signed: true, secret: SECRET }).catch(() => undefined);

  // Accidents a careless caller could commit: redaction and the credentials' toJSON catch them.
  logger.info({ credentials: creds }, 'credentials in a log object');
  logger.info({ apiKey: KEY, listenKey: first, req: { headers: { 'x-mbx-apikey': KEY } } }, 'keys in a log object');

  await m.stop();
  for (const k of sim.keys()) keys.add(k.listenKey);

  t.ok(keys.size >= 3, `${keys.size} listen keys were issued`);
  const lines = out.trim().split('\n');
  t.ok(lines.length > 20, `${lines.length} log lines written`);
  t.match(out, /listen key renewed/);
  t.match(out, /"reason":"unknown_key"/);
  t.match(out, /"reason":"expired"/);
  t.match(out, /keepalive failed: retrying/);
  t.match(out, /REST rate limited/);
  t.match(out, new RegExp(`"listenKeyPrefix":"${first.slice(0, 4)}…"`), 'the prefix is there');
  t.notOk(out.includes(KEY), 'no API key');
  t.notOk(out.includes(SECRET), 'no secret');
  for (const k of keys) t.notOk(out.includes(k), `no full listen key ${k.slice(0, 4)}…`);
  t.notOk(/signature=/.test(out), 'no signed query string');
});
