import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { configKeys, envName } from '../src/config/schema.js';
import { ConfigError, ErrorCodes } from '../src/errors.js';

const SECRET = 'Zx9-very-secret-value-Qq7';

const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;

/** Write config files (objects as JSON, strings as they are), mode 0644; returns their paths. */
function files(...objs: Array<unknown>): string[] {
  return objs.map((o) => {
    const p = join(dir, `c${fileCount++}.json`);
    writeFileSync(p, typeof o === 'string' ? o : JSON.stringify(o));
    chmodSync(p, 0o644);
    return p;
  });
}

/** The ConfigError fn throws; anything else (or nothing) fails the test. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError && err.code === ErrorCodes.FK_ERR_CONFIG) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

t.test('defaults', async (t) => {
  const c = loadConfig({ files: [], env: {} });
  t.equal(c.venue, 'binance-spot');
  t.same(c.symbols, ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT', 'DOGEUSDT']);
  t.same(c.streams, ['trade', 'bookTicker']);
  t.same(c.endpoints, {
    stream: 'wss://stream.binance.com:9443',
    rest: 'https://api.binance.com',
    wsApi: 'wss://ws-api.binance.com:443/ws-api/v3',
  });
  t.same(c.limits, { streamsPerConnection: 1024, connectionAttempts: 300, connectionAttemptWindowMs: 300_000, messagesPerSecond: 5, streamsPerSubscribe: 200 });
  t.same(c.connection, {
    staleAfterMs: 30_000,
    maxLifetimeMs: 86_400_000,
    pingIntervalMs: 0,
    rotateBeforeMs: 300_000,
    switchoverTimeoutMs: 10_000,
    handshakeTimeoutMs: 10_000,
    probeIntervalMs: 1000,
    readThreads: 0,
    backoff: { initialMs: 1000, maxMs: 60_000, multiplier: 2 },
  });
  t.same(c.recorder, { enabled: true, dir: './data/recordings', maxBufferBytes: 67_108_864, flushIntervalMs: 100, fsyncIntervalMs: 1000, holdReadsMs: 2000, rotateEveryMs: 3_600_000, compress: 'gzip', compressLevel: 6 });
  t.same(c.ledger, { path: './data/ledger.ndjson', statePath: './data/ledger.state.json' }, 'the checkpoint beside the ledger');
  t.same(c.maintenance, {
    windows: [
      {
        start: '2026-07-09T07:00:00Z',
        end: '2026-07-09T08:00:00Z',
        reason: 'Binance Spot API infrastructure upgrade (announced for 2026-07-09 07:00 UTC, up to 1 h)',
      },
    ],
    statusPollMs: 60_000,
  });
  t.same(c.health, { silentAfterMs: 25_000 });
  t.same(c.metrics, { enabled: true, host: '127.0.0.1', port: 9464, reload: true, reloadAllow: [] });
  t.same(c.universe, { refreshMs: 600_000 });
  t.same(c.silence, { afterMs: 15_000, cadences: 10 });
  t.equal(c.symbolsFrom, null);
  t.same(c.log, { level: 'info' });
  t.same(c.userData, {
    enabled: false,
    keepaliveCron: '0 */30 * * * *',
    apiKeyFile: '',
    apiSecretFile: '',
    apiKey: '',
    apiSecret: '',
    events: ['ORDER_TRADE_UPDATE', 'ACCOUNT_UPDATE'],
  });
});

t.test('the result is frozen all the way down', async (t) => {
  const c = loadConfig({ files: [], env: {} });
  t.ok(Object.isFrozen(c));
  t.ok(Object.isFrozen(c.connection.backoff));
  t.ok(Object.isFrozen(c.symbols));
  t.ok(Object.isFrozen(c.maintenance.windows[0]));
  t.throws(() => {
    (c.limits as { streamsPerConnection: number }).streamsPerConnection = 1;
  });
});

t.test('config/default.json and config/example-full.json', async (t) => {
  const def = loadConfig({ files: ['config/default.json'], env: {} });
  t.same(def.streams, ['trade', 'bookTicker']);
  t.equal(def.symbols.length, 6);
  t.equal(def.endpoints.stream, 'wss://stream.binance.com:9443');

  // example-full spells out every key with its (spot) default.
  t.same(loadConfig({ files: ['config/example-full.json'], env: {} }), loadConfig({ files: [], env: {} }));
  const { readFileSync } = await import('node:fs');
  const full = JSON.parse(readFileSync('config/example-full.json', 'utf8')) as Record<string, unknown>;
  for (const { key } of configKeys()) {
    const present = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], full) !== undefined;
    t.ok(present, `config/example-full.json has ${key}`);
  }
});

