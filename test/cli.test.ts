import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';

const CLI = 'dist/src/cli/main.js';

// `npm test` builds first; build here only when dist is missing (a lone `npx tap test/cli.test.ts`).
// Type errors elsewhere in the tree do not stop tsc from emitting, so only the output is checked.
if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', '.'], { stdio: 'ignore' });
if (!existsSync(CLI)) throw new Error(`${CLI} missing: build with npx tsc -p .`);

const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A loopback server that stands in for every Binance endpoint (streams, REST, WebSocket API) and
 * counts each TCP connection made to it, upgraded or not.
 */
const server: Server = createServer((_req, res) => res.end('{}'));
const wss = new WebSocketServer({ server });
let tcpConnections = 0;
let wsConnections = 0;
server.on('connection', () => tcpConnections++);
wss.on('connection', () => wsConnections++);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
t.teardown(() => {
  for (const c of wss.clients) c.terminate();
  wss.close();
  server.close();
});

/** A config pointing everything at the loopback server and the temp dir. */
function writeConfig(name: string, over: Record<string, unknown>): string {
  const base = {
    endpoints: { stream: `ws://127.0.0.1:${port}`, rest: `http://127.0.0.1:${port}`, wsApi: `ws://127.0.0.1:${port}/ws-api/v3` },
    symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'],
    streams: ['trade', 'bookTicker'],
    recorder: { dir: join(dir, name, 'recordings') },
    ledger: { path: join(dir, name, 'ledger.ndjson'), statePath: join(dir, name, 'state.json') },
    metrics: { enabled: false },
    maintenance: { statusPollMs: 0 },
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = merged[k];
    merged[k] = typeof b === 'object' && b !== null && !Array.isArray(b) && typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...b, ...v } : v;
  }
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(merged, null, 2));
  return path;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI; FEEDKEEPER_* variables of the test's own environment are not passed on. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FEEDKEEPER_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const badConfigs: Array<{ name: string; over: Record<string, unknown>; line: RegExp }> = [
  {
    name: 'unknown key',
    over: { limits: { streamsPerConection: 100 } },
    line: /^feedkeeper: config error: limits\.streamsPerConection: unknown key/,
  },
  {
    name: 'bad symbol',
    over: { symbols: ['BTCUSDT', 'BTC/USDT'] },
    line: /^feedkeeper: config error: symbols: "BTC\/USDT" \(item 2\) is not a valid binance-spot symbol/,
  },
  {
    name: 'unknown stream type',
    over: { streams: ['trade', 'depth@250ms'] },
    line: /^feedkeeper: config error: streams: unknown stream type "depth@250ms"/,
  },
  {
    name: 'over budget',
    over: { limits: { streamsPerConnection: 2, connectionAttempts: 2 } },
    line: /^feedkeeper: plan error: the plan needs 3 connections .* split the symbols across 2 hosts \(IPs\)/i,
  },
];

for (const { name, over, line } of badConfigs) {
  t.test(`run with a bad config (${name}): exit 2, one line naming the key, nothing connected`, async (t) => {
    const before = tcpConnections;
    const config = writeConfig(name.replace(/\W+/g, '-'), over);
    const r = await cli(['run', '--config', config]);
    t.equal(r.code, 2);
    t.match(r.stderr, line);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr');
    t.equal(r.stdout, '', 'no log output: the logger was never created');
    t.equal(tcpConnections - before, 0, 'no TCP connection reached the stand-in endpoint');
    t.equal(wsConnections, 0, 'no WebSocket connection');
    t.notOk(existsSync(join(dir, name.replace(/\W+/g, '-'))), 'no recording or ledger directory created');
  });
}

t.test('run: config error from the environment, unreadable file', async (t) => {
  const config = writeConfig('env-bad', {});
  let r = await cli(['run', '--config', config], { FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION: '-3' });
  t.equal(r.code, 2);
  t.match(r.stderr, /^feedkeeper: config error: limits\.streamsPerConnection: must be a positive integer, got -3 \(from FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION\)/);

  r = await cli(['run', '--config', join(dir, 'nope.json')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^feedkeeper: config error: .*nope\.json: cannot read config file/);
  t.equal(tcpConnections, 0);
});

t.test('plan prints the connections and the share of each limit', async (t) => {
  const config = writeConfig('plan', { symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT'], limits: { streamsPerConnection: 4 } });
  const r = await cli(['plan', '--config', config]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /binance-spot: 5 symbols × 2 stream types = 10 streams on 3 connections/);
  t.match(r.stdout, /c0\s+\/stream\s+4\s+2\s+BTCUSDT \.\. ETHUSDT/);
  t.match(r.stdout, /c1\s+\/stream\s+4\s+2\s+SOLUSDT \.\. BNBUSDT/);
  t.match(r.stdout, /c2\s+\/stream\s+2\s+1\s+XRPUSDT/);
  t.match(r.stdout, /streams per connection \(max\)\s+4 of 4\s+100%/);
  t.match(r.stdout, /connection attempts per 300 s\s+3 of 300\s+1%/);
  t.match(r.stdout, /SUBSCRIBE messages per connection/);

  const j = await cli(['plan', '--config', config, '--json']);
  t.equal(j.code, 0);
  const parsed = JSON.parse(j.stdout) as { venue: string; connections: Array<{ id: string; streams: string[] }> };
  t.equal(parsed.venue, 'binance-spot');
  t.same(parsed.connections[2], { id: 'c2', path: '/stream', symbols: ['XRPUSDT'], streams: ['xrpusdt@trade', 'xrpusdt@bookTicker'] });
  t.equal(tcpConnections, 0, 'plan connects to nothing');
});

t.test('--help, --version, usage errors', async (t) => {
  let r = await cli(['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: feedkeeper <command> \[options\]/);
  t.match(r.stdout, /\n\s+run\s+/);
  t.match(r.stdout, /\n\s+plan\s+/);

  r = await cli(['run', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Usage: feedkeeper run --config FILE/);

  r = await cli(['--version']);
  t.equal(r.code, 0);
  t.equal(r.stdout.trim(), (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);

  r = await cli([]);
  t.equal(r.code, 2);
  t.match(r.stderr, /Usage: feedkeeper/);

  r = await cli(['frobnicate']);
  t.equal(r.code, 2);
  t.match(r.stderr, /^feedkeeper: unknown command frobnicate/);

  r = await cli(['plan', '--bogus']);
  t.equal(r.code, 2);
  t.match(r.stderr, /^feedkeeper: unknown option --bogus/);
  t.match(r.stderr, /Usage: feedkeeper plan/);

  r = await cli(['run']);
  t.equal(r.code, 2);
  t.match(r.stderr, /run needs at least one --config FILE/);
});
