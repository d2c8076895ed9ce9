import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log.js';

/**
 * The connection attempts of the last window, kept on disk so that a restart does not start with a
 * fresh budget: Binance counts attempts per IP (300 per 5 minutes), and a daemon restarted in a
 * loop (a crash, `Restart=always`) would otherwise spend a full budget on every start and get the
 * IP banned. A small JSON array of epoch ms, replaced atomically (write + rename) after each attempt.
 */
export class AttemptLog {
  private warned = false;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** The attempts saved by a previous run; empty when there is no file or it is unreadable. */
  load(): number[] {
    try {
      const v: unknown = JSON.parse(readFileSync(this.path, 'utf8'));
      return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)) : [];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ err, path: this.path }, 'attempt log unreadable: starting with a fresh budget');
      return [];
    }
  }

  save(stamps: readonly number[]): void {
    const tmp = `${this.path}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(stamps));
      renameSync(tmp, this.path);
    } catch (err) {
      if (!this.warned) this.logger.warn({ err, path: this.path }, 'attempt log not saved: a restart will not know this run’s attempts');
      this.warned = true;
    }
  }
}