t.test('files apply in order, key by key; lists are replaced', async (t) => {
  const [a, b] = files(
    { symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'], limits: { streamsPerSubscribe: 100 }, connection: { backoff: { maxMs: 30_000 } } },
    { symbols: ['ADAUSDT'], limits: { streamsPerSubscribe: 50 } },
  );
  const c = loadConfig({ files: [a!, b!], env: {} });
  t.same(c.symbols, ['ADAUSDT']);
  t.equal(c.limits.streamsPerSubscribe, 50);
  t.equal(c.connection.backoff.maxMs, 30_000, 'a key only the first file sets survives');
  t.equal(c.connection.backoff.initialMs, 1000);
  const reversed = loadConfig({ files: [b!, a!], env: {} });
  t.same(reversed.symbols, ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
  t.equal(reversed.limits.streamsPerSubscribe, 100);
});

t.test('environment variables win over files', async (t) => {
  const [a] = files({ limits: { streamsPerConnection: 100 }, symbols: ['BTCUSDT'] });
  const c = loadConfig({
    files: [a!],
    env: {
      FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION: '500',
      FEEDKEEPER_SYMBOLS: 'btcusdt, ethusdt,solusdt',
      FEEDKEEPER_CONNECTION_BACKOFF_INITIAL_MS: '250',
      FEEDKEEPER_RECORDER_ENABLED: 'false',
      FEEDKEEPER_LOG_LEVEL: 'debug',
      FEEDKEEPER_MAINTENANCE_WINDOWS: '[{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T01:00:00Z","reason":"test"}]',
      PATH: '/usr/bin',
    },
  });
  t.equal(c.limits.streamsPerConnection, 500, 'scalar');
  t.same(c.symbols, ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'], 'comma-separated list, upper-cased');
  t.equal(c.connection.backoff.initialMs, 250, 'nested key');
  t.equal(c.recorder.enabled, false, 'boolean');
  t.equal(c.log.level, 'debug');
  t.same(c.maintenance.windows, [{ start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z', reason: 'test' }]);

  const json = loadConfig({ files: [], env: { FEEDKEEPER_SYMBOLS: '["BNBUSDT","XRPUSDT"]', FEEDKEEPER_STREAMS: '["aggTrade"]' } });
  t.same(json.symbols, ['BNBUSDT', 'XRPUSDT'], 'JSON array list');
  t.same(json.streams, ['aggTrade']);
});

t.test('environment variable names', async (t) => {
  t.equal(envName('limits.streamsPerConnection'), 'FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION');
  t.equal(envName('symbols'), 'FEEDKEEPER_SYMBOLS');
  t.equal(envName('maintenance.windows'), 'FEEDKEEPER_MAINTENANCE_WINDOWS');
  t.equal(envName('userData.apiKeyFile'), 'FEEDKEEPER_USER_DATA_API_KEY_FILE');
  t.equal(envName('endpoints.wsApi'), 'FEEDKEEPER_ENDPOINTS_WS_API');
  const names = configKeys().map((k) => k.env);
  t.equal(new Set(names).size, names.length, 'one variable per key');
  t.notOk(names.includes('FEEDKEEPER_API_KEY'), 'FEEDKEEPER_API_KEY is not a config key');
});

t.test('unknown and malformed environment variables', async (t) => {
  let e = configError(() => loadConfig({ files: [], env: { FEEDKEEPER_LIMITS_STREAMS_PER_CONECTION: '5' } }));
  t.equal(e.key, 'FEEDKEEPER_LIMITS_STREAMS_PER_CONECTION');
  t.match(e.message, /did you mean FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION/);

  e = configError(() => loadConfig({ files: [], env: { FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION: 'abc' } }));
  t.equal(e.key, 'limits.streamsPerConnection');
  t.match(e.message, /must be a positive integer, got "abc" \(from FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION\)/);

  e = configError(() => loadConfig({ files: [], env: { FEEDKEEPER_MAINTENANCE_WINDOWS: '[{' } }));
  t.equal(e.key, 'maintenance.windows');
  t.match(e.message, /FEEDKEEPER_MAINTENANCE_WINDOWS is not valid JSON/);

  e = configError(() => loadConfig({ files: [], env: { FEEDKEEPER_SYMBOLS: '["BTCUSDT",' } }));
  t.equal(e.key, 'symbols');

  // The credential variables are read by src/userdata, not refused as unknown.
  const c = loadConfig({ files: [], env: { FEEDKEEPER_API_KEY: SECRET, FEEDKEEPER_API_SECRET: SECRET } });
  t.equal(c.userData.apiKey, '');
});

interface BadCase {
  name: string;
  file?: unknown;
  env?: Record<string, string>;
  key: string;
  message: RegExp;
}

const bad: BadCase[] = [
  { name: "unknown top-level key", file: { symbol: ["BTCUSDT"] }, key: "symbol", message: /unknown key \(in .*c\d+\.json\); did you mean symbols\?/ },
  { name: 'unknown nested key', file: { limits: { streamsPerConection: 5 } }, key: 'limits.streamsPerConection', message: /unknown key.*did you mean limits\.streamsPerConnection/ },
  { name: 'branch given a scalar', file: { limits: 5 }, key: 'limits', message: /must be an object, got number/ },
  { name: 'negative limit', file: { limits: { streamsPerConnection: -3 } }, key: 'limits.streamsPerConnection', message: /^limits\.streamsPerConnection: must be a positive integer, got -3/ },
  { name: 'zero limit', file: { limits: { streamsPerSubscribe: 0 } }, key: 'limits.streamsPerSubscribe', message: /must be a positive integer, got 0/ },
  { name: 'fractional limit', file: { limits: { connectionAttempts: 2.5 } }, key: 'limits.connectionAttempts', message: /positive integer, got 2.5/ },
  { name: 'number as string in a file', file: { connection: { staleAfterMs: '5000' } }, key: 'connection.staleAfterMs', message: /got "5000"/ },
  { name: 'bad symbol', file: { symbols: ['BTCUSDT', 'BTC-USDT'] }, key: 'symbols', message: /"BTC-USDT" \(item 2\) is not a valid binance-spot symbol/ },
  { name: 'symbol listed twice (case-insensitively)', file: { symbols: ['BTCUSDT', 'ethusdt', 'ETHUSDT'] }, key: 'symbols', message: /ETHUSDT is listed twice/ },
  { name: 'no symbols', file: { symbols: [] }, key: 'symbols', message: /at least one symbol/ },
  { name: 'unknown stream type', file: { streams: ['trade', 'depth@250ms'] }, key: 'streams', message: /unknown stream type "depth@250ms" for binance-spot/ },
  { name: 'stream type listed twice', file: { streams: ['trade', 'trade'] }, key: 'streams', message: /listed twice/ },
  { name: 'unknown venue', file: { venue: 'kraken-spot' }, key: 'venue', message: /must be one of binance-spot, binance-usdm, binance-coinm/ },
  { name: 'stream endpoint not ws', file: { endpoints: { stream: 'https://stream.binance.com' } }, key: 'endpoints.stream', message: /must be a ws:\/\/ or wss:\/\/ URL/ },
  { name: 'stream endpoint not a URL', file: { endpoints: { stream: 'stream.binance.com:9443' } }, key: 'endpoints.stream', message: /URL/ },
  { name: 'rest endpoint not http', file: { endpoints: { rest: 'wss://api.binance.com' } }, key: 'endpoints.rest', message: /http:\/\/ or https:\/\/ URL/ },
  { name: 'wsApi endpoint not ws', file: { endpoints: { wsApi: 'ftp://x' } }, key: 'endpoints.wsApi', message: /ws:\/\// },
  { name: 'endpoint with credentials', file: { endpoints: { rest: 'https://user:pw@api.binance.com' } }, key: 'endpoints.rest', message: /must not carry credentials/ },
  { name: 'rotateBeforeMs >= maxLifetimeMs', file: { connection: { rotateBeforeMs: 86_400_000 } }, key: 'connection.rotateBeforeMs', message: /less than connection\.maxLifetimeMs/ },
  { name: 'rotateBeforeMs too short for a switch-over', file: { connection: { rotateBeforeMs: 5000 } }, key: 'connection.rotateBeforeMs', message: /handshake and the switch-over/ },
  { name: 'lifetime past the venue', file: { connection: { maxLifetimeMs: 100_000_000 } }, key: 'connection.maxLifetimeMs', message: /at most 86400000/ },
  { name: 'backoff max below initial', file: { connection: { backoff: { initialMs: 5000, maxMs: 1000 } } }, key: 'connection.backoff.maxMs', message: /at least connection\.backoff\.initialMs/ },
  { name: 'backoff multiplier below 1', file: { connection: { backoff: { multiplier: 0.5 } } }, key: 'connection.backoff.multiplier', message: /number >= 1/ },
  { name: 'limit above the venue', file: { limits: { streamsPerConnection: 2000 } }, key: 'limits.streamsPerConnection', message: /at most 1024/ },
  { name: 'message rate above the venue', file: { limits: { messagesPerSecond: 6 } }, key: 'limits.messagesPerSecond', message: /at most 5/ },
  { name: 'no slot left for pongs', file: { limits: { messagesPerSecond: 1 } }, key: 'limits.messagesPerSecond', message: /at least 2/ },
  { name: 'attempt window shorter than the venue', file: { limits: { connectionAttemptWindowMs: 60_000 } }, key: 'limits.connectionAttemptWindowMs', message: /at least 300000/ },
  {
    name: 'window end before start',
    file: { maintenance: { windows: [{ start: '2026-07-09T08:00:00Z', end: '2026-07-09T07:00:00Z', reason: 'x' }] } },
    key: 'maintenance.windows[0].end',
    message: /must be after start/,
  },
  {
    name: 'window end equal to start',
    file: { maintenance: { windows: [{ start: '2026-07-09T08:00:00Z', end: '2026-07-09T08:00:00Z' }] } },
    key: 'maintenance.windows[0].end',
    message: /must be after start/,
  },
  {
    name: 'unparsable window date',
    file: { maintenance: { windows: [{ start: 'next tuesday', end: '2026-07-09T07:00:00Z', reason: 'x' }] } },
    key: 'maintenance.windows[0].start',
    message: /ISO 8601/,
  },
  {
    name: 'window date without a time zone',
    file: { maintenance: { windows: [{ start: '2026-07-09T07:00:00', end: '2026-07-09T08:00:00Z', reason: 'x' }] } },
    key: 'maintenance.windows[0].start',
    message: /time zone/,
  },
  {
    name: 'unknown key in a window',
    file: { maintenance: { windows: [{ start: '2026-07-09T07:00:00Z', end: '2026-07-09T08:00:00Z', note: 'x' }] } },
    key: 'maintenance.windows[0].note',
    message: /unknown key/,
  },
  { name: 'windows not a list', env: { FEEDKEEPER_MAINTENANCE_WINDOWS: '{"start":1}' }, key: 'maintenance.windows', message: /must be a list/ },
  { name: 'invalid cron', file: { userData: { keepaliveCron: '0 */30 * *' } }, key: 'userData.keepaliveCron', message: /node-cron expression/ },
  { name: 'cron field out of range', file: { userData: { keepaliveCron: '61 * * * *' } }, key: 'userData.keepaliveCron', message: /node-cron/ },
  { name: 'bad log level', file: { log: { level: 'verbose' } }, key: 'log.level', message: /must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/ },
  { name: 'bad metrics port', env: { FEEDKEEPER_METRICS_PORT: '70000' }, key: 'metrics.port', message: /port number/ },
  { name: 'boolean from a bad string', env: { FEEDKEEPER_RECORDER_ENABLED: 'yes' }, key: 'recorder.enabled', message: /true or false, got "yes"/ },
  { name: 'empty recorder dir', file: { recorder: { dir: '' } }, key: 'recorder.dir', message: /non-empty string/ },
  { name: 'read hold past 10 s', file: { recorder: { holdReadsMs: 20_000 } }, key: 'recorder.holdReadsMs', message: /from 0 \(never hold reads\) to 10000/ },
  { name: 'bad event name', file: { userData: { events: ['order_trade_update'] } }, key: 'userData.events[0]', message: /upper-case event name/ },
  { name: 'user data on a venue without it', file: { venue: 'okx', symbols: ['BTC-USDT'], streams: ['trades'], userData: { enabled: true } }, env: { FEEDKEEPER_API_KEY: 'k' }, key: 'userData.enabled', message: /supported on binance-spot, binance-usdm, binance-coinm; okx has none/ },
  { name: 'user data on without a key', file: { userData: { enabled: true } }, key: 'userData.apiKey', message: /FEEDKEEPER_API_KEY/ },
  { name: 'spot user data without a secret', file: { userData: { enabled: true } }, env: { FEEDKEEPER_API_KEY: 'k' }, key: 'userData.apiSecret', message: /FEEDKEEPER_API_SECRET/ },
];

for (const c of bad) {
  t.test(`refused: ${c.name}`, async (t) => {
    const paths = c.file === undefined ? [] : files(c.file);
    const e = configError(() => loadConfig({ files: paths, env: c.env ?? {} }));
    t.equal(e.key, c.key);
    t.match(e.message, c.message);
    t.ok(e.message.startsWith(`${c.key}: `), 'the message starts with the key');
  });
}

t.test('files that cannot be read or parsed are named', async (t) => {
  let e = configError(() => loadConfig({ files: ['/nonexistent/feedkeeper.json'], env: {} }));
  t.equal(e.key, '/nonexistent/feedkeeper.json');
  t.match(e.message, /cannot read config file: no such file/);

  const [broken, array, dir] = files(`{"userData": {"apiSecret": "${SECRET}" "x"}}`, '[1, 2]', '{}');
  e = configError(() => loadConfig({ files: [broken!], env: {} }));
  t.equal(e.key, broken);
  t.match(e.message, /not valid JSON.*line 1, column \d+/);
  t.notMatch(e.message, SECRET, 'the parser quote of the input is not passed on');

  const [quoted] = files(`{"apiSecret": ${SECRET}}`);
  e = configError(() => loadConfig({ files: [quoted!], env: {} }));
  t.match(e.message, /not valid JSON/);
  t.notMatch(e.message, SECRET);

  e = configError(() => loadConfig({ files: [array!], env: {} }));
  t.match(e.message, /must hold a JSON object, got an array/);

  e = configError(() => loadConfig({ files: [join(dir!, '..')], env: {} }));
  t.match(e.message, /not a regular file/);
});

t.test('inline secrets need a file of mode 0600', async (t) => {
  const [f] = files({ userData: { apiKey: SECRET, apiSecret: SECRET } });
  const e = configError(() => loadConfig({ files: [f!], env: {} }));
  t.equal(e.key, 'userData.apiSecret');
  t.match(e.message, /inline secrets need a config file of mode 0600/);
  t.match(e.message, /mode 0644/);
  t.notMatch(e.message, SECRET, 'never the secret itself');

  const [keyOnly] = files({ userData: { apiKey: SECRET } });
  t.equal(configError(() => loadConfig({ files: [keyOnly!], env: {} })).key, 'userData.apiKey');

  chmodSync(f!, 0o640);
  t.equal(configError(() => loadConfig({ files: [f!], env: {} })).key, 'userData.apiSecret', 'group read is refused too');

  chmodSync(f!, 0o600);
  const c = loadConfig({ files: [f!], env: {} });
  t.equal(c.userData.apiSecret, SECRET);
  t.equal(c.userData.apiKey, SECRET);

  const [empty] = files({ userData: { apiKey: '', apiSecret: '' } });
  t.doesNotThrow(() => loadConfig({ files: [empty!], env: {} }), 'empty values are not secrets');
});

t.test('a wrongly typed secret is not echoed', async (t) => {
  const [f] = files({ userData: { apiSecret: 123456789 } });
  chmodSync(f!, 0o600);
  const e = configError(() => loadConfig({ files: [f!], env: {} }));
  t.equal(e.key, 'userData.apiSecret');
  t.notMatch(e.message, '123456789');
});

t.test('user data credentials from the environment', async (t) => {
  const [f] = files({ userData: { enabled: true } });
  const c = loadConfig({ files: [f!], env: { FEEDKEEPER_API_KEY: SECRET, FEEDKEEPER_API_SECRET: SECRET } });
  t.equal(c.userData.enabled, true);
  t.notMatch(JSON.stringify(c), SECRET, 'FEEDKEEPER_API_* never enter Config');
  const usdm = loadConfig({ files: [], env: { FEEDKEEPER_VENUE: 'binance-usdm', FEEDKEEPER_USER_DATA_ENABLED: 'true', FEEDKEEPER_API_KEY: SECRET } });
  t.equal(usdm.userData.enabled, true, 'USD-M listen keys need only the API key');
});

t.test('venue-dependent limits resolve from the venue', async (t) => {
  const usdm = loadConfig({ files: [], env: { FEEDKEEPER_VENUE: 'binance-usdm' } });
  t.equal(usdm.limits.streamsPerConnection, 200);
  t.equal(usdm.limits.messagesPerSecond, 10);
  t.equal(usdm.limits.connectionAttempts, 300);
  t.equal(usdm.endpoints.stream, 'wss://fstream.binance.com');
  t.equal(usdm.endpoints.rest, 'https://fapi.binance.com');
  t.equal(usdm.connection.staleAfterMs, 190_000, 'USD-M pings every 3 min: 30 s of silence is normal there');
  t.equal(usdm.health.silentAfterMs, 185_000);
  t.same(usdm.maintenance.windows, [], 'the spot maintenance calendar does not apply');

  const spot = loadConfig({ files: [], env: {} });
  t.equal(spot.limits.streamsPerConnection, 1024);
  t.equal(spot.limits.messagesPerSecond, 5);

  const [lower] = files({ venue: 'binance-usdm', limits: { streamsPerConnection: 50 } });
  t.equal(loadConfig({ files: [lower!], env: {} }).limits.streamsPerConnection, 50, 'an explicit lower figure is kept');

  const [, restore] = files({}, { limits: { streamsPerConnection: null } });
  t.equal(loadConfig({ files: [lower!, restore!], env: {} }).limits.streamsPerConnection, 200, 'a later null restores the venue figure');

  const over = configError(() => loadConfig({ files: [], env: { FEEDKEEPER_VENUE: 'binance-usdm', FEEDKEEPER_LIMITS_STREAMS_PER_CONNECTION: '1024' } }));
  t.equal(over.key, 'limits.streamsPerConnection');
  t.match(over.message, /at most 200/);
});

t.test('endpoints: trailing slashes dropped from bases, query strings refused', async (t) => {
  const c = loadConfig({ files: [], env: { FEEDKEEPER_ENDPOINTS_STREAM: 'ws://127.0.0.1:8080/', FEEDKEEPER_ENDPOINTS_REST: 'http://127.0.0.1:8080/' } });
  t.equal(c.endpoints.stream, 'ws://127.0.0.1:8080');
  t.equal(c.endpoints.rest, 'http://127.0.0.1:8080');
  const e = configError(() => loadConfig({ files: [], env: { FEEDKEEPER_ENDPOINTS_STREAM: 'wss://x/stream?streams=a' } }));
  t.equal(e.key, 'endpoints.stream');
});

t.test('an object where the schema has a value is refused, naming the key: every key, top level and in a feed', async (t) => {
  // convict merges such an object into keys that do not exist and keeps the default:
  // `"symbols": {"from": "exchangeInfo"}` used to run the 6 default symbols.
  const nest = (key: string, value: unknown): Record<string, unknown> =>
    key.split('.').reduceRight<unknown>((inner, part) => ({ [part]: inner }), value) as Record<string, unknown>;
  const wrong = [{ from: 'exchangeInfo' }, {}, { nested: { deeper: [1, 2] } }];
  let checked = 0;
  for (const { key } of configKeys()) {
    // symbols has an object form of its own (a universe, test/universe.test.ts).
    if (key === 'symbols') continue;
    for (const value of wrong) {
      const err = configError(() => loadConfig({ files: files(nest(key, value)), env: {} }));
      // The format's own message: "got an object", or the value shown ("got {}").
      if (err.key !== key || !/got (an object|\{)/.test(err.message)) t.fail(`${key} = ${JSON.stringify(value)}: ${err.message}`);
      checked++;
    }
    const first = key.split('.')[0]!;
    if (!['venue', 'symbols', 'streams', 'endpoints', 'limits', 'connection', 'maintenance', 'health'].includes(first) || key === 'venue') continue;
    const err = configError(() => loadConfig({ files: files({ feeds: [{ venue: 'okx', ...nest(key, { from: 'exchangeInfo' }) }] }), env: {} }));
    if (err.key !== `feeds[0].${key}` || !/got (an object|\{)/.test(err.message)) t.fail(`feeds[0].${key}: ${err.message}`);
    checked++;
  }
  t.ok(checked > 200, `${checked} wrong-shape values, each refused with its own key`);
  // {"from": "exchangeInfo"} is a universe now; another object is refused naming its key.
  const err = configError(() => loadConfig({ files: files({ symbols: { nested: { deeper: [1, 2] } } }), env: {} }));
  t.equal(err.key, 'symbols.nested');
  t.match(err.message, /unknown key \(a universe has from, quoteAssets/);
});

t.test('connection.readThreads: 0 to 16, named when out of range', async (t) => {
  t.equal(loadConfig({ files: [], env: { FEEDKEEPER_CONNECTION_READ_THREADS: '1' } }).connection.readThreads, 1);
  t.throws(() => loadConfig({ files: [], env: { FEEDKEEPER_CONNECTION_READ_THREADS: '17' } }), /connection\.readThreads/);
  t.throws(() => loadConfig({ files: [], env: { FEEDKEEPER_CONNECTION_READ_THREADS: '-1' } }), /connection\.readThreads/);
});
