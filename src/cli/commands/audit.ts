import { systemClock } from '../../clock.js';
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator, type Authenticator } from '@nats-io/transport-node';
import { parseTimeArg } from '../../ledger/report.js';
import { Auditor, formatAudit } from '../../sinks/nats/audit.js';
import { readStream } from '../../sinks/nats/reader.js';
import { getFormat } from '../../config/formats.js';
import { parseCommandArgs, UsageError } from '../args.js';

export const USAGE = `Usage: feedkeeper audit --nats URL [--stream NAME] [--since T] [--until T] [--creds FILE] [--json]

Read the JetStream stream the collectors publish into and report the merged gap ledger:
per subject with contiguous IDs (trade, aggTrade, OKX trades), the holes of the merged stream
(IDs every collector missed); per collector, what its own ledger entries (<prefix>.<venue>._gaps)
say it missed and how much of it the others covered. Exit 1 when the merged stream has a hole
outside a maintenance window.

Options:
      --nats URL     NATS server, e.g. nats://127.0.0.1:4222 (repeatable)
      --stream NAME  the JetStream stream (default FEEDKEEPER)
      --since T      messages stored from T on
      --until T      messages stored until T
      --creds FILE   NATS .creds file (or FEEDKEEPER_NATS_TOKEN, FEEDKEEPER_NATS_USER/FEEDKEEPER_NATS_PASSWORD)
      --json         print the report as JSON
  -h, --help         show this help

T is an ISO 8601 time (2026-07-09T07:00:00Z, 2026-07-09), epoch milliseconds, now, or a
duration before now: 90s, 30m, 24h, 7d.
`;

export interface AuditIo {
  stdout?: (text: string) => void;
  env?: NodeJS.ProcessEnv;
  now?: number;
}

/** `feedkeeper audit ...`. Usage errors throw (exit 2, via main); a hole outside maintenance: 1. */
export async function run(argv: string[], io: AuditIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const env = io.env ?? process.env;
  const now = io.now ?? systemClock.now();
  const { values } = parseCommandArgs(
    argv,
    {
      nats: { type: 'string', multiple: true },
      stream: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      creds: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) {
    stdout(USAGE);
    return 0;
  }
  const servers = values.nats ?? [];
  if (servers.length === 0) throw new UsageError('audit needs --nats URL', USAGE);
  const bad = getFormat('fk-nats-urls')!.check(servers);
  if (bad !== null) throw new UsageError(`--nats: ${bad.message}`, USAGE);
  const stream = values.stream ?? 'FEEDKEEPER';
  if (getFormat('fk-nats-name')!.check(stream) !== null) throw new UsageError(`--stream: not a JetStream stream name: ${JSON.stringify(stream)}`, USAGE);
  const time = (name: 'since' | 'until'): number | null => {
    const v = values[name];
    if (v === undefined) return null;
    const t = parseTimeArg(v, now);
    if (t === null) throw new UsageError(`--${name}: not a time: ${JSON.stringify(v)}`, USAGE);
    return t;
  };
  const since = time('since');
  const until = time('until');

  let authenticator: Authenticator | undefined;
  if (values.creds !== undefined) {
    const file = values.creds;
    authenticator = credsAuthenticator(() => readFileSync(file));
  } else if (env['FEEDKEEPER_NATS_TOKEN']) authenticator = tokenAuthenticator(env['FEEDKEEPER_NATS_TOKEN']);
  else if (env['FEEDKEEPER_NATS_USER']) authenticator = usernamePasswordAuthenticator(env['FEEDKEEPER_NATS_USER'], env['FEEDKEEPER_NATS_PASSWORD'] ?? '');

  const nc = await connect({ servers, authenticator, name: 'feedkeeper audit', timeout: 5000 });
  try {
    const auditor = new Auditor();
    await readStream(nc, stream, { since, until, onMessage: (m) => auditor.add(m) });
    const report = auditor.report(stream, { since, until });
    stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatAudit(report));
    return report.ok ? 0 : 1;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
