import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { loadCredentials, keyPrefix, signerFor, createSigner } from '../src/userdata/secrets.js';
import type { Config } from '../src/config/types.js';

const KEY = 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A';
const SECRET = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';

function cfg(ud: Partial<Config['userData']> = {}): Pick<Config, 'userData'> {
  return {
    userData: { enabled: true, keepaliveCron: '0 */30 * * * *', apiKeyFile: '', apiSecretFile: '', apiKey: '', apiSecret: '', events: [], ...ud },
  };
}

function errorText(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return `${(err as Error).message} ${inspect(err)} ${JSON.stringify(err)}`;
  }
  throw new Error('did not throw');
}

t.test('nothing configured → null', async (t) => {
  t.equal(loadCredentials(cfg(), {}), null);
});

t.test('from the environment (trailing newline trimmed), ahead of files and inline', async (t) => {
  const dir = t.testdir({ key: 'file-key\n', secret: 'file-secret\n' });
  const c = loadCredentials(cfg({ apiKeyFile: join(dir, 'key'), apiSecretFile: join(dir, 'secret'), apiKey: 'inline' }), {
    FEEDKEEPER_API_KEY: KEY,
    FEEDKEEPER_API_SECRET: `${SECRET}\n`,
  });
  t.same({ ...c }, { apiKey: KEY, apiSecret: SECRET });
});

t.test('from files: absolute (Docker secrets), relative to $CREDENTIALS_DIRECTORY (systemd LoadCredential)', async (t) => {
  const dir = t.testdir({ 'binance-key': `${KEY}\n`, 'binance-secret': `${SECRET}\r\n` });
  const abs = loadCredentials(cfg({ apiKeyFile: join(dir, 'binance-key'), apiSecretFile: join(dir, 'binance-secret') }), {});
  t.same({ ...abs }, { apiKey: KEY, apiSecret: SECRET });
  const rel = loadCredentials(cfg({ apiKeyFile: 'binance-key', apiSecretFile: 'binance-secret' }), { CREDENTIALS_DIRECTORY: dir });
  t.same({ ...rel }, { apiKey: KEY, apiSecret: SECRET });
});

t.test('inline config', async (t) => {
  t.same({ ...loadCredentials(cfg({ apiKey: KEY, apiSecret: SECRET }), {}) }, { apiKey: KEY, apiSecret: SECRET });
});

t.test('mixed sources: key from a file, secret from the environment', async (t) => {
  const dir = t.testdir({ key: KEY });
  t.same({ ...loadCredentials(cfg({ apiKeyFile: join(dir, 'key') }), { FEEDKEEPER_API_SECRET: SECRET }) }, { apiKey: KEY, apiSecret: SECRET });
});

t.test('futures: the key alone is enough with requireSecret false', async (t) => {
  t.same({ ...loadCredentials(cfg({ apiKey: KEY }), {}, { requireSecret: false }) }, { apiKey: KEY, apiSecret: '' });
  t.throws(() => loadCredentials(cfg({ apiKey: KEY }), {}), { code: 'FK_ERR_SECRET' });
});

t.test('errors name the file or variable, never the secret', async (t) => {
  const dir = t.testdir({ empty: '\n', key: KEY, secret: SECRET });
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['missing file', () => loadCredentials(cfg({ apiKeyFile: join(dir, 'key'), apiSecretFile: join(dir, 'nope') }), {}), /userData\.apiSecretFile: cannot read .*nope \(ENOENT\)/],
    ['empty file', () => loadCredentials(cfg({ apiKeyFile: join(dir, 'key'), apiSecretFile: join(dir, 'empty') }), {}), /userData\.apiSecretFile: .*empty is empty/],
    ['blank variable', () => loadCredentials(cfg(), { FEEDKEEPER_API_KEY: KEY, FEEDKEEPER_API_SECRET: ' \n' }), /FEEDKEEPER_API_SECRET is blank/],
    ['secret without key', () => loadCredentials(cfg({ apiSecretFile: join(dir, 'secret') }), {}), /no API key/],
    ['key with whitespace', () => loadCredentials(cfg(), { FEEDKEEPER_API_KEY: `${KEY} ${SECRET}`, FEEDKEEPER_API_SECRET: SECRET }), /FEEDKEEPER_API_KEY contains whitespace/],
    ['RSA PEM as secret', () => signerFor(loadCredentials(cfg({ apiKey: KEY, apiSecret: rsaPem() }), {})!), /rsa private key; only Ed25519/],
    ['garbled PEM', () => createSigner(`-----BEGIN PRIVATE KEY-----\n${SECRET}\n-----END PRIVATE KEY-----\n`), /cannot be read/],
    ['encrypted PEM', () => createSigner(`-----BEGIN ENCRYPTED PRIVATE KEY-----\n${SECRET}\n-----END ENCRYPTED PRIVATE KEY-----\n`), /ENCRYPTED PRIVATE KEY/],
  ];
  for (const [name, fn, re] of cases) {
    t.throws(fn, { code: 'FK_ERR_SECRET' }, name);
    const text = errorText(fn);
    t.match(text, re, name);
    t.notOk(text.includes(SECRET), `${name}: no secret in the error`);
    t.notOk(text.includes(KEY), `${name}: no API key in the error`);
  }
});

t.test('the credentials object prints without the secret', async (t) => {
  const c = loadCredentials(cfg({ apiKey: KEY, apiSecret: SECRET }), {})!;
  for (const text of [inspect(c), JSON.stringify(c), `${JSON.stringify({ nested: { c } })}`]) {
    t.notOk(text.includes(SECRET), text);
    t.notOk(text.includes(KEY), text);
  }
  t.match(JSON.stringify(c), /"apiKey":"vmPU…"/);
  t.equal(c.apiSecret, SECRET, 'the value itself is intact');
  t.equal(keyPrefix('abcdefgh'), 'abcd…');
  t.equal(keyPrefix(null), null);
});

t.test('a PEM Ed25519 private key selects Ed25519, anything else HMAC', async (t) => {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.equal(signerFor(loadCredentials(cfg({ apiKey: KEY, apiSecret: pem }), {})!).kind, 'ed25519');
  t.equal(signerFor(loadCredentials(cfg({ apiKey: KEY, apiSecret: SECRET }), {})!).kind, 'hmac-sha256');
  const dir = t.testdir({ 'ed.pem': pem });
  const fromFile = loadCredentials(cfg({ apiKey: KEY, apiSecretFile: join(dir, 'ed.pem') }), {})!;
  t.equal(signerFor(fromFile).kind, 'ed25519', 'PEM from a file, final newline trimmed, still parses');
  t.equal(inspect(createSigner(SECRET)).includes(SECRET), false, 'a signer does not show its secret');
});

function rsaPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}
