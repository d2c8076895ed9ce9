import { parseRecordedLine } from '../../recorder/line.js';
import { recordedKeys } from '../../ledger/missed.js';
import { parseEntryLine, type GapEntry, type Missed } from '../../ledger/types.js';
import { getVenue } from '../../venues/index.js';
import type { StreamType, Venue } from '../../venues/types.js';
import type { StoredMessage } from './reader.js';

/**
 * `feedkeeper audit` (docs/scale-out.md, "The audit"): the merged gap ledger of a redundant
 * deployment, read back from the JetStream stream. Per subject whose IDs are contiguous (trade `t`,
 * aggTrade `a`, OKX `tradeId`), the holes in the merged stream: what every collector missed. Per
 * collector, from the ledger entries it published to `<prefix>.<venue>._gaps`, what it missed and
 * how much of that the others covered. The broker keeps one copy of each Msg-Id, so an ID stored
 * twice means a republish after the duplicate window (a collector down longer than
 * sinks.nats.duplicateWindowMs): counted per subject.
 */

export interface Hole {
  from: number;
  to: number;
  count: number;
  /** A ledger entry of some collector covering it is tagged with this maintenance window. */
  maintenance: string | null;
}

export interface SubjectAudit {
  subject: string;
  venue: string;
  stream: string;
  field: string;
  messages: number;
  first: number;
  last: number;
  /** IDs between first and last held by the stream. */
  ids: number;
  /** IDs stored more than once (republished after the duplicate window). */
  duplicates: number;
  holes: Hole[];
  /** Whose copy the stream kept (Feedkeeper-Collector), messages per collector. */
  kept: Record<string, number>;
}

export interface CollectorGap {
  id: string;
  venue: string | null;
  stream: string;
  cause: string;
  start: number;
  end: number | null;
  maintenance: string | null;
  missed: Missed | null;
  /** Of the missed IDs, how many the merged stream holds (another collector had them); null when unknown. */
  covered: number | null;
}

export interface CollectorAudit {
  collector: string;
  gaps: CollectorGap[];
  /** Sum of the missed counts of its entries. */
  missed: number;
  /** Of those, held by the merged stream. */
  covered: number;
}

export interface AuditReport {
  stream: string;
  range: { since: number | null; until: number | null };
  messages: number;
  subjects: SubjectAudit[];
  /** Subjects without contiguous IDs: only counted (their holes cannot be told). */
  unsequenced: Array<{ subject: string; messages: number }>;
  collectors: CollectorAudit[];
  /** Holes of the merged stream outside any maintenance window. */
  holes: number;
  holesInMaintenance: number;
  /** Lines that were neither a recording line nor a ledger entry. */
  unreadable: number;
  ok: boolean;
}

interface SubjectState {
  subject: string;
  venue: string;
  stream: string;
  field: string;
  firsts: number[];
  lasts: number[];
  kept: Map<string, number>;
}

/** Collects the stream's messages (add) and reports (report). */
export class Auditor {
  private readonly subjects = new Map<string, SubjectState>();
  private readonly unsequenced = new Map<string, number>();
  private readonly types = new Map<string, { venue: Venue; type: StreamType | null } | null>();
  /** collector → entry id → the entry (a closed line wins over the open one). */
  private readonly entries = new Map<string, Map<string, GapEntry>>();
  private readonly decoder = new TextDecoder();
  private messages = 0;
  private unreadable = 0;

