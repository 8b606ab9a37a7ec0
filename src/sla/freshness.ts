import type { Tenant } from '../project/types.ts';
import { addDays, localDateOf, localTimeOf, slaDeadline } from './deadline.ts';
import { DurationProfile, type HistoryRow } from './predict.ts';

/**
 * Freshness of every practice against its own T+1 SLA (DESIGN §1 promise 4). Pure: the caller
 * reads the state store and the run's progress, this turns them into one row per practice.
 *
 * - `fresh`: the data date is loaded, or the practice is on track: its deadline is still ahead,
 *   it met the previous one, and neither rule of `at_risk` holds. `loaded` tells the two apart.
 * - `pending`: the practice was never loaded and has no run history of its own (a new practice,
 *   or the project's first run). Nothing was ever promised for it, so it is neither late nor at
 *   risk and pages no one; once it has a load or a successful node, the rules below apply.
 * - `late`: the data date is not loaded and the deadline has passed, or, before the deadline,
 *   the practice has not even loaded what yesterday's deadline required (it is still late from
 *   yesterday). A practice never loaded (but with history) is judged against today's deadline
 *   only: nothing says since when it has been due.
 * - `at_risk`: not loaded, deadline ahead, and either the run in progress is predicted (p90) to
 *   finish at or after the deadline, or no run is in progress and less than a p90 run is left.
 *   Without any history (own or fleet) nothing is predicted and the reason says so.
 *
 * Rows and reasons name practice ids and names, dates and counts only: never row data.
 */

export type FreshnessStatus = 'fresh' | 'pending' | 'at_risk' | 'late';

export type FreshnessTenant = Pick<Tenant, 'id' | 'name' | 'timezone' | 'readyBy'>;

/** What the state store knows about one practice. */
export interface TenantLoadState {
  /** Last local date (YYYY-MM-DD) whose data is fully loaded. */
  loadedThrough?: string;
  /** Instant (ISO) of the practice's last successful run. */
  lastSuccessAt?: string;
}

/** A practice's part of a run in progress. */
export interface TenantProgress {
  /** Plan step ids (model names, test ids) not finished yet for this practice. */
  remainingModels: readonly string[];
  /** Its nodes waiting for a slot. */
  queuedNodes: number;
}

export interface FreshnessInput {
  tenants: readonly FreshnessTenant[];
  now: Date;
  /** By practice id; a missing entry means never loaded. */
  state: ReadonlyMap<string, TenantLoadState>;
  /** By practice id, for practices in the run in progress. */
  inProgress?: ReadonlyMap<string, TenantProgress>;
  /** Rows of `tsform_meta.node_runs`, or a profile built from them once. */
  history: readonly HistoryRow[] | DurationProfile;
  /** Step ids a full run builds for a practice; default: those in the practice's history. */
  runModels?: readonly string[];
}

export interface FreshnessRow {
  tenant: string;
  name: string;
  timezone: string;
  ready_by: string;
  /** Today's deadline in the practice's zone, ISO instant. */
  deadline: string;
  /** The practice's local yesterday, YYYY-MM-DD. */
  data_date: string;
  loaded_through: string | null;
  status: FreshnessStatus;
  reason: string;
  /** Whether `data_date` is loaded (a `fresh` row without it is on track, not done). */
  loaded: boolean;
  /** ISO instant; only for a practice with a run in progress and a history to predict from. */
  predicted_finish: string | null;
  /** p90 time still needed: the remaining steps of the run in progress, else a whole run. */
  p90_ms: number | null;
  /** Nodes queued in the run in progress; null when none is. */
  queued_nodes: number | null;
  last_success_at: string | null;
}

export function evaluateFreshness(input: FreshnessInput): FreshnessRow[] {
  const profile = input.history instanceof DurationProfile ? input.history : DurationProfile.fromHistory(input.history);
  return input.tenants.map((tenant) =>
    evaluateTenantFreshness(tenant, {
      now: input.now,
      state: input.state.get(tenant.id),
      progress: input.inProgress?.get(tenant.id),
      profile,
      runModels: input.runModels,
    }),
  );
}

