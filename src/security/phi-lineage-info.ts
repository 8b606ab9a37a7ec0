/**
 * What the PHI lineage analysis knows about one value: its class, whether it went through a
 * generalizer, and readable paths back to the base columns it reads (see phi-lineage.ts).
 */
import type { PhiClass } from '../project/types.ts';

const RANK: Record<PhiClass, number> = { none: 0, quasi: 1, direct: 2 };

export function phiRank(p: PhiClass): number {
  return RANK[p];
}

export function maxPhi(a: PhiClass, b: PhiClass): PhiClass {
  return RANK[a] >= RANK[b] ? a : b;
}

/** One path from a base column to the value, base first. */
export interface Trace {
  /** Class this path contributes to the value (after generalizers and counts on the way). */
  phi: PhiClass;
  /** `relation.column` as keyed in LineageInput.relations. */
  base: string;
  baseClass: PhiClass;
  /** Names the value took after the base, oldest first: `p.ssn`, `x.ssn`, `tsf_generalized(…)`. */
  steps: string[];
  /** Computed on the way (a function, operator, cast, CASE…), not a column passed on as stored. */
  computed?: true;
  /**
   * Changed on the way by more than picking one of the values read (`max`, `coalesce`, a scalar
   * sub-select): a CASE, an operator, any other function. An incremental model's high-water test
   * is only one against values picked from `{{this}}` (phi-lineage-nodes.ts isHighWater).
   */
  reshaped?: true;
}

export interface Info {
  phi: PhiClass;
  generalized: boolean;
  traces: Trace[];
  /** `unknown relation raw.x`, `column y is not classified …`: things a reader should know. */
  notes: string[];
  /** Every identifying input was moved by the vault's per-person date shift (tsf_shifted). */
  shifted?: boolean;
}

/** Enough paths to see where an identifier came from without flooding a compile message. */
const MAX_TRACES = 20;
const MAX_NOTES = 10;

export function noneInfo(): Info {
  return { phi: 'none', generalized: false, traces: [], notes: [] };
}

/**
 * Something the analysis cannot resolve (an unknown relation, alias, function or column): fails
 * closed, so the value is `direct` until the model or its yml makes it resolvable.
 */
export function noteInfo(notes: string[]): Info {
  return { phi: 'direct', generalized: false, traces: [], notes: [...new Set(notes)].slice(0, MAX_NOTES) };
}

export function baseInfo(relation: string, column: string, phi: PhiClass): Info {
  return { phi, generalized: false, traces: [{ phi, base: `${relation}.${column}`, baseClass: phi, steps: [] }], notes: [] };
}

/** The value of an expression over several inputs: the max class, every path. */
export function combine(infos: readonly Info[]): Info {
  if (infos.length === 1) return infos[0]!;
  let phi: PhiClass = 'none';
  let generalized = false;
  const traces: Trace[] = [];
  const notes: string[] = [];
  const withTraces = infos.filter((i) => i.traces.length > 0);
  const shifted = withTraces.length > 0 && withTraces.every((i) => i.shifted === true);
  for (const i of infos) {
    phi = maxPhi(phi, i.phi);
    generalized ||= i.generalized;
    traces.push(...i.traces);
    notes.push(...i.notes);
  }
  return { phi, generalized, traces: capTraces(traces), notes: [...new Set(notes)].slice(0, MAX_NOTES), ...(shifted ? { shifted } : {}) };
}

/**
 * A date moved by `shift` (tsf_shifted): accepted only when `shift` is the vault's per-person
 * `date_shift_days` read as is. The shift's own path is consumed (it is what makes the date
 * safe); the value keeps its class, marked shifted, for a `requires_shifted` generalizer.
 */