  add(m: StoredMessage): void {
    this.messages++;
    const text = this.decoder.decode(m.data);
    if (m.subject.endsWith('._gaps')) {
      const e = parseEntryLine(text);
      if (e === null) {
        this.unreadable++;
        return;
      }
      const who = m.collector ?? 'unknown';
      let mine = this.entries.get(who);
      if (mine === undefined) this.entries.set(who, (mine = new Map()));
      const had = mine.get(e.id);
      if (had === undefined || had.end === null) mine.set(e.id, e);
      return;
    }
    const line = parseRecordedLine(text);
    if (line === null || line.venue === null) {
      this.unreadable++;
      return;
    }
    const key = `${line.venue}\u0000${line.stream}`;
    let vt = this.types.get(key);
    if (vt === undefined) {
      const venue = getVenue(line.venue);
      vt = venue === undefined ? null : { venue, type: venue.streamType(venue.typeOf(line.stream)) };
      this.types.set(key, vt);
    }
    if (vt === null || vt.type === null || vt.type.sequence.kind !== 'contiguous') {
      this.unsequenced.set(m.subject, (this.unsequenced.get(m.subject) ?? 0) + 1);
      return;
    }
    const keys = recordedKeys(vt.venue, vt.type, line.data);
    if (keys === null) {
      this.unreadable++;
      return;
    }
    let st = this.subjects.get(m.subject);
    if (st === undefined) {
      st = { subject: m.subject, venue: line.venue, stream: line.stream, field: vt.type.sequence.field, firsts: [], lasts: [], kept: new Map() };
      this.subjects.set(m.subject, st);
    }
    st.firsts.push(keys.first === keys.first ? keys.first : keys.last);
    st.lasts.push(keys.last);
    const who = m.collector ?? 'unknown';
    st.kept.set(who, (st.kept.get(who) ?? 0) + 1);
  }

  report(stream: string, range: { since: number | null; until: number | null }): AuditReport {
    const all = [...this.entries.values()].flatMap((m) => [...m.values()]);
    const merged = new Map<string, Array<[number, number]>>();
    const subjects: SubjectAudit[] = [];
    let holes = 0;
    let holesInMaintenance = 0;
    for (const st of [...this.subjects.values()].sort((a, b) => a.subject.localeCompare(b.subject))) {
      const order = st.firsts.map((_, i) => i).sort((a, b) => st.firsts[a]! - st.firsts[b]! || st.lasts[a]! - st.lasts[b]!);
      const spans: Array<[number, number]> = [];
      let duplicates = 0;
      let ids = 0;
      const found: Hole[] = [];
      for (const i of order) {
        const f = st.firsts[i]!;
        const l = st.lasts[i]!;
        const cur = spans[spans.length - 1];
        if (cur === undefined) {
          spans.push([f, l]);
          ids += l - f + 1;
          continue;
        }
        if (f > cur[1] + 1) {
          found.push({ from: cur[1] + 1, to: f - 1, count: f - cur[1] - 1, maintenance: null });
          spans.push([f, l]);
          ids += l - f + 1;
          continue;
        }
        if (f <= cur[1]) duplicates += Math.min(l, cur[1]) - f + 1;
        if (l > cur[1]) {
          ids += l - cur[1];
          cur[1] = l;
        }
      }
      for (const h of found) {
        const tag = all.find((e) => e.maintenance !== null && e.missed !== null && (e.venue ?? st.venue) === st.venue && e.stream === st.stream && e.missed.from <= h.to && e.missed.to >= h.from);
        h.maintenance = tag?.maintenance ?? null;
        if (h.maintenance === null) holes++;
        else holesInMaintenance++;
      }
      merged.set(`${st.venue}\u0000${st.stream}`, spans);
      subjects.push({
        subject: st.subject,
        venue: st.venue,
        stream: st.stream,
        field: st.field,
        messages: st.firsts.length,
        first: spans[0]?.[0] ?? NaN,
        last: spans[spans.length - 1]?.[1] ?? NaN,
        ids,
        duplicates,
        holes: found,
        kept: Object.fromEntries([...st.kept].sort()),
      });
    }

    const collectors: CollectorAudit[] = [];
    for (const [collector, byId] of [...this.entries].sort((a, b) => a[0].localeCompare(b[0]))) {
      const gaps: CollectorGap[] = [];
      let missed = 0;
      let covered = 0;
      for (const e of [...byId.values()].sort((a, b) => a.start - b.start || a.id.localeCompare(b.id))) {
        const spans = merged.get(`${e.venue ?? ''}\u0000${e.stream}`);
        let c: number | null = null;
        if (e.missed !== null && e.missed.to >= e.missed.from && spans !== undefined) {
          c = overlap(spans, e.missed.from, e.missed.to);
          if (e.missed.count !== null) {
            missed += e.missed.count;
            covered += Math.min(c, e.missed.count);
          }
        }
        gaps.push({ id: e.id, venue: e.venue, stream: e.stream, cause: e.cause, start: e.start, end: e.end, maintenance: e.maintenance, missed: e.missed, covered: c });
      }
      collectors.push({ collector, gaps, missed, covered });
    }
    return {
      stream,
      range,
      messages: this.messages,
      subjects,
      unsequenced: [...this.unsequenced].sort((a, b) => a[0].localeCompare(b[0])).map(([subject, messages]) => ({ subject, messages })),
      collectors,
      holes,
      holesInMaintenance,
      unreadable: this.unreadable,
      ok: holes === 0,
    };
  }
}

