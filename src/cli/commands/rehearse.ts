import { formatRehearsal, rehearse } from '../../rehearse/rehearse.js';
import { REHEARSAL_VENUES, scenarios } from '../../rehearse/scenarios.js';
import { parseCommandArgs, UsageError } from '../args.js';

const width = Math.max(...scenarios.map((s) => s.name.length));

export const USAGE = `Usage: feedkeeper rehearse [--scenario NAME] [--venue VENUE] [--json] [--keep]

Rehearse a fault offline: start the bundled exchange simulator (speaking the venue's protocol)
and a daemon against it in a temporary directory, play the scenario, then print the gap ledger
report and check the invariant: for every stream with sequence IDs (trades, diff depth, books),
the IDs recorded plus the IDs the ledger reports missed are exactly the IDs the exchange sent.
Each scenario takes 5-15 s.

Scenarios:
${scenarios.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`).join('\n')}

Options:
      --scenario NAME  the scenario to play (default maintenance)
      --venue VENUE    ${REHEARSAL_VENUES.join(', ')} (default binance-spot)
      --json           print the result as JSON
      --keep           keep the temporary directory (config, recording, ledger) and print its path
  -h, --help           show this help

Exit codes: 0 the invariant holds and every check passed; 1 otherwise; 2 bad command line.
`;

/** Where the command writes; tests pass their own. */
export interface RehearseIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

export async function run(argv: string[], io: RehearseIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = io.stderr ?? ((t: string) => void process.stderr.write(t));
  const { values } = parseCommandArgs(
    argv,
    { scenario: { type: 'string' }, venue: { type: 'string' }, json: { type: 'boolean' }, keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
  );
  if (values.help) {
    stdout(USAGE);
    return 0;
  }
  const name = values.scenario ?? 'maintenance';
  const scenario = scenarios.find((s) => s.name === name);
  if (scenario === undefined) throw new UsageError(`unknown scenario ${name} (${scenarios.map((s) => s.name).join(', ')})`, USAGE);
  const venue = values.venue ?? 'binance-spot';
  if (!REHEARSAL_VENUES.includes(venue)) throw new UsageError(`unknown venue ${venue} (${REHEARSAL_VENUES.join(', ')})`, USAGE);
  const unavailable = scenario.unavailable?.(venue) ?? null;
  if (unavailable !== null) throw new UsageError(`scenario ${name}: ${unavailable}`, USAGE);

  // Ctrl-C stops the rehearsal where it is; the simulator and the daemon are closed, the directory removed.
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const result = await rehearse(name, {
      venue,
      keep: values.keep === true,
      signal: abort.signal,
      log: values.json ? undefined : (line) => stderr(`${line}\n`),
    });
    if (values.json) stdout(`${JSON.stringify(result, null, 2)}\n`);
    else stdout(formatRehearsal(result));
    if (values.keep) stderr(`kept: ${result.dir}\n`);
    if (abort.signal.aborted) return 130;
    return result.ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
