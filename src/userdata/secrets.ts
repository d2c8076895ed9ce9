import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';
import type { Config } from '../config/types.js';
import { ErrorCodes, FeedkeeperError } from '../errors.js';
import { createSigner, type Signer } from '../rest/signing.js';

export { createSigner, type Signer, type SignatureKind } from '../rest/signing.js';

/**
 * The API credentials for user data. `apiSecret` is an HMAC secret or a PEM Ed25519 private key
 * (createSigner tells them apart); it is '' when loaded with `requireSecret: false` and none is configured.
 * The object prints and serialises with the secret blanked and the key shortened, in case it ever
 * reaches a log line by accident (pino's redaction paths are the first line of defence).
 */
export interface Credentials {
  readonly apiKey: string;
  readonly apiSecret: string;
}

export const ENV_API_KEY = 'FEEDKEEPER_API_KEY';
export const ENV_API_SECRET = 'FEEDKEEPER_API_SECRET';

export interface LoadCredentialsOptions {
  /**
   * USD-M and COIN-M listen keys only need the API key (X-MBX-APIKEY), not the secret: pass false
   * there so the secret need not be deployed at all. Spot (WebSocket API signature) needs it. Default true.
   */
  requireSecret?: boolean;
}

/**
 * Find the API key and secret. For each of the two, the first source that has it wins:
 * 1. the environment: FEEDKEEPER_API_KEY / FEEDKEEPER_API_SECRET;
 * 2. the files named by userData.apiKeyFile / userData.apiSecretFile (systemd LoadCredential=,
 *    Docker secrets). A relative name is looked up in $CREDENTIALS_DIRECTORY when systemd set it
 *    (LoadCredential=binance-key:/etc/feedkeeper/key → apiKeyFile "binance-key"), else in the working
 *    directory. Trailing whitespace (the final newline) is trimmed;
 * 3. inline userData.apiKey / userData.apiSecret (the config loader refuses them unless the config
 *    file is mode 0600).
 * Returns null when no key and no secret are configured anywhere. Throws FK_ERR_SECRET, naming the
 * variable, file or config key but never a value, when a source is unreadable or empty, or when only
 * half of the pair is there.
 */
export function loadCredentials(
  config: Pick<Config, 'userData'>,
  env: NodeJS.ProcessEnv = process.env,
  opts: LoadCredentialsOptions = {},
): Credentials | null {
  const ud = config.userData;
  const apiKey = pick(env, ENV_API_KEY, ud.apiKeyFile, 'userData.apiKeyFile', ud.apiKey);
  const apiSecret = pick(env, ENV_API_SECRET, ud.apiSecretFile, 'userData.apiSecretFile', ud.apiSecret);
  if (apiKey === null && apiSecret === null) return null;
  if (apiKey === null) {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `an API secret is configured but no API key: set ${ENV_API_KEY}, userData.apiKeyFile or userData.apiKey`);
  }
  if (apiSecret === null && opts.requireSecret !== false) {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `an API key is configured but no API secret: set ${ENV_API_SECRET}, userData.apiSecretFile or userData.apiSecret`);
  }
  if (/\s/.test(apiKey.value)) {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `the API key from ${apiKey.source} contains whitespace`);
  }
  return makeCredentials(apiKey.value, apiSecret?.value ?? '');
}

/** The signer for loaded credentials (FK_ERR_SECRET when the secret is missing or an unusable PEM). */
export function signerFor(credentials: Credentials): Signer {
  return createSigner(credentials.apiSecret);
}

/** The first 4 characters and an ellipsis: all of a key or listen key a log line may carry. */
export function keyPrefix(key: string | null | undefined): string | null {
  if (key === null || key === undefined || key === '') return null;
  return `${key.slice(0, 4)}…`;
}

function makeCredentials(apiKey: string, apiSecret: string): Credentials {
  const c = { apiKey, apiSecret };
  const safe = (): { apiKey: string | null; apiSecret: string } => ({ apiKey: keyPrefix(apiKey), apiSecret: '[redacted]' });
  Object.defineProperty(c, 'toJSON', { value: safe, enumerable: false });
  Object.defineProperty(c, inspect.custom, { value: () => `Credentials ${inspect(safe())}`, enumerable: false });
  return Object.freeze(c);
}

function pick(
  env: NodeJS.ProcessEnv,
  envName: string,
  file: string | undefined,
  fileKey: string,
  inline: string | undefined,
): { value: string; source: string } | null {
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== '') {
    const value = fromEnv.trimEnd();
    if (value === '') throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `${envName} is blank`);
    return { value, source: envName };
  }
  if (file !== undefined && file !== '') {
    const path = isAbsolute(file) ? file : resolve(env.CREDENTIALS_DIRECTORY ?? process.cwd(), file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `${fileKey}: cannot read ${path} (${String(code ?? 'error')})`);
    }
    const value = text.trimEnd();
    if (value === '') throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `${fileKey}: ${path} is empty`);
    return { value, source: path };
  }
  if (inline !== undefined && inline !== '') return { value: inline.trimEnd(), source: fileKey.replace(/File$/, '') };
  return null;
}
