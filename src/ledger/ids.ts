/**
 * Gap IDs: `<UTC time, ms precision>-<6-digit counter>`, e.g. `20260709T070000.123Z-000001`.
 * Lexicographic order = order of creation, within a run and across restarts: the generator never
 * goes below the largest ID already in the ledger, so a clock stepped backwards (NTP) cannot
 * produce a duplicate.
 */
const ID_RE = /^(\d{8}T\d{6}\.\d{3}Z)-(\d{6})$/;
const MAX_COUNTER = 999_999;

function compact(ms: number): string {
  // 2026-07-09T07:00:00.123Z -> 20260709T070000.123Z
  return new Date(ms).toISOString().replace(/[-:]/g, '');
}

function msOf(stamp: string): number {
  const iso = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13)}`;
  return Date.parse(iso);
}

export class GapIdGenerator {
  private lastMs = -Infinity;
  private counter = 0;

  /** Make every later ID sort after `id` (an ID read back from the ledger). Unknown formats are ignored. */
  observe(id: string): void {
    const m = ID_RE.exec(id);
    if (!m) return;
    const ms = msOf(m[1]!);
    const n = Number(m[2]);
    if (ms > this.lastMs || (ms === this.lastMs && n > this.counter)) {
      this.lastMs = ms;
      this.counter = n;
    }
  }

  next(now: number): string {
    if (now > this.lastMs) {
      this.lastMs = now;
      this.counter = 0;
    } else if (this.counter >= MAX_COUNTER) {
      this.lastMs += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
    return `${compact(this.lastMs)}-${String(this.counter).padStart(6, '0')}`;
  }
}
