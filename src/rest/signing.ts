import { createHmac, createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { ErrorCodes, FeedkeeperError } from '../errors.js';

/**
 * Request signing for Binance SIGNED requests (REST and WebSocket API alike).
 * binance-spot-api-docs web-socket-api.md, "SIGNED request security":
 * - HMAC keys: hex HMAC-SHA256 of the payload with the secret key;
 * - Ed25519 keys: Ed25519 signature of the payload with the private key, base64-encoded.
 * The secret only lives in the closure of the signer: logging a Signer shows its kind, nothing else.
 */
export type SignatureKind = 'hmac-sha256' | 'ed25519';

export interface Signer {
  readonly kind: SignatureKind;
  /** Signature of `payload` (hex for HMAC, base64 for Ed25519). */
  sign(payload: string): string;
}

const PEM_PRIVATE_KEY = /-----BEGIN ((?:ENCRYPTED |RSA |EC |OPENSSH )?PRIVATE KEY)-----/;

/**
 * A Signer for a secret: a PEM private key signs with Ed25519, anything else is an HMAC secret.
 * Errors (FK_ERR_SECRET) never include the secret.
 */
export function createSigner(secret: string): Signer {
  if (secret === '') throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, 'the API secret is empty');
  const m = PEM_PRIVATE_KEY.exec(secret);
  if (m === null) {
    return {
      kind: 'hmac-sha256',
      sign: (payload) => createHmac('sha256', secret).update(payload).digest('hex'),
    };
  }
  if (m[1] !== 'PRIVATE KEY') {
    throw new FeedkeeperError(
      ErrorCodes.FK_ERR_SECRET,
      `the API secret is a PEM "${m[1]}"; only an unencrypted PKCS#8 Ed25519 key ("PRIVATE KEY") is supported`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: secret, format: 'pem' });
  } catch (err) {
    // No `cause`: keep anything derived from the key material out of the error chain.
    const code = (err as { code?: unknown }).code;
    throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `the API secret looks like a PEM private key but cannot be read (${String(code ?? 'invalid')})`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, `the API secret is a ${String(key.asymmetricKeyType)} private key; only Ed25519 is supported`);
  }
  return {
    kind: 'ed25519',
    sign: (payload) => cryptoSign(null, Buffer.from(payload, 'utf8'), key).toString('base64'),
  };
}

export type SignableParams = Record<string, string | number | boolean>;

/**
 * The WebSocket API signature payload: every parameter except `signature`, sorted by name,
 * `name=value` joined with `&`, values not percent-encoded (web-socket-api.md, SIGNED request examples).
 */
export function wsApiSignaturePayload(params: SignableParams): string {
  return Object.keys(params)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${String(params[k])}`)
    .join('&');
}
