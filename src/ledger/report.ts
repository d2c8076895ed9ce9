import { systemClock } from '../clock.js';
import { readFile } from 'node:fs/promises';
import { parseEntryLine, type GapEntry, type Missed } from './types.js';

/**
 * Reading the ledger back: `feedkeeper gaps` and `GET /gaps` (docs/gap-ledger.md, "Reports").
 */

/**
 * All entries of the ledger at `path`: open and close lines merged by id (the last line wins),
 * in order of first appearance. Lines that are not entries (a torn last line after a crash) are
 * skipped. Rejects when the file cannot be read (ENOENT included: the caller decides).
 */
export async function readLedger(path: string): Promise<GapEntry[]> {
  return parseLedger(await readFile(path, 'utf8')).entries;
}

export function parseLedger(text: string): { entries: GapEntry[]; skipped: number } {
  const byId = new Map<string, GapEntry>();
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const e = parseEntryLine(line);
    if (e === null) skipped++;
    else byId.set(e.id, e);
  }
  return { entries: [...byId.values()], skipped };
}

export interface GapTotals {
  gaps: number;
  /** Of which still open. */
  open: number;
  /** Seconds of gap inside the report's range (open gaps: up to now). */
  seconds: number;
  /** Messages known missed (sum of missed.count; depth and unsequenced streams add nothing). */
  missed: number;
}

export interface SummarizeOptions {
  /** Epoch ms: gaps that ended before are left out. */
  since?: number;
  /** Epoch ms: gaps that started after are left out. */
  until?: number;
  /** A stream name, or a pattern with `*` (e.g. `btcusdt@*`, `*@trade`). */
  stream?: string;
  /** For open gaps. Default Date.now(). */
  now?: number;
}

export interface GapSummary {
  range: { since: number | null; until: number | null; stream: string | null };
  generatedAt: number;
  totals: {
    all: GapTotals;
    /** By venue (feed); entries of versions without venues count as `unknown`. */
    byVenue: Record<string, GapTotals>;
    byCause: Record<string, GapTotals>;
    byStream: Record<string, GapTotals>;
    /** By maintenance reason. */
    byMaintenance: Record<string, GapTotals>;
    inMaintenance: GapTotals;
    outsideMaintenance: GapTotals;
  };
  /** The gaps in range, by start time. */
  gaps: GapEntry[];
  /**
   * REST backfill (docs/recovery.md), over the gaps in range that missed messages (missed.count > 0):
   * recovered completely, partly (part no longer served), or not (yet). `messages` of recovered and
   * partial: the messages recovered; of unrecovered: the messages still missing (partial ones' rest included).
   */
  recovery: { recovered: RecoveryTotals; partial: RecoveryTotals; unrecovered: RecoveryTotals };
}

export interface RecoveryTotals {
  gaps: number;
  messages: number;
}

function zero(): GapTotals {
  return { gaps: 0, open: 0, seconds: 0, missed: 0 };
}

function streamMatcher(pattern: string | undefined): (s: string) => boolean {
  if (pattern === undefined || pattern === '') return () => true;
  if (!pattern.includes('*')) return (s) => s === pattern;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (s) => re.test(s);
}

/**
 * Totals per cause, per stream and per maintenance reason for the gaps that overlap
 * [since; until]. Seconds count only the part of each gap inside the range; missed messages count
 * whole (a missed range cannot be split in time).
 */
