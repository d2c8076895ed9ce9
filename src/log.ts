import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths pino blanks in every log line: credentials never reach a log, whatever an object carries.
 * The listen key is a credential too (facts sheet, "User data"): log `listenKeyPrefix` instead.
 */
export const REDACT_PATHS = [
  'apiKey',
  'apiSecret',
  'secret',
  'signature',
  'listenKey',
  '*.apiKey',
  '*.apiSecret',
  '*.secret',
  '*.signature',
  '*.listenKey',
  'headers["x-mbx-apikey"]',
  '*.headers["x-mbx-apikey"]',
  'config.userData.apiKey',
  'config.userData.apiSecret',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'feedkeeper' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
