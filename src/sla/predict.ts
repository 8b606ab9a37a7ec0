import type { Tenant } from '../project/types.ts';

/**
 * SLA prediction from run history (the state store's `tsform_meta.node_runs`). Pure.
 *
 * Choice: a practice's expected run time is the **sum over models of that practice's p90 node
 * duration per model**, not the p90 of whole-run sums. Reasons:
 * - history holds partial runs (`--select`, runs where a failure skipped the downstream); a
 *   per-run sum would mix them with full runs, a per-model p90 does not care;
 * - a run in progress needs the time of its *remaining* models, which the per-model figures
 *   give directly, and a full run is just "every model remaining";
 * - a new model, or a new practice, borrows the fleet's p90 for that model instead of counting 0.
 * Σ p90 ≥ p90 of Σ, and the sum is serial time although a practice may run nodes in parallel,
 * so the estimate errs late: an at-risk alert comes early rather than never.
 *
 * Only `success` rows count (a failed node's time says little about a good run). Only the most
 * recent `window` samples per (practice, model) are kept, so a practice that grew is seen as it
 * is now. Global nodes (`tenant` null) are not part of any practice's figure.
 */

/** One row of run history, as read from `tsform_meta.node_runs` (extra columns are ignored). */
export interface HistoryRow {
  run_id?: string;
  tenant: string | null;
  node: string;
  /** Plan step id: the model name for builds, the test id for tests. */
  model: string;
  status: string;
  /** BIGINT columns may arrive as bigint or string, depending on the driver. */
  duration_ms: number | bigint | string;
  finished_at: string | Date;
}

export interface PredictOptions {
  /** Quantile of node durations used as "a bad but normal day". Default 0.9. */
  quantile?: number;
  /** Most recent successful samples kept per (practice, model). Default 20. */
  window?: number;
}

/** Time still needed for a set of models, and where each figure came from. */
export interface RemainingEstimate {
  ms: number;
  /** Models priced from the practice's own history. */
  fromPractice: number;
  /** Models priced from the fleet's p90 because the practice has no sample yet. */
  fromFleet: number;
  /** Models nobody has run yet: priced at 0. */
  unknown: string[];
}

type TenantRef = string | Pick<Tenant, 'id'>;
const idOf = (t: TenantRef): string => (typeof t === 'string' ? t : t.id);

/**
 * Per-(practice, model) duration quantiles, indexed once. The runner builds one at the start of
 * a run and asks it after every node, which costs O(remaining models), not O(history).
 */
export class DurationProfile {
  private readonly q: number;
  private readonly byTenant = new Map<string, Map<string, number[]>>();
  private readonly byModel = new Map<string, number[]>();
  private readonly cache = new Map<string, number>();

  private constructor(q: number) {
    this.q = q;
  }

  static fromHistory(history: readonly HistoryRow[], options: PredictOptions = {}): DurationProfile {
    const q = options.quantile ?? 0.9;
    const window = options.window ?? 20;
    if (!(q > 0 && q <= 1)) throw new RangeError(`quantile must be in (0, 1], got ${q}`);
    if (!(window >= 1)) throw new RangeError(`window must be at least 1, got ${window}`);
    const profile = new DurationProfile(q);
    const samples = new Map<string, Map<string, { at: number; ms: number }[]>>();
    for (const row of history) {
      if (row.tenant === null || row.status !== 'success') continue;
      const ms = Number(row.duration_ms);
      if (!Number.isFinite(ms) || ms < 0) continue;
      const at = new Date(row.finished_at).getTime();
      let models = samples.get(row.tenant);
      if (!models) samples.set(row.tenant, (models = new Map()));
      let list = models.get(row.model);
      if (!list) models.set(row.model, (list = []));
      list.push({ at: Number.isFinite(at) ? at : 0, ms });
    }
    for (const [tenant, models] of samples) {
      const kept = new Map<string, number[]>();
      for (const [model, list] of models) {
        const recent = list.length > window ? list.sort((a, b) => b.at - a.at).slice(0, window) : list;
        const durations = recent.map((s) => s.ms);
        kept.set(model, durations);
        let fleet = profile.byModel.get(model);
        if (!fleet) profile.byModel.set(model, (fleet = []));
        for (const d of durations) fleet.push(d);
      }
      profile.byTenant.set(tenant, kept);
    }
    return profile;
  }

  /** Models this practice has successfully run within the window. */
  modelsOf(tenant: TenantRef): string[] {
    return [...(this.byTenant.get(idOf(tenant))?.keys() ?? [])];
  }

  hasHistory(tenant: TenantRef): boolean {
    return this.byTenant.has(idOf(tenant));
  }

  /** The practice's p90 duration of one model, or the fleet's when it has none. */
  modelQuantileMs(tenant: TenantRef, model: string): { ms: number; basis: 'practice' | 'fleet' } | undefined {
    const id = idOf(tenant);
    const own = this.byTenant.get(id)?.get(model);
    if (own) return { ms: this.cached(`t\u0000${id}\u0000${model}`, own), basis: 'practice' };
    const fleet = this.byModel.get(model);
    if (fleet) return { ms: this.cached(`m\u0000${model}`, fleet), basis: 'fleet' };
    return undefined;
  }

  /** Time the practice still needs for `models`: Σ of per-model p90s. */
  remaining(tenant: TenantRef, models: Iterable<string>): RemainingEstimate {
    const out: RemainingEstimate = { ms: 0, fromPractice: 0, fromFleet: 0, unknown: [] };
    for (const model of models) {
      const m = this.modelQuantileMs(tenant, model);
      if (!m) out.unknown.push(model);
      else {
        out.ms += m.ms;
        if (m.basis === 'practice') out.fromPractice++;
        else out.fromFleet++;
      }
    }
    return out;
  }

  /**
   * A whole run of the practice: `models` is what a full run builds for it (the plan's steps);
   * without it, every model the practice has history for.
   */
  runEstimate(tenant: TenantRef, models?: Iterable<string>): RemainingEstimate {
    return this.remaining(tenant, models ?? this.modelsOf(tenant));
  }

  private cached(key: string, values: number[]): number {
    let v = this.cache.get(key);
    if (v === undefined) this.cache.set(key, (v = quantile(values, this.q)));
    return v;
  }
}

/** When a run in progress should finish: `now` plus the p90 time of the practice's remaining models. */
export function predictFinish(
  tenant: TenantRef,
  now: Date,
  remainingModels: Iterable<string>,
  history: readonly HistoryRow[] | DurationProfile,
): Date {
  const profile = history instanceof DurationProfile ? history : DurationProfile.fromHistory(history);
  return new Date(now.getTime() + profile.remaining(tenant, remainingModels).ms);
}

/** The practice's p90 whole-run time (see the choice above), or undefined without any history. */
export function p90RunMs(
  tenant: TenantRef,
  history: readonly HistoryRow[] | DurationProfile,
  models?: Iterable<string>,
): number | undefined {
  const profile = history instanceof DurationProfile ? history : DurationProfile.fromHistory(history);
  const e = profile.runEstimate(tenant, models);
  return e.fromPractice + e.fromFleet > 0 ? e.ms : undefined;
}

/** Nearest-rank quantile: the smallest sample with at least `q` of the samples at or below it. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}
