import { formatReport, summarize, type GapSummary } from '../ledger/report.js';
import { checkRun } from './check.js';
import { formatInvariant, type InvariantResult } from './invariant.js';
import { Rig } from './rig.js';
import { getScenario, type RehearsalCheck } from './scenarios.js';
import { systemClock } from '../clock.js';

/**
 * Plays one scenario against the bundled simulator and checks the ledger it leaves: the scenario's
 * own expectations and the invariant (recorded + missed = sent). Offline, in a temporary directory.
 */

export interface RehearseOptions {
  /** The venue rehearsed (default binance-spot). */
  venue?: string;
  /** Timeline lines as they happen. */
  log?: (line: string) => void;
  /** Keep the temporary directory (config, recording, ledger) for inspection. */
  keep?: boolean;
  /** Abort (SIGINT): the rehearsal stops where it is and fails. */
  signal?: AbortSignal;
}

export interface RehearsalResult {
  scenario: string;
  venue: string;
  /** The invariant holds and every check passed. */
  ok: boolean;
  durationMs: number;
  /** Where the config, recording and ledger were (removed unless kept). */
  dir: string;
  steps: string[];
  checks: RehearsalCheck[];
  invariant: InvariantResult;
  /** The ledger over the rehearsal, up to the final stop (feedkeeper gaps --json). */
  summary: GapSummary;
  /** `shutdown` gaps opened by the final stop itself: left out of the summary and the checks. */
  stopGaps: number;
}

export async function rehearse(name: string, opts: RehearseOptions = {}): Promise<RehearsalResult> {
  const scenario = getScenario(name);
  if (scenario === undefined) throw new RangeError(`unknown scenario ${name}`);
  const venue = opts.venue ?? 'binance-spot';
  const no = scenario.unavailable?.(venue) ?? null;
  if (no !== null) throw new RangeError(no);
  const t0 = systemClock.now();
  const rig = await Rig.open({ ...scenario.rig(venue), log: opts.log, keep: opts.keep, signal: opts.signal });
  const checks: RehearsalCheck[] = [];
  try {
    try {
      await scenario.play(rig);
      checks.push({ name: 'the scenario ran to the end', ok: true });
    } catch (err) {
      rig.step(`FAILED: ${(err as Error).message}`);
      checks.push({ name: 'the scenario ran to the end', ok: false, detail: (err as Error).message });
      await rig.stopDaemon().catch(() => undefined);
    }
    const end = rig.endAt ?? systemClock.now();
    const { invariant, entries } = await checkRun(rig.config, rig.sim);
    const during = entries.filter((g) => g.start < end);
    checks.push(...scenario.expect(rig, during));
    const summary = summarize(during, { since: t0, until: end, now: end });
    return {
      scenario: name,
      venue,
      ok: invariant.ok && checks.every((c) => c.ok),
      durationMs: systemClock.now() - t0,
      dir: rig.dir,
      steps: rig.steps,
      checks,
      invariant,
      summary,
      stopGaps: entries.length - during.length,
    };
  } finally {
    await rig.close();
  }
}

/** The rehearsal for people: timeline, gap report, invariant, checks, verdict. */
export function formatRehearsal(r: RehearsalResult): string {
  const out: string[] = [`Rehearsal: ${r.scenario} on ${r.venue}`, '', 'Timeline', ...r.steps.map((s) => `  ${s}`), ''];
  out.push(formatReport(r.summary).trimEnd());
  if (r.stopGaps > 0) out.push(`  (${r.stopGaps} shutdown gaps opened by the final stop are left out: they close at the next start)`);
  out.push('', formatInvariant(r.invariant).trimEnd(), '', 'Checks');
  for (const c of r.checks) out.push(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}${c.detail !== undefined ? `: ${c.detail}` : ''}`);
  const failed = r.checks.filter((c) => !c.ok).length;
  out.push(
    '',
    `${r.ok ? 'PASS' : 'FAIL'}: invariant ${r.invariant.ok ? 'holds' : 'FAILS'}, ${r.checks.length - failed}/${r.checks.length} checks passed, ${(r.durationMs / 1000).toFixed(1)} s`,
  );
  return out.join('\n') + '\n';
}