export function summarize(entries: readonly GapEntry[], opts: SummarizeOptions = {}): GapSummary {
  const now = opts.now ?? systemClock.now();
  const since = opts.since ?? -Infinity;
  const until = opts.until ?? Infinity;
  const match = streamMatcher(opts.stream);
  const all = zero();
  const inM = zero();
  const outM = zero();
  const byVenue: Record<string, GapTotals> = {};
  const byCause: Record<string, GapTotals> = {};
  const byStream: Record<string, GapTotals> = {};
  const byMaintenance: Record<string, GapTotals> = {};
  const gaps: GapEntry[] = [];
  const recovery = { recovered: { gaps: 0, messages: 0 }, partial: { gaps: 0, messages: 0 }, unrecovered: { gaps: 0, messages: 0 } };

  for (const e of entries) {
    const end = e.end ?? Math.max(now, e.start);
    if (e.start > until || end < since || !match(e.stream)) continue;
    gaps.push(e);
    const seconds = Math.max(0, Math.min(end, until) - Math.max(e.start, since)) / 1000;
    const missed = e.missed?.count ?? 0;
    if (missed > 0) {
      const r = e.recovered;
      if (r == null) {
        recovery.unrecovered.gaps++;
        recovery.unrecovered.messages += missed;
      } else {
        const b = r.complete ? recovery.recovered : recovery.partial;
        b.gaps++;
        b.messages += r.count;
        if (!r.complete) recovery.unrecovered.messages += missed - r.count;
      }
    }
    const buckets = [all, e.maintenance !== null ? inM : outM, (byVenue[e.venue ?? 'unknown'] ??= zero()), (byCause[e.cause] ??= zero()), (byStream[e.stream] ??= zero())];
    if (e.maintenance !== null) buckets.push((byMaintenance[e.maintenance] ??= zero()));
    for (const b of buckets) {
      b.gaps++;
      if (e.end === null) b.open++;
      b.seconds += seconds;
      b.missed += missed;
    }
  }
  for (const b of [all, inM, outM, ...Object.values(byVenue), ...Object.values(byCause), ...Object.values(byStream), ...Object.values(byMaintenance)]) {
    b.seconds = Math.round(b.seconds * 1000) / 1000;
  }
  gaps.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    range: { since: opts.since ?? null, until: opts.until ?? null, stream: opts.stream ?? null },
    generatedAt: now,
    totals: { all, byVenue, byCause, byStream, byMaintenance, inMaintenance: inM, outsideMaintenance: outM },
    gaps,
    recovery,
  };
}

/**
 * A time argument: ISO 8601 (`2026-07-09T07:00:00Z`, `2026-07-09`), epoch milliseconds, `now`, or a
 * duration before now (`90s`, `30m`, `24h`, `7d`). Null when it is none of these.
 */
export function parseTimeArg(s: string, now: number): number | null {
  const v = s.trim();
  if (v === 'now') return now;
  const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v);
  if (rel) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
    return now - Number(rel[1]) * unit;
  }
  if (/^\d{10,}$/.test(v)) return Number(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v)) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

export interface GapsQuery {
  since?: string | null;
  until?: string | null;
  stream?: string | null;
}

export type GapsAnswer = { status: 200; body: GapSummary } | { status: 400 | 500; body: { error: string } };

/**
 * The `GET /gaps?since=&until=&stream=` answer for the metrics server: the same JSON as
 * `feedkeeper gaps --json`. A missing ledger file means no gaps yet.
 */
export async function gapsAnswer(ledgerPath: string, query: GapsQuery, now: number = systemClock.now()): Promise<GapsAnswer> {
  const opts: SummarizeOptions = { now };
  for (const k of ['since', 'until'] as const) {
    const raw = query[k];
    if (raw === undefined || raw === null || raw === '') continue;
    const t = parseTimeArg(raw, now);
    if (t === null) return { status: 400, body: { error: `${k}: not a time: ${raw}` } };
    opts[k] = t;
  }
  if (query.stream) opts.stream = query.stream;
  let entries: GapEntry[];
  try {
    entries = await readLedger(ledgerPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      return { status: 500, body: { error: `cannot read the gap ledger: ${(err as Error).message}` } };
    }
    entries = [];
  }
  return { status: 200, body: summarize(entries, opts) };
}

