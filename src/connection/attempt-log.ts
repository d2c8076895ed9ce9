import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';
import { writeStateFileSync } from '../state-file.js';

/**
 * The connection attempts of the last window, kept on disk so that a restart does not start with a
 * fresh budget: Binance counts attempts per IP (300 per 5 minutes), and a daemon restarted in a
 * loop (a crash, `Restart=always`) would otherwise spend a full budget on every start and get the
 * IP banned. `{"owner":...,"stamps":[epoch ms...]}`, replaced atomically (src/state-file.ts) after
 * each attempt. A file of another daemon (another `owner`) is ignored with a warning.
 */
export class AttemptLog {
  private warned = false;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly owner?: string,
  ) {}

  /** The attempts saved by a previous run; empty when there is no file, it is unreadable or not ours. */
  load(): number[] {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ event: 'attempt_log_unreadable', err, path: this.path }, 'attempt log unreadable: starting with a fresh budget');
      return [];
    }
    // An array: the format before owners were recorded.
    const o = (Array.isArray(v) ? { stamps: v } : v) as { owner?: unknown; stamps?: unknown };
    if (this.owner !== undefined && typeof o.owner === 'string' && o.owner !== this.owner) {
      this.logger.warn({ event: 'state_not_ours', path: this.path, owner: o.owner, expected: this.owner }, 'the attempt log belongs to another daemon: ignored');
      return [];
    }
    return Array.isArray(o.stamps) ? o.stamps.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)) : [];
  }

  save(stamps: readonly number[]): void {
    try {
      writeStateFileSync(this.path, JSON.stringify(this.owner === undefined ? { stamps } : { owner: this.owner, stamps }));
    } catch (err) {
      if (!this.warned) this.logger.warn({ event: 'attempt_log_save_failed', err, path: this.path }, 'attempt log not saved: a restart will not know this run’s attempts');
      this.warned = true;
    }
  }
}
