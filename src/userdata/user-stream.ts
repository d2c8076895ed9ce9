import type { Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import type { AttemptBudget } from '../connection/attempt-budget.js';
import type { Session, SessionIO, SessionProtocol } from '../connection/session.js';
import { ConnectionWorker } from '../connection/worker.js';
import { ErrorCodes, FeedkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { StreamRouter } from '../pipeline/stream-router.js';
import { RestClient } from '../rest/client.js';
import type { StreamType, Venue } from '../venues/types.js';
import { parseFuturesUserDataMessage, privateStreamUrl } from './futures-stream.js';
import { ListenKeyManager } from './listen-key.js';
import { keyPrefix, loadCredentials, signerFor, type Credentials } from './secrets.js';
import { SpotUserDataSubscription } from './ws-api.js';
import { keyReader } from '../venues/binance/streams.js';

/** The user-data stream's name in the recording and the ledger. */
export const USER_DATA_STREAM = 'userData';

/** User-data events have no order key: duplicates are told by their bytes (SequenceRule `none`). */
export const userDataStreamType: StreamType = {
  type: USER_DATA_STREAM,
  family: 'userData',
  sequence: { kind: 'none' },
  expectedIntervalMs: 0,
  route: '',
  keys: keyReader({ kind: 'none' }),
};

export interface UserDataOptions {
  config: Config;
  venue: Venue;
  router: StreamRouter;
  budget: AttemptBudget;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  env?: NodeJS.ProcessEnv;
}

/**
 * The account's event stream, on the same worker machinery as market data (pings, stale
 * detection, 24 h rotation, attempt budget), recorded as stream `userData`:
 *  - USD-M futures: a listen key (POST, PUT on the keepalive cron, DELETE at stop) and the private
 *    stream /private/ws?listenKey=..&events=.. (since 2026-04-23). listenKeyExpired or a key the
 *    exchange no longer knows → a new key, the connection moved to it, a `listen_key_expired` gap.
 *  - Spot: listen keys were removed on 2026-02-20; a WebSocket API connection subscribes with
 *    userDataStream.subscribe.signature after every (re)connect; eventStreamTerminated → a
 *    `stream_terminated` gap and a new subscription.
 */
export class UserDataStream {
  readonly worker: ConnectionWorker;
  private readonly listenKeys: ListenKeyManager | null = null;
  private readonly rest: RestClient | null = null;
  private keyStale = false;
  private readonly log: Logger;

  constructor(private readonly opts: UserDataOptions) {
    const { config, venue } = opts;
    this.log = opts.logger.child({ component: 'userData' });
    const credentials = loadCredentials(config, opts.env ?? process.env, { requireSecret: venue.name === 'binance-spot' });
    if (credentials === null) {
      throw new FeedkeeperError(ErrorCodes.FK_ERR_SECRET, 'userData.enabled is true but no API key is configured (FEEDKEEPER_API_KEY or userData.apiKeyFile)');
    }
    let url: () => string | Promise<string>;
    let protocol: SessionProtocol;
    if (venue.name === 'binance-spot') {
      url = () => config.endpoints.wsApi;
      protocol = this.spotProtocol(credentials);
    } else {
      this.rest = new RestClient({ baseUrl: config.endpoints.rest, apiKey: credentials.apiKey, logger: opts.logger, metrics: opts.metrics, clock: opts.clock });
      // COIN-M's listen keys live under /dapi, USD-M's under /fapi (facts sheet, "User data streams").
      const path = venue.name === 'binance-coinm' ? '/dapi/v1/listenKey' : '/fapi/v1/listenKey';
      const lk = new ListenKeyManager({ rest: this.rest, path, keepaliveCron: config.userData.keepaliveCron, logger: opts.logger, metrics: opts.metrics, clock: opts.clock });
      this.listenKeys = lk;
      lk.on('renewed', ({ reason }) => {
        this.keyStale = false;
        this.log.info({ event: 'listen_key_renewed', reason }, 'listen key renewed: moving the user-data connection to it');
        this.worker.rotate('listen_key_renewed');
      });
      url = async () => {
        if (this.keyStale) await lk.renew('expired');
        const key = lk.current();
        if (key === null) throw new FeedkeeperError(ErrorCodes.FK_ERR_LISTEN_KEY, 'no listen key');
        return privateStreamUrl(config.endpoints.stream, key, config.userData.events);
      };
      protocol = this.futuresProtocol(lk);
    }
    this.worker = new ConnectionWorker({
      id: 'user',
      streams: [USER_DATA_STREAM],
      url,
      protocol,
      venue: opts.venue,
      config,
      budget: opts.budget,
      router: opts.router,
      logger: opts.logger,
      metrics: opts.metrics,
      clock: opts.clock,
    });
  }

  async start(): Promise<void> {
    if (this.listenKeys) {
      const key = await this.listenKeys.start();
      this.log.info({ event: 'listen_key_created', listenKeyPrefix: keyPrefix(key) }, 'listen key created');
    }
    this.worker.start();
  }

  async stop(): Promise<void> {
    await this.worker.stop();
    await this.listenKeys?.stop();
    await this.rest?.close();
  }

  private futuresProtocol(lk: ListenKeyManager): SessionProtocol {
    return {
      // The private stream is subscribed by its URL.
      onOpen: async () => undefined,
      onText: (io, data, now) => {
        const m = parseFuturesUserDataMessage(data.toString('utf8'));
        if (m.kind === 'expired') {
          this.opts.router.markGap(USER_DATA_STREAM, io.session, 'listen_key_expired', now, 'listenKeyExpired event');
          this.keyStale = true;
          lk.notifyExpired(m.listenKey);
        } else if (m.kind === 'event') {
          this.opts.router.route(io.session, wrap(data), now);
        } else if (m.reason === 'malformed') {
          this.opts.router.route(io.session, data, now); // counted and logged as malformed
        }
      },
    };
  }

  private spotProtocol(credentials: Credentials): SessionProtocol {
    const signer = signerFor(credentials);
    const subs = new WeakMap<Session, { sub: SpotUserDataSubscription; confirm: (() => void) | null; fail: ((e: Error) => void) | null; next: number }>();
    const subscribe = (io: SessionIO): Promise<void> =>
      new Promise((resolve, reject) => {
        let s = subs.get(io.session);
        if (!s) {
          s = { sub: new SpotUserDataSubscription({ apiKey: credentials.apiKey, secret: signer, clock: this.opts.clock }), confirm: null, fail: null, next: 1 };
          subs.set(io.session, s);
        }
        s.confirm = resolve;
        s.fail = reject;
        io.send(s.sub.subscribeMessage(s.next++));
      });
    return {
      onOpen: (io) => subscribe(io),
      onText: (io, data, now) => {
        const s = subs.get(io.session);
        if (!s) return;
        const m = s.sub.onMessage(data.toString('utf8'));
        switch (m.kind) {
          case 'event':
            this.opts.router.route(io.session, wrap(Buffer.from(JSON.stringify(m.event))), now);
            break;
          case 'subscribed':
            s.confirm?.();
            s.confirm = s.fail = null;
            this.opts.router.sessionReady(io.session, [USER_DATA_STREAM], now);
            break;
          case 'terminated':
            this.log.warn({ event: 'user_stream_terminated' }, 'eventStreamTerminated: subscribing again');
            this.opts.router.markGap(USER_DATA_STREAM, io.session, 'stream_terminated', now, 'eventStreamTerminated');
            void subscribe(io).catch((err: unknown) => io.session.terminate('network_error', `resubscribe failed: ${(err as Error).message}`));
            break;
          case 'error':
            s.fail?.(new FeedkeeperError(ErrorCodes.FK_ERR_SUBSCRIBE, `userDataStream.subscribe.signature refused: ${m.code} ${m.msg}`));
            s.confirm = s.fail = null;
            break;
          case 'other':
            if (m.reason === 'malformed') this.opts.router.route(io.session, data, now);
            break;
        }
      },
    };
  }
}

const PREFIX = Buffer.from(`{"stream":"${USER_DATA_STREAM}","data":`);
const SUFFIX = Buffer.from('}');

/** A raw event as a combined-stream frame, so it is recorded like any stream. */
function wrap(event: Buffer): Buffer {
  // The private stream may already wrap its events ({"stream":..,"data":..}): keep the data only.
  const text = event.toString('utf8');
  if (text.startsWith('{"stream":')) {
    const parsed = JSON.parse(text) as { data?: unknown };
    return Buffer.concat([PREFIX, Buffer.from(JSON.stringify(parsed.data ?? null)), SUFFIX]);
  }
  return Buffer.concat([PREFIX, event, SUFFIX]);
}