export function shifted(value: Info, shift: Info, vaultShift: string, label: string): Info {
  // Passed on as stored through every CTE and derived table: `date_shift_days * 0 AS z` in a CTE,
  // or a UNION arm of zeros, shifted nothing, and month and day then gave the real birth date.
  const isVaultShift =
    shift.notes.length === 0 &&
    shift.traces.length > 0 &&
    shift.traces.every((t) => t.base.toLowerCase() === vaultShift.toLowerCase() && !t.computed && !t.reshaped && t.steps.every((s) => !s.includes('(')));
  if (!isVaultShift) return combine([value, noteInfo([`${label}: a date may be shifted only by the vault's per-person ${vaultShift}, passed on as stored (a constant, or an expression over it anywhere upstream, undoes the shift)`])]);
  // A date the reader knows (a constant, a column of class none) moved by the shift is the shift:
  // `shift_date(date '1970-01-01', …) - date '1970-01-01'` published every person's.
  const rest = value.traces.filter((t) => t.base.toLowerCase() !== vaultShift.toLowerCase());
  if (!rest.some((t) => t.baseClass !== 'none')) {
    return noteInfo([`${label}: moves only an identifying date read from a column (quasi or direct); a constant or a date of class none, moved by the shift, gives the shift back`]);
  }
  const phi = rest.reduce<PhiClass>((p, t) => maxPhi(p, t.phi), 'none');
  return { phi: value.notes.length > 0 ? 'direct' : phi, generalized: value.generalized, traces: rest.map((t) => withStep(t, label, t.phi)), notes: value.notes, shifted: true };
}

/** The value under a new name (`p.ssn`, `cte.ssn`, `upper(…)`); a repeated name is not repeated. */
export function step(info: Info, label: string): Info {
  if (info.traces.length === 0) return info;
  return { ...info, traces: info.traces.map((t) => withStep(t, label, t.phi)) };
}

/**
 * Through an approved generalizer: quasi-identifiers become 'none'; a direct identifier stays
 * 'direct' (a generalized SSN or name is still a direct identifier; only a tokenization, which is
 * not a generalizer, removes it).
 */
export function generalize(info: Info, label: string): Info {
  const down = (p: PhiClass): PhiClass => (p === 'direct' ? 'direct' : 'none');
  return {
    phi: down(info.phi),
    generalized: true,
    traces: info.traces.map((t) => withStep(t, label, down(t.phi))),
    notes: info.notes,
  };
}

/** The value of an expression over `info` (not the column itself): see Trace.computed. */
export function computedFrom(info: Info): Info {
  if (info.traces.every((t) => t.computed)) return info;
  return { ...info, traces: info.traces.map((t) => (t.computed ? t : { ...t, computed: true })) };
}

export function reshapedFrom(info: Info): Info {
  if (info.traces.every((t) => t.reshaped)) return info;
  return { ...info, traces: info.traces.map((t) => (t.reshaped ? t : { ...t, reshaped: true })) };
}

/** `count(…)`, `x IS NULL`: a number of rows, or whether a value is there, identifies nobody. */
export function nonIdentifying(info: Info, label: string): Info {
  return { phi: 'none', generalized: false, traces: info.traces.map((t) => withStep(t, label, 'none')), notes: info.notes };
}

/** `name <- p.name <- __tsf_ref_x.name (direct)`, the highest classes first. */
export function lineageLines(info: Info): string[] {
  const lines = [...info.traces]
    .sort((a, b) => RANK[b.phi] - RANK[a.phi])
    .map((t) => [...t.steps].reverse().concat(`${t.base} (${t.baseClass})`).join(' <- '));
  // Direct because of a note (an unknown function, a generalizer given an expression): the note says why.
  if (info.phi === 'direct' && !info.traces.some((t) => t.phi === 'direct')) return [...info.notes, ...new Set(lines)];
  return [...new Set(lines), ...info.notes];
}

function withStep(t: Trace, label: string, phi: PhiClass): Trace {
  const last = t.steps[t.steps.length - 1] ?? t.base;
  return { ...t, phi, steps: last.toLowerCase() === label.toLowerCase() ? t.steps : [...t.steps, label] };
}

/** Drops repeated paths, and keeps the highest-class ones when there are too many. */
function capTraces(traces: Trace[]): Trace[] {
  const seen = new Set<string>();
  const unique = traces.filter((t) => {
    const key = `${t.phi}|${t.base}|${t.steps.join('|')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (unique.length <= MAX_TRACES) return unique;
  return unique.sort((a, b) => RANK[b.phi] - RANK[a.phi]).slice(0, MAX_TRACES);
}

/**
 * A column of a UNION (or a VALUES list) one of whose arms reads no column: in some rows it is
 * not the column as stored (`SELECT date_shift_days … UNION ALL SELECT 0 …` passed a zero shift).
 */
export function unionColumn(a: Info, b: Info): Info {
  const merged = combine([a, b]);
  return (a.traces.length === 0) !== (b.traces.length === 0) ? computedFrom(merged) : merged;
}

/** A value as stored (or cast): no identifying input computed on the way, here or upstream. */
export function asStored(i: Info): boolean {
  return !i.traces.some((t) => t.computed && t.phi !== 'none');
}
