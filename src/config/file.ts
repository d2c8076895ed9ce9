import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

export interface ConfigFile {
  path: string;
  data: Record<string, unknown>;
  /** Permission bits of the file (mode & 0o777), read from the same descriptor as the content. */
  mode: number;
}

/**
 * Read and parse one JSON config file. Failures name the file (ConfigError's key is the path).
 * The parser's own message is not passed on as is: V8 quotes the surrounding text of the input
 * ('Unexpected token ..., "{"apiSecret": "..." is not valid JSON'), which may be a credential.
 */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  let mode: number;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new ConfigError(path, `cannot read config file: ${fsReason(err)}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(path, 'cannot read config file: not a regular file');
    mode = st.mode & 0o777;
    text = readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(path, `cannot read config file: ${fsReason(err)}`, { cause: err });
  } finally {
    closeSync(fd);
  }

  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // An empty file is an empty layer, as in convict.
  if (text.trim() === '') return { path, data: {}, mode };

  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, `not valid JSON: ${jsonReason(err, text)}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(path, `must hold a JSON object, got ${data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data}`);
  }
  return { path, data: data as Record<string, unknown>, mode };
}

function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file (ENOENT)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'EISDIR':
      return 'is a directory (EISDIR)';
    default:
      return code ?? (err instanceof Error ? err.message : String(err));
  }
}

/** The parser's complaint without the quoted input, plus line and column when V8 gives a position. */
export function jsonReason(err: unknown, text: string): string {
  const raw = err instanceof Error ? err.message : String(err);
  let reason = raw.replace(/, ".*" is not valid JSON$/s, '');
  const m = / in JSON at position (\d+)/.exec(reason);
  if (m) {
    reason = reason.slice(0, m.index);
    const pos = Number(m[1]);
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    const column = pos - before.lastIndexOf('\n');
    reason += ` (line ${line}, column ${column})`;
  } else if (/Unexpected end of JSON input/.test(reason)) {
    reason = 'unexpected end of input (truncated file?)';
  }
  return reason;
}
