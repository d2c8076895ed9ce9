#!/usr/bin/env node
import { systemClock } from '../clock.js';
import { commands } from './commands/index.js';
import { reportError } from './errors.js';
import { packageVersion } from './version.js';

/** If something still holds the event loop open after the command returned, exit anyway after this. */
const DRAIN_GRACE_MS = 5000;

function usage(): string {
  const names = Object.keys(commands);
  const width = Math.max(...names.map((n) => n.length));
  return `Usage: feedkeeper <command> [options]

Commands:
${names.map((n) => `  ${n.padEnd(width)}  ${commands[n]!.summary}`).join('\n')}

Options:
  -h, --help     show this help (feedkeeper <command> --help for a command's options)
  -v, --version  print the version

Exit codes: 0 done; 1 failed; 2 bad command line, config or plan (nothing was connected).
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(usage());
    return 2;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    process.stderr.write(`feedkeeper: ${name.startsWith('-') ? 'unknown option' : 'unknown command'} ${name}\n\n${usage()}`);
    return 2;
  }
  try {
    const command = await entry.load();
    return await command.run(rest);
  } catch (err) {
    return reportError(err);
  }
}

// `feedkeeper plan --json | head`: a closed pipe is the reader's choice, not a crash.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

// The only place feedkeeper sets its exit status. Set exitCode and let the loop drain (stdout,
// the logger); exit hard only if something still holds the loop after the grace period.
const code = await main(process.argv.slice(2)).catch((err: unknown) => reportError(err));
process.exitCode = code;
systemClock.setTimeout(() => process.exit(code), DRAIN_GRACE_MS).unref();
