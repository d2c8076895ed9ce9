import { parseArgs } from 'node:util';
import { SIMULATED_VENUES, startSimulator } from './index.js';
import type { SimulatorOptions } from './types.js';
import type { VenueName } from '../venues/index.js';

const USAGE = `Usage: feedkeeper simulate [options]

Runs a Binance-compatible exchange on loopback until SIGINT/SIGTERM (docs/simulator.md).
Prints {"wsUrl":..,"httpUrl":..,"port":..,"venue":..} as one JSON line on stdout; every broken
limit is printed as a JSON line on stderr.

  --host H                          default 127.0.0.1
  --port N                          default 0 (any free port)
  --venue V                         binance-spot (default) | binance-usdm | binance-coinm | bybit-spot | bybit-linear | okx
  --events-per-second N             per stream, default 2
  --tick-ms N                       default 100
  --ping-interval-ms N              default: the venue's
  --pong-timeout-ms N               default: the venue's
  --max-lifetime-ms N               default 24 h
  --streams-per-connection N        default: the venue's
  --messages-per-second N           default: the venue's
  --connection-attempts N           default: the venue's
  --connection-attempt-window-ms N  default: the venue's
  --id-history N                    IDs kept per stream for inspection, default 10000
  --help
`;

const NUMERIC = {
  port: 'port',
  'events-per-second': 'eventsPerSecond',
  'tick-ms': 'tickMs',
  'ping-interval-ms': 'pingIntervalMs',
  'pong-timeout-ms': 'pongTimeoutMs',
  'max-lifetime-ms': 'maxLifetimeMs',
  'id-history': 'idHistoryLimit',
} as const;

const LIMITS = {
  'streams-per-connection': 'streamsPerConnection',
  'messages-per-second': 'messagesPerSecond',
  'connection-attempts': 'connectionAttempts',
  'connection-attempt-window-ms': 'connectionAttemptWindowMs',
} as const;

/**
 * `feedkeeper simulate`: returns the exit code (0 after SIGINT/SIGTERM, 2 on bad arguments). Never
 * calls process.exit.
 */
export async function runSimulatorCli(
  argv: string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let opts: SimulatorOptions;
  try {
    const parsed = parseOptions(argv);
    if (parsed === 'help') {
      io.stdout.write(USAGE);
      return 0;
    }
    opts = parsed;
  } catch (err) {
    io.stderr.write(`feedkeeper simulate: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }

  let sim;
  try {
    sim = await startSimulator({
      ...opts,
      onViolation: (v) => io.stderr.write(`${JSON.stringify({ violation: v })}\n`),
    });
  } catch (err) {
    io.stderr.write(`feedkeeper simulate: ${(err as Error).message}\n`);
    return err instanceof RangeError ? 2 : 1;
  }
  io.stdout.write(`${JSON.stringify({ wsUrl: sim.wsUrl, httpUrl: sim.httpUrl, port: sim.port, venue: opts.venue ?? 'binance-spot' })}\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await sim.close();
  return 0;
}

function parseOptions(argv: string[]): SimulatorOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean' },
      host: { type: 'string' },
      venue: { type: 'string' },
      ...Object.fromEntries([...Object.keys(NUMERIC), ...Object.keys(LIMITS)].map((k) => [k, { type: 'string' as const }])),
    },
  }) as { values: Record<string, string | boolean | undefined> };
  if (values.help === true) return 'help';
  const opts: SimulatorOptions = { idHistoryLimit: 10_000 };
  if (typeof values.host === 'string') opts.host = values.host;
  if (typeof values.venue === 'string') {
    if (!SIMULATED_VENUES.includes(values.venue)) {
      throw new Error(`--venue: one of ${SIMULATED_VENUES.join(', ')}, got ${values.venue}`);
    }
    opts.venue = values.venue as VenueName;
  }
  for (const [flag, key] of Object.entries(NUMERIC)) {
    const v = values[flag];
    if (typeof v === 'string') opts[key] = toNumber(flag, v);
  }
  for (const [flag, key] of Object.entries(LIMITS)) {
    const v = values[flag];
    if (typeof v === 'string') (opts.limits ??= {})[key] = toNumber(flag, v);
  }
  return opts;
}

function toNumber(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`--${flag}: not a number: ${v}`);
  return n;
}