// ---- text report ----

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const total = Math.round(s);
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (d > 0) return `${d}d${String(h).padStart(2, '0')}h${String(m).padStart(2, '0')}m`;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(sec).padStart(2, '0')}s`;
  return `${m}m${String(sec).padStart(2, '0')}s`;
}

function formatMissed(m: Missed | null, r?: GapEntry['recovered']): string {
  if (m === null) return '-';
  if (m.to < m.from) return `${m.field}: none`;
  const range = m.from === m.to ? `${m.from}` : `${m.from}..${m.to}`;
  const back = r == null ? '' : r.complete ? ', recovered' : `, ${r.count} recovered`;
  return `${m.field} ${range}${m.count !== null ? ` (${m.count}${back})` : ''}`;
}

function table(header: string[], rows: string[][], right: Set<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string =>
    '  ' + r.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

function totalsRows(rec: Record<string, GapTotals>): string[][] {
  return Object.entries(rec)
    .sort((a, b) => b[1].seconds - a[1].seconds || (a[0] < b[0] ? -1 : 1))
    .map(([k, t]) => [k, String(t.gaps), String(t.open), t.seconds.toFixed(1), String(t.missed)]);
}

const TOTALS_HEADER = ['GAPS', 'OPEN', 'SECONDS', 'MISSED'];
const NUMERIC = new Set([1, 2, 3, 4]);

/** The summary as a readable text report (what `feedkeeper gaps` prints without --json). */
export function formatReport(s: GapSummary): string {
  const { all, inMaintenance, outsideMaintenance } = s.totals;
  const range = `${s.range.since !== null ? iso(s.range.since) : 'beginning'} .. ${s.range.until !== null ? iso(s.range.until) : 'now'}`;
  const out: string[] = [`Gap ledger report, ${range}, ${s.range.stream !== null ? `stream ${s.range.stream}` : 'all streams'}`, ''];
  if (all.gaps === 0) {
    out.push('No gaps.');
    return out.join('\n') + '\n';
  }
  out.push(
    ...table(
      ['', ...TOTALS_HEADER],
      [
        ['all', String(all.gaps), String(all.open), all.seconds.toFixed(1), String(all.missed)],
        ['in maintenance', String(inMaintenance.gaps), String(inMaintenance.open), inMaintenance.seconds.toFixed(1), String(inMaintenance.missed)],
        [
          'outside maintenance',
          String(outsideMaintenance.gaps),
          String(outsideMaintenance.open),
          outsideMaintenance.seconds.toFixed(1),
          String(outsideMaintenance.missed),
        ],
      ],
      NUMERIC,
    ),
    '',
    'By venue',
    ...table(['VENUE', ...TOTALS_HEADER], totalsRows(s.totals.byVenue), NUMERIC),
    '',
    'By cause',
    ...table(['CAUSE', ...TOTALS_HEADER], totalsRows(s.totals.byCause), NUMERIC),
    '',
    'By stream',
    ...table(['STREAM', ...TOTALS_HEADER], totalsRows(s.totals.byStream), NUMERIC),
  );
  const rec = s.recovery;
  if (rec !== undefined && rec.recovered.gaps + rec.partial.gaps > 0) {
    out.push(
      '',
      'Recovered over REST (backfill)',
      ...table(
        ['', 'GAPS', 'MESSAGES'],
        [
          ['recovered', String(rec.recovered.gaps), String(rec.recovered.messages)],
          ['partly recovered', String(rec.partial.gaps), String(rec.partial.messages)],
          ['still missing', String(rec.unrecovered.gaps), String(rec.unrecovered.messages)],
        ],
        new Set([1, 2]),
      ),
    );
  }
  if (Object.keys(s.totals.byMaintenance).length > 0) {
    out.push('', 'By maintenance window', ...table(['REASON', ...TOTALS_HEADER], totalsRows(s.totals.byMaintenance), NUMERIC));
  }
  out.push(
    '',
    'Gaps',
    ...table(
      ['START', 'END', 'DURATION', 'VENUE', 'STREAM', 'CAUSE', 'MISSED', 'MAINTENANCE', 'ID'],
      s.gaps.map((g) => [
        iso(g.start),
        g.end === null ? 'open' : iso(g.end),
        g.end === null ? `${formatDuration(Math.max(0, s.generatedAt - g.start))}+` : formatDuration(g.durationMs ?? g.end - g.start),
        g.venue ?? '-',
        g.stream,
        g.code !== null ? `${g.cause} (${g.code})` : g.cause,
        formatMissed(g.missed, g.recovered),
        g.maintenance ?? '-',
        g.id,
      ]),
      new Set([2]),
    ),
  );
  return out.join('\n') + '\n';
}