/** IDs of [from; to] inside the sorted, disjoint spans. */
function overlap(spans: ReadonlyArray<[number, number]>, from: number, to: number): number {
  let n = 0;
  for (const [a, b] of spans) {
    if (b < from) continue;
    if (a > to) break;
    n += Math.min(b, to) - Math.max(a, from) + 1;
  }
  return n;
}

function iso(ms: number | null): string {
  return ms === null ? 'open' : new Date(ms).toISOString();
}

/** The report as text: per subject, then per collector, then the verdict. */
export function formatAudit(r: AuditReport): string {
  const out: string[] = [];
  out.push(`JetStream stream ${r.stream}: ${r.messages} messages read${r.range.since !== null || r.range.until !== null ? ` (${iso(r.range.since ?? null)} .. ${r.range.until === null ? 'now' : iso(r.range.until)})` : ''}`, '');
  out.push('Merged stream, subjects with contiguous IDs');
  if (r.subjects.length === 0) out.push('  (none)');
  for (const s of r.subjects) {
    const kept = Object.entries(s.kept).map(([c, n]) => `${c} ${n}`).join(', ');
    out.push(`  ${s.subject}  ${s.field} ${s.first}..${s.last}: ${s.ids} IDs, ${s.holes.length} hole${s.holes.length === 1 ? '' : 's'}${s.duplicates > 0 ? `, ${s.duplicates} stored twice (republished after the duplicate window)` : ''}  [kept: ${kept}]`);
    for (const h of s.holes) out.push(`    hole ${s.field} ${h.from}..${h.to} (${h.count} missing)${h.maintenance !== null ? ` in maintenance: ${h.maintenance}` : ''}`);
  }
  if (r.unsequenced.length > 0) {
    out.push('', 'Subjects without contiguous IDs (holes cannot be told)');
    for (const u of r.unsequenced) out.push(`  ${u.subject}: ${u.messages} messages`);
  }
  out.push('', 'Per collector (its own ledger entries, from <prefix>.<venue>._gaps)');
  if (r.collectors.length === 0) out.push('  (no ledger entries published)');
  for (const c of r.collectors) {
    out.push(`  ${c.collector}: ${c.gaps.length} entr${c.gaps.length === 1 ? 'y' : 'ies'}, ${c.missed} IDs missed, ${c.covered} of them covered by another collector`);
    for (const g of c.gaps) {
      const m = g.missed === null ? '' : ` ${g.missed.field} ${g.missed.from}..${g.missed.to}${g.covered !== null ? ` (${g.covered} in the merged stream)` : ''}`;
      out.push(`    ${g.cause} ${g.venue ?? ''} ${g.stream} ${iso(g.start)} .. ${iso(g.end)}${m}${g.maintenance !== null ? ` [maintenance: ${g.maintenance}]` : ''}`);
    }
  }
  out.push('');
  out.push(
    r.ok
      ? `No hole in the merged stream${r.holesInMaintenance > 0 ? ` outside maintenance windows (${r.holesInMaintenance} inside)` : ''}.`
      : `${r.holes} hole${r.holes === 1 ? '' : 's'} in the merged stream outside maintenance windows: every collector missed these IDs.`,
  );
  if (r.unreadable > 0) out.push(`${r.unreadable} message${r.unreadable === 1 ? '' : 's'} could not be read (neither a recording line nor a ledger entry).`);
  return out.join('\n') + '\n';
}
