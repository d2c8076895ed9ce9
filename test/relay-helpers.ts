import { Registry } from 'prom-client';
import { WebSocket, type ClientOptions, type RawData } from 'ws';
import { createLogger } from '../src/log.js';
import { streamRef, type StreamRef } from '../src/pipeline/stream-ref.js';
import { RelayServer } from '../src/relay/server.js';
import type { RelayServerOptions, RelayUpstream } from '../src/relay/types.js';
import { getVenue } from '../src/venues/index.js';

/** Helpers of the relay tests (test/relay*.test.ts): a fake upstream, a relay on port 0, clients. */

/** A RelayUpstream that records its calls; the venue's catalogue decides validity, as LiveStreams does. */
export class FakeUpstream implements RelayUpstream {
  readonly wants: string[] = [];
  readonly releases: string[] = [];
  /** `venue stream` → what want() does: resolve (default), reject with this error, or wait for this promise. */
  readonly behaviour = new Map<string, Error | Promise<void>>();
  /** Every want() waits this long first (ms). */
  delayMs = 0;

  valid(venue: string, stream: string): boolean {
    const v = getVenue(venue);
    if (v === undefined) return false;
    const at = stream.indexOf('@');
    if (at <= 0 || stream.slice(0, at) !== stream.slice(0, at).toLowerCase()) return false;
    return v.isSymbol(stream.slice(0, at).toUpperCase()) && v.streamType(v.typeOf(stream)) !== null;
  }

  async want(venue: string, stream: string): Promise<void> {
    this.wants.push(`${venue} ${stream}`);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const b = this.behaviour.get(`${venue} ${stream}`);
    if (b instanceof Error) throw b;
    if (b !== undefined) await b;
  }

  release(venue: string, stream: string): void {
    this.releases.push(`${venue} ${stream}`);
  }
}

export interface LogLine {
  event?: string;
  level: string;
  [k: string]: unknown;
}

export interface Rig {
  relay: RelayServer;
  upstream: FakeUpstream;
  registry: Registry;
  logs: LogLine[];
  url: string;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  venues: ['binance-spot'],
  maxClients: 32,
  clientBufferBytes: 1 << 20,
  maxPayloadBytes: 65_536,
  messagesPerSecond: 50,
  pingIntervalMs: 20_000,
  pongTimeoutMs: 60_000,
  allow: [] as string[],
};

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startRelay(t: Teardown, over: Partial<RelayServerOptions> = {}): Promise<Rig> {
  const upstream = over.upstream instanceof FakeUpstream ? over.upstream : new FakeUpstream();
  const registry = new Registry();
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as LogLine) });
  const relay = new RelayServer({ ...DEFAULTS, upstream, logger, registry, ...over });
  await relay.listen();
  t.teardown(() => relay.close());
  return { relay, upstream, registry, logs, url: relay.url };
}

export const spot = getVenue('binance-spot')!;
export const usdm = getVenue('binance-usdm')!;

const refs = new Map<string, StreamRef>();
export function ref(name: string, venue = spot): StreamRef {
  const k = `${venue.name} ${name}`;
  let r = refs.get(k);
  if (r === undefined) refs.set(k, (r = streamRef(venue, name)));
  return r;
}

/** A Binance combined frame of a trade, compact as Binance sends it; `pad` lengthens the payload. */
export function tradeFrame(stream: string, t: number, pad = 0): Buffer {
  const symbol = stream.slice(0, stream.indexOf('@')).toUpperCase();
  const extra = pad > 0 ? `,"x":"${'a'.repeat(pad)}"` : '';
  return Buffer.from(
    `{"stream":"${stream}","data":{"e":"trade","E":${1_780_000_000_000 + t},"s":"${symbol}","t":${t},"p":"0.00100000","q":"100.00000000","T":${1_780_000_000_000 + t},"m":true,"M":true${extra}}}`,
  );
}

/** The bare event a raw client gets: the bytes of `data`. */
export function rawOf(frame: Buffer): Buffer {
  const s = frame.toString();
  const i = s.indexOf(',"data":') + ',"data":'.length;
  return Buffer.from(s.slice(i, -1));
}

export interface Received {
  data: Buffer;
  binary: boolean;
}

/** A test client: every message kept in order, `next()` waits for the next one, `closed` for the close. */
export class TestClient {
  readonly ws: WebSocket;
  readonly messages: Received[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  private read = 0;

  constructor(url: string, opts: ClientOptions = {}) {
    this.ws = new WebSocket(url, opts);
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body, headers: res.headers })));
      });
      this.ws.once('error', reject);
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data: RawData, binary: boolean) => {
      this.messages.push({ data: data as Buffer, binary });
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  send(v: unknown): void {
    this.ws.send(typeof v === 'string' ? v : JSON.stringify(v));
  }

  /** The next message not read yet, as text (rejects after `ms`). */
  async next(ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.read >= this.messages.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${ms} ms (${this.messages.length} so far)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.messages[this.read++]!.data.toString();
  }

  async nextJson(ms = 3000): Promise<unknown> {
    return JSON.parse(await this.next(ms)) as unknown;
  }

  /** Sends a request and returns the next message (its reply, when nothing else flows). */
  async ask(v: unknown, ms = 3000): Promise<unknown> {
    this.send(v);
    return this.nextJson(ms);
  }

  close(): void {
    this.ws.close();
  }
}

export async function open(url: string, opts: ClientOptions = {}): Promise<TestClient> {
  const c = new TestClient(url, opts);
  await c.opened;
  return c;
}

/** Waits until `cond` holds (polling), false after `ms`. */
export async function until(cond: () => boolean, ms = 3000, every = 5): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, every));
  }
  return true;
}

/** An upgrade refused: its status and body. */
export async function refusal(url: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const c = new TestClient(url);
  try {
    await c.opened;
  } catch (err) {
    const e = err as { status?: number; body?: string; headers?: Record<string, unknown> };
    if (e.status !== undefined) return { status: e.status, body: e.body ?? '', headers: e.headers ?? {} };
    throw err;
  }
  c.close();
  throw new Error(`${url}: the upgrade was accepted`);
}
