/** A subcommand: `feedkeeper <name> ...argv`. Resolves to the process exit code. */
export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

export interface CommandEntry {
  /** One line for `feedkeeper --help`. */
  summary: string;
  /** Loaded on use, so one command's dependencies never slow down or break another. */
  load(): Promise<CommandModule>;
}

/** The subcommands. Adding one is one line here and a module src/cli/commands/<name>.ts. */
export const commands: Record<string, CommandEntry> = {
  run: { summary: 'connect, record and supervise the configured streams', load: () => import('./run.js') },
  gaps: { summary: 'report the gap ledger: totals per cause and per stream, and the gaps', load: () => import('./gaps.js') },
  backfill: { summary: "fetch the ledger's missed trade/aggTrade ranges over REST into the recording (offline)", load: () => import('./backfill.js') },
  replay: { summary: 'rebuild a local order book as it stood at a time, from the recording alone', load: () => import('./replay.js') },
  audit: { summary: 'read the NATS JetStream stream back: holes of the merged stream, what each collector missed', load: () => import('./audit.js') },
  plan: { summary: 'show how the streams split into connections and the share of each limit used', load: () => import('./plan.js') },
  rehearse: { summary: 'play a fault (maintenance, rotation, crash...) against the bundled simulator and check the gap ledger', load: () => import('./rehearse.js') },
  simulate: { summary: 'run the loopback Binance exchange simulator (for rehearsals by hand)', load: () => import('./simulate.js') },
};
