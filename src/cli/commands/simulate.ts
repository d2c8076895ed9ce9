import { runSimulatorCli } from '../../simulator/cli.js';

/** `feedkeeper simulate ...`: the loopback exchange (docs/simulator.md); its own usage and exit codes. */
export function run(argv: string[]): Promise<number> {
  return runSimulatorCli(argv);
}
