import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '../src/simulator/index.js';
import { installUserDataSimulator } from '../src/simulator/userdata/index.js';
import { until, writeTestConfig } from './helpers/stack.js';

const CLI = new URL('../dist/src/cli/main.js', import.meta.url).pathname;
const API_KEY = 'secretApiKeyZ9y8x7w6v5u4t3s2r1q0ponmlkjihgfedcbaZYXWVUTSRQPONMLK';
const API_SECRET = 'secretApiSecretQ1w2e3r4t5y6u7i8o9p0asdfghjklzxcvbnmQWERTYUIOPAS';

t.test('the API key, the secret and the full listen key appear nowhere: stdout, stderr, /metrics, /gaps', async (t) => {
  const sim = await startSimulator({ venue: 'binance-usdm', eventsPerSecond: 2 });
  const ud = installUserDataSimulator(sim, { apiKeys: [{ apiKey: API_KEY }], listenKeyTtlMs: 4000 });
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-secrets-'));
  t.teardown(async () => {
    ud.close();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = writeTestConfig(dir, sim, {
    venue: 'binance-usdm',
    symbols: ['BTCUSDT'],
    streams: ['aggTrade'],
    log: { level: 'trace' },
    userData: { enabled: true, keepaliveCron: '* * * * * *' },
  });
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], {
    env: { PATH: process.env.PATH, FEEDKEEPER_API_KEY: API_KEY, FEEDKEEPER_API_SECRET: API_SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.ok(await until(() => /"event":"http_listening"/.test(out), 10_000), 'daemon up');
  const url = /"url":"(http:[^"]+)"/.exec(out)![1]!;
  const keys = new Set<string>();
  const collect = () => ud.keys().forEach((k) => keys.add(k.listenKey));
  t.ok(await until(() => (collect(), keys.size > 0), 5000), 'listen key issued');
  // Let it live through keepalives and one expiry and renewal, logging at trace level: awaited at the exchange.
  t.ok(await until(() => ud.counters.put >= 1, 5000), 'a cron keepalive');
  collect();
  ud.expire([...keys][0]!);
  t.ok(await until(() => (collect(), keys.size >= 2), 5000), 'renewed after expiry');
  const puts = ud.counters.put;
  t.ok(await until(() => ud.counters.put > puts, 5000), 'the new key kept alive');
  let gaps = '';
  t.ok(await until(async () => /listen_key_expired/.test((gaps = await (await fetch(`${url}/gaps`)).text())), 5000), '/gaps shows the interruption');
  const metrics = await (await fetch(`${url}/metrics`)).text();
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');
  collect();
  const everything = { stdout: out, stderr: err, metrics, gaps };
  t.ok(out.length > 1000, `${out.length} bytes of trace logs examined`);
  for (const [where, text] of Object.entries(everything)) {
    t.notOk(text.includes(API_KEY), `no API key in ${where}`);
    t.notOk(text.includes(API_SECRET), `no API secret in ${where}`);
    for (const k of keys) t.notOk(text.includes(k), `no full listen key in ${where}`);
  }
});
