import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { EventLoopLagMonitor, type EventLoopLagOptions } from './event-loop.js';
import { initLabelledSeries } from './labels.js';
import type { Metrics } from './registry.js';
import { AddressAllowList } from '../relay/paths.js';

/**
 * The operations HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for probes (systemd
 * has none, Docker HEALTHCHECK and Kubernetes do), /gaps for the ledger. Plain node:http: four
 * routes do not need a framework. Documented in docs/operations.md and docs/metrics.md.
 */

/** What /readyz asks. The supervisor implements it. */
export interface HealthSource {
  readiness(): { ready: boolean; reasons: string[]; connections: { planned: number; open: number } };
}

export interface HttpServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** The daemon's venues: every venue-labelled counter series is created at 0 for each. */
  venues?: readonly string[];
  health: HealthSource;
  /**
   * Answers GET /gaps with the request's query string (ledgerGaps() in gaps-route.ts reads the ledger);
   * /gaps is 404 when absent. Throw a GapsQueryError for a bad query (400).
   */
  gaps?: (query: URLSearchParams) => Promise<unknown>;
  /** GET /books/<venue>/<SYMBOL>?limit=N: a local order book (docs/recovery.md); 404 when absent. */
  books?: (venue: string, symbol: string, limit: number) => { status: number; body: unknown };
  logger: Logger;
  /**
   * POST /admin/reload (metrics.reload): re-read the config files and apply what can be applied live.
   * Answered only to loopback peers and `reloadAllow`; 403 for the others, 404 when absent.
   */
  reload?: { run: () => Promise<{ status: number; body: unknown }>; allow: readonly string[] };
  /** Tuning of the /healthz event-loop check (defaults: unhealthy past 5 s of lag within 10 s). */
  eventLoop?: EventLoopLagOptions;
}

export interface HttpServer {
  /** e.g. http://127.0.0.1:9464 (IPv6 hosts in brackets). */
  url: string;
  /** The bound port: the real one when `port` was 0. */
  port: number;
  close(): Promise<void>;
}

/** Thrown by a `gaps` handler when the query is wrong: answered 400 with the message. */
export class GapsQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GapsQueryError';
  }
}

const JSON_TYPE = 'application/json; charset=utf-8';
const ALLOWED = 'GET, HEAD';

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const { metrics, health, gaps, logger } = opts;
  const loop = new EventLoopLagMonitor(opts.eventLoop);
  const log = logger.child({ component: 'http' });
  // Alerts on increase() need every labelled counter to exist before its first event.
  initLabelledSeries(metrics.registry, opts.venues ?? []);

  const routes = new Map<string, (url: URL) => Promise<Reply>>([
    ['/metrics', async () => ({
      status: 200,
      type: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    })],
    ['/healthz', async () => {
      const h = loop.health();
      return h.healthy
        ? json(200, { status: 'ok' })
        : json(503, { status: 'unhealthy', reason: h.reason, eventLoopLagMs: Math.round(h.lagMs) });
    }],
    ['/readyz', async () => {
      const r = health.readiness();
      return json(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not_ready', ...r });
    }],
  ]);
  if (gaps !== undefined) routes.set('/gaps', async (url) => json(200, await gaps(url.searchParams)));

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      // Only reached when writing the reply itself failed (client gone): nothing left to answer.
      log.debug({ event: 'http_reply_failed', err }, 'http reply failed');
    });
  });

  const reloadAllow = opts.reload === undefined ? null : new AddressAllowList([...opts.reload.allow]);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req);
    const books = opts.books;
    const route =
      url === undefined
        ? undefined
        : (routes.get(url.pathname) ??
          (books !== undefined && url.pathname.startsWith('/books/')
            ? async (u: URL) => {
                const [, , venue = '', symbol = ''] = u.pathname.split('/');
                const limit = Number(u.searchParams.get('limit') ?? 100);
                const r = books(decodeURIComponent(venue), decodeURIComponent(symbol), Number.isInteger(limit) && limit > 0 ? limit : 100);
                return json(r.status, r.body);
              }
            : undefined));
    let reply: Reply;
    if (url?.pathname === '/admin/reload' && opts.reload !== undefined) {
      if (!reloadAllow!.allows(req.socket.remoteAddress)) reply = json(403, { error: 'not_allowed', detail: 'POST /admin/reload is answered on loopback and metrics.reloadAllow only' });
      else if (req.method !== 'POST') reply = { ...json(405, { error: 'method_not_allowed', allow: 'POST' }), allow: 'POST' };
      else {
        try {
          const r = await opts.reload.run();
          reply = json(r.status, r.body);
        } catch (err) {
          reply = failure(url.pathname, err);
        }
      }
    } else if (url === undefined) {
      reply = json(400, { error: 'bad_request' });
    } else if (route === undefined) {
      reply = json(404, { error: 'not_found', path: url.pathname });
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply = json(405, { error: 'method_not_allowed', allow: ALLOWED });
    } else {
      try {
        reply = await route(url);
      } catch (err) {
        reply = failure(url.pathname, err);
      }
    }
    send(req, res, reply);
  }

  function failure(path: string, err: unknown): Reply {
    if (err instanceof GapsQueryError) return json(400, { error: err.message });
    // /readyz failing is an answer in itself: not ready, and why.
    if (path === '/readyz') {
      log.warn({ event: 'readiness_failed', err }, 'readiness check threw');
      return json(503, { status: 'not_ready', ready: false, reasons: ['readiness check failed'] });
    }
    log.warn({ event: 'http_handler_failed', err, path }, 'http handler failed');
    return json(500, { error: 'internal_error' });
  }

  // A scrape or a probe is one small request; slow or idle clients must not pile up sockets.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, opts.host, opts.port));
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ event: 'http_server_error', err }, 'http server error'));
  loop.start();

  const port = (server.address() as AddressInfo).port;
  // The caller logs the url once it is up (event http_listening).
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        loop.stop();
        server.close(() => resolve());
        // Prometheus keeps its connection alive between scrapes: without this close() waits for it.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

interface Reply {
  status: number;
  type: string;
  body: string;
  /** The Allow header of a 405 (default: GET, HEAD). */
  allow?: string;
}

/** The request target as a URL (only its path and query matter), or undefined when it is not one. */
function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

function json(status: number, value: unknown): Reply {
  return { status, type: JSON_TYPE, body: JSON.stringify(value) };
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string | number> = {
    'content-type': reply.type,
    'content-length': Buffer.byteLength(reply.body),
    'cache-control': 'no-store',
  };
  if (reply.status === 405) headers['allow'] = reply.allow ?? ALLOWED;
  res.writeHead(reply.status, headers);
  res.end(req.method === 'HEAD' ? undefined : reply.body);
}

/** A port in use or a host that is not ours is a config problem: name the key (exit 2 at start). */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
    case 'EACCES':
      return new ConfigError('metrics.port', `cannot listen on ${where}: ${err.code}`, { cause: err });
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError('metrics.host', `cannot listen on ${where}: ${err.code}`, { cause: err });
    default:
      return err;
  }
}
