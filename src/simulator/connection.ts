import type { Duplex } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import { systemClock, type Timer } from '../clock.js';
import type { Subscriber } from './feed.js';
import { ServerHeartbeat } from '../relay/heartbeat.js';
import { MessageRate } from './limits.js';
import type { SimTime } from './time.js';
import type { ConnectionInfo, ConnectionState, ViolationRule } from './types.js';

export interface ConnectionSettings {
  messagesPerSecond: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  maxLifetimeMs: number;
  /** The exchange's time: the message rate is measured against it. */
  time: SimTime;
}

/** What a connection reports back to the exchange. */
export interface ConnectionHost {
  violation(conn: SimConnection, rule: ViolationRule, detail: string): void;
  slowConsumer(conn: SimConnection, bufferedBytes: number): void;
  closed(conn: SimConnection): void;
}

export interface ConnectionInit {
  id: number;
  path: string;
  kind: 'market' | 'custom';
  combined: boolean;
  micro: boolean;
  openedAt: number;
  remoteAddress: string;
  remotePort: number;
}

type Emit = (event: string | symbol, ...args: unknown[]) => boolean;

/**
 * One accepted WebSocket, seen from the exchange: its state, the limit on what the client sends, the
 * server's pings, the lifetime cut and the faults (stall, drop, serverShutdown). Every frame the
 * client sends passes one gate (the `emit` of `message`, `ping`, `pong`), so a stalled or closing
 * connection ignores input for every listener, custom endpoint handlers included.
 */
export class SimConnection implements ConnectionInfo, Subscriber {
  readonly id: number;
  readonly path: string;
  readonly kind: 'market' | 'custom';
  readonly openedAt: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly streams = new Set<string>();
  combined: boolean;
  readonly micro: boolean;
  messagesFromClient = 0;
  state: ConnectionState = 'open';
  corkedTick = 0;
  /** Text of a data frame the client sent (set by the market protocol). */
  onText: ((text: string) => void) | undefined;

  /** The exchange's time (windows and deadlines are measured against it). */
  readonly time: SimTime;
  private readonly rate: MessageRate;
  private readonly messagesPerSecond: number;
  private readonly heartbeat: ServerHeartbeat;
  private lifetimeTimer: Timer | undefined;
  private shutdownTimer: Timer | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly socket: Duplex,
    init: ConnectionInit,
    settings: ConnectionSettings,
    private readonly host: ConnectionHost,
  ) {
    this.id = init.id;
    this.path = init.path;
    this.kind = init.kind;
    this.combined = init.combined;
    this.micro = init.micro;
    this.openedAt = init.openedAt;
    this.remoteAddress = init.remoteAddress;
    this.remotePort = init.remotePort;
    this.messagesPerSecond = settings.messagesPerSecond;
    this.time = settings.time;
    this.rate = new MessageRate(settings.messagesPerSecond);
    this.heartbeat = new ServerHeartbeat({
      intervalMs: settings.pingIntervalMs,
      timeoutMs: settings.pongTimeoutMs,
      clock: systemClock,
      ping: (payload) => {
        if (this.ws.readyState === WebSocket.OPEN) this.ws.ping(payload);
      },
      timeout: () => {
        this.host.violation(this, 'pong_timeout', `no pong within ${settings.pongTimeoutMs} ms of a ping`);
        this.close(1008, 'pong timeout');
      },
    });

    const emit = ws.emit.bind(ws) as Emit;
    (ws as unknown as { emit: Emit }).emit = (event, ...args) => {
      if ((event === 'message' || event === 'ping' || event === 'pong') && !this.admit()) return false;
      return emit(event, ...args);
    };
    if (init.kind === 'custom') {
      // A stalled connection sends nothing, whoever asks.
      const send = ws.send.bind(ws) as (...a: unknown[]) => void;
      (ws as unknown as { send: (...a: unknown[]) => void }).send = (...a) => {
        if (this.state !== 'stalled') send(...a);
      };
    }
    ws.on('message', (data: RawData) => this.onText?.(rawText(data)));
    // autoPong is off (a stalled server must not answer); Binance answers client pings.
    ws.on('ping', (data: Buffer) => {
      if (ws.readyState === WebSocket.OPEN) ws.pong(data);
    });
    ws.on('pong', (data: Buffer) => this.heartbeat.pong(data.toString('utf8')));
    ws.on('error', () => {}); // followed by 'close'
    ws.on('close', () => this.finish());

    this.heartbeat.start();
    this.lifetimeTimer = systemClock.setTimeout(() => {
      // A stalled connection goes silently; any other gets a close frame like Binance's 24 h cut.
      if (this.state === 'stalled') this.destroy();
      else this.close(1001, 'connection lifetime exceeded');
    }, settings.maxLifetimeMs);
  }

  canReceive(): boolean {
    return (
      (this.state === 'open' || this.state === 'shutting-down') && this.ws.readyState === WebSocket.OPEN && this.socket.writable
    );
  }

  /** Send a control reply or event (not market data: that goes through the feed). */
  sendText(text: string): void {
    if (this.canReceive()) this.ws.send(text);
  }

  stall(): boolean {
    if (this.state !== 'open' && this.state !== 'shutting-down') return false;
    this.state = 'stalled';
    this.heartbeat.stop();
    systemClock.clearTimeout(this.shutdownTimer);
    return true;
  }

  serverShutdown(eventText: string, graceMs: number): boolean {
    if (this.state !== 'open') return false;
    this.state = 'shutting-down';
    this.ws.send(eventText);
    this.shutdownTimer = systemClock.setTimeout(() => this.close(1001, 'server shutdown'), graceMs);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.stopTimers();
    this.ws.close(code, reason);
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.stopTimers();
    this.ws.terminate();
  }

  slowConsumer(bufferedBytes: number): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.host.slowConsumer(this, bufferedBytes);
    this.destroy();
  }

  /** Counts a frame from the client against the limit; false when the frame must be ignored. */
  private admit(): boolean {
    if (this.state !== 'open' && this.state !== 'shutting-down') return false;
    this.messagesFromClient++;
    if (this.rate.hit(this.time.now())) {
      this.host.violation(this, 'messages_per_second', `more than ${this.messagesPerSecond} messages from the client within 1 s`);
      this.close(1008, 'too many requests');
      return false;
    }
    return true;
  }

  private stopTimers(): void {
    this.heartbeat.stop();
    systemClock.clearTimeout(this.lifetimeTimer);
    systemClock.clearTimeout(this.shutdownTimer);
  }

  private finish(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopTimers();
    this.host.closed(this);
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
