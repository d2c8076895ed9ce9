/**
 * The gap ledger's entry format: one NDJSON line per write, the same `id` on the line written when
 * a gap opens (end: null) and on the line written when it closes. docs/gap-ledger.md describes each
 * field and each cause; test/ledger-report.test.ts fails when a cause is missing there.
 */

/** Why a stream delivered nothing (or skipped IDs). See docs/gap-ledger.md, "Causes". */
export const GAP_CAUSES = [
  'server_close',
  'network_error',
  'stale',
  'rate_limited',
  'maintenance',
  'sequence',
  'sequence_reset',
  'daemon_down',
  'shutdown',
  'recorder_dropped',
  'listen_key_expired',
  'stream_terminated',
  'switchover',
  'sink_dropped',
  'silent',
  'delisted',
] as const;

export type GapCause = (typeof GAP_CAUSES)[number];

/**
 * The sequence IDs a gap lost, for streams whose IDs are contiguous (trade `t`, aggTrade `a`, diff
 * depth `U/u`). `from` is the first ID not received, `to` the last. `count` is the number of
 * messages missed when IDs count messages (trade, aggTrade), null when they do not (depth update IDs:
 * one event covers several), and 0 when nothing was missed (then `to` = `from` - 1).
 */
export interface Missed {
  field: string;
  from: number;
  to: number;
  count: number | null;
}

export interface GapEntry {
  /** Unique and sortable: `<UTC time of writing, ms>-<counter>`, e.g. `20260709T070000.123Z-000001`. */
  id: string;
  /** The venue (feed) of the stream; null only in entries of versions that had one venue. */
  venue: string | null;
  /** The canonical stream id, e.g. `btcusdt@trade`, `trades:BTC-USDT`. */
  stream: string;
  /** The connection the stream was on; null when none (daemon_down). */
  connection: string | null;
  /** Epoch ms: the last moment the stream was known to be delivering. */
  start: number;
  /** Epoch ms: when it delivered again; null while the gap is open. */
  end: number | null;
  durationMs: number | null;
  cause: GapCause;
  /** WebSocket close code (server_close), HTTP status (rate_limited), or null. */
  code: number | null;
  detail: string | null;
  /** The maintenance window's reason when the gap overlaps one, else null. */
  maintenance: string | null;
  missed: Missed | null;
  /**
   * Set on the line the backfill appends once it is done with the missed range (docs/recovery.md);
   * absent (read as null) before, and on entries it does not backfill.
   */
  recovered?: Recovered | null;
}

/** What REST backfill got back of an entry's missed range. */
export interface Recovered {
  /** Messages of the range now in the recording from REST. */
  count: number;
  /** Every ID of the range recovered. */
  complete: boolean;
  /** Epoch ms the backfill finished. */
  at: number;
  /** The parts of the range the exchange no longer serves (empty when complete). */
  remaining: Array<{ from: number; to: number; count: number }>;
}

/** The line written for an entry: fixed key order, one line, newline-terminated. */
export function entryLine(e: GapEntry): string {
  return (
    JSON.stringify({
      id: e.id,
      venue: e.venue,
      stream: e.stream,
      connection: e.connection,
      start: e.start,
      end: e.end,
      durationMs: e.durationMs,
      cause: e.cause,
      code: e.code,
      detail: e.detail,
      maintenance: e.maintenance,
      missed: e.missed,
      ...(e.recovered == null ? {} : { recovered: e.recovered }),
    }) + '\n'
  );
}

function numOrNull(v: unknown): number | null | undefined {
  if (v === null || v === undefined) return null;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function strOrNull(v: unknown): string | null | undefined {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : undefined;
}

function parseMissed(v: unknown): Missed | null | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return undefined;
  const m = v as Record<string, unknown>;
  const count = numOrNull(m.count);
  if (typeof m.field !== 'string' || typeof m.from !== 'number' || typeof m.to !== 'number' || count === undefined) {
    return undefined;
  }
  return { field: m.field, from: m.from, to: m.to, count };
}

function parseRecovered(v: unknown): Recovered | null {
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (typeof r.count !== 'number' || typeof r.complete !== 'boolean' || typeof r.at !== 'number') return null;
  const remaining = Array.isArray(r.remaining)
    ? r.remaining.filter((x): x is { from: number; to: number; count: number } => typeof x === 'object' && x !== null && typeof (x as { from?: unknown }).from === 'number' && typeof (x as { to?: unknown }).to === 'number' && typeof (x as { count?: unknown }).count === 'number')
    : [];
  return { count: r.count, complete: r.complete, at: r.at, remaining };
}

/**
 * Parse one ledger line; null when it is not a valid entry (a torn line from a crash, or garbage).
 * An unknown cause string is kept as is, so an older binary can still report a newer ledger.
 */
export function parseEntryLine(text: string): GapEntry | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
  const r = o as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id === '' || typeof r.stream !== 'string' || typeof r.cause !== 'string') return null;
  if (typeof r.start !== 'number' || !Number.isFinite(r.start)) return null;
  const connection = strOrNull(r.connection);
  const venue = strOrNull(r.venue);
  const end = numOrNull(r.end);
  const durationMs = numOrNull(r.durationMs);
  const code = numOrNull(r.code);
  const detail = strOrNull(r.detail);
  const maintenance = strOrNull(r.maintenance);
  const missed = parseMissed(r.missed);
  if (
    connection === undefined ||
    venue === undefined ||
    end === undefined ||
    durationMs === undefined ||
    code === undefined ||
    detail === undefined ||
    maintenance === undefined ||
    missed === undefined
  ) {
    return null;
  }
  const recovered = parseRecovered(r.recovered);
  return {
    ...(recovered === null ? {} : { recovered }),
    id: r.id,
    venue,
    stream: r.stream,
    connection,
    start: r.start,
    end,
    durationMs,
    cause: r.cause as GapCause,
    code,
    detail,
    maintenance,
    missed,
  };
}