/** One practice; the runner calls this after each of the practice's nodes to alert at once. */
export function evaluateTenantFreshness(
  tenant: FreshnessTenant,
  ctx: { now: Date; state?: TenantLoadState; progress?: TenantProgress; profile: DurationProfile; runModels?: readonly string[] },
): FreshnessRow {
  const { now, progress, profile } = ctx;
  const { dataDate, deadline } = slaDeadline(tenant, now);
  const loadedThrough = normalizeDate(ctx.state?.loadedThrough);
  const loaded = loadedThrough !== null && loadedThrough >= dataDate;
  const passed = now.getTime() >= deadline.getTime();
  const yesterdayDue = addDays(dataDate, -1);
  const stillLateFromYesterday = !passed && loadedThrough !== null && loadedThrough < yesterdayDue;

  const estimate = progress ? profile.remaining(tenant.id, progress.remainingModels) : profile.runEstimate(tenant.id, ctx.runModels);
  const predictable = estimate.fromPractice + estimate.fromFleet > 0 || (progress !== undefined && progress.remainingModels.length === 0);
  const predicted = progress && predictable ? new Date(now.getTime() + estimate.ms) : undefined;
  const left = deadline.getTime() - now.getTime();

  const neverRun = loadedThrough === null && !ctx.state?.lastSuccessAt && !profile.hasHistory(tenant.id);

  let status: FreshnessStatus;
  if (loaded) status = 'fresh';
  else if (neverRun) status = 'pending';
  else if (passed || stillLateFromYesterday) status = 'late';
  else if (predictable && (predicted ? predicted.getTime() >= deadline.getTime() : left < estimate.ms)) status = 'at_risk';
  else status = 'fresh';

  const local = (d: Date) => {
    const shown = new Date(Math.ceil(d.getTime() / 60_000) * 60_000);
    const day = localDateOf(shown, tenant.timezone);
    return `${localTimeOf(shown, tenant.timezone)} local${day === localDateOf(deadline, tenant.timezone) ? '' : ` on ${day}`}`;
  };
  const parts = [loadedThrough === null ? 'never loaded' : `loaded through ${loadedThrough}`];
  if (loaded) {
    parts.push(`${dataDate} due by ${tenant.readyBy} local: met`);
  } else {
    if (passed) parts.push(`${dataDate} was due by ${tenant.readyBy} local, ${formatDuration(-left)} ago`);
    else if (stillLateFromYesterday) parts.push(`${yesterdayDue} was due by ${tenant.readyBy} local yesterday`);
    if (progress) parts.push(plural(progress.queuedNodes, 'node') + ' queued');
    else parts.push('no run in progress');
    if (!predictable) parts.push('no run history to predict from');
    else if (predicted) {
      const when = passed ? '' : predicted.getTime() >= deadline.getTime() ? ` after ${tenant.readyBy} deadline` : ` before ${tenant.readyBy} deadline`;
      parts.push(`predicted finish ${local(predicted)} (p90 ${formatDuration(estimate.ms)})${when}`);
    } else if (!passed) {
      parts.push(`${formatDuration(left)} left before ${tenant.readyBy} deadline, p90 run ${formatDuration(estimate.ms)}`);
    }
    if (predictable && estimate.unknown.length > 0) parts.push(`${plural(estimate.unknown.length, 'step')} without history`);
  }

  return {
    tenant: tenant.id,
    name: tenant.name,
    timezone: tenant.timezone,
    ready_by: tenant.readyBy,
    deadline: deadline.toISOString(),
    data_date: dataDate,
    loaded_through: loadedThrough,
    status,
    reason: parts.join('; '),
    loaded,
    predicted_finish: predicted ? predicted.toISOString() : null,
    p90_ms: predictable ? estimate.ms : null,
    queued_nodes: progress ? progress.queuedNodes : null,
    last_success_at: ctx.state?.lastSuccessAt ?? null,
  };
}

export function summarizeFreshness(rows: readonly FreshnessRow[]): Record<FreshnessStatus, number> {
  const out: Record<FreshnessStatus, number> = { fresh: 0, pending: 0, at_risk: 0, late: 0 };
  for (const r of rows) out[r.status]++;
  return out;
}

/** `18 min`, `2 h 05 min`, `<1 min`. */
export function formatDuration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return '<1 min';
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** Accepts a date or a timestamp from the state store; keeps the date. */
function normalizeDate(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  return /^\d{4}-\d{2}-\d{2}/.test(value) ? value.slice(0, 10) : value;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
