/** `target/run_results.json`, version 1. Add fields; never change a field's meaning. */

export const RUN_RESULTS_SCHEMA_VERSION = 1;

/** `interrupted`: the run was stopped (Ctrl-C) before this node ran. */
export type NodeStatus = 'success' | 'error' | 'skipped' | 'interrupted';

export interface NodeResult {
  /** `model@tenant` for tenant-scoped nodes, `model` otherwise; tests are `test:<name>[@tenant]`. */
  node: string;
  model: string;
  tenant: string | null;
  kind: 'build' | 'test';
  status: NodeStatus;
  /** Rows written (build) or failing rows (test). */
  rows: number | null;
  duration_ms: number;
  message: string | null;
  /** Stable error code when status is error or skipped. */
  code?: string;
  /** Practices that shared the statement (batching, DESIGN §6). */
  batch_size?: number;
  /** Global nodes: practices whose upstream failed this run and were read as last built. */
  stale_tenants?: string[];
  notes?: string[];
}

export interface TenantSummary {
  status: NodeStatus;
  success: number;
  error: number;
  skipped: number;
  interrupted: number;
}

export interface RunResults {
  schema_version: typeof RUN_RESULTS_SCHEMA_VERSION;
  run_id: string;
  command: string;
  target: string;
  started_at: string;
  finished_at: string;
  elapsed_ms: number;
  results: NodeResult[];
  /** Status per practice: error if any of its nodes failed, skipped if some were skipped. */
  tenants: Record<string, TenantSummary>;
  /** Alerts raised during the run (SLA at risk or late, node failures), each naming its practice. */
  alerts?: { kind: string; tenant: string; message: string }[];
  /**
   * Run-wide findings that are not node failures, each once: source rows of practices not in
   * tenants.yml (counted, never loaded), practices removed from tenants.yml whose rows remain.
   */
  notices?: string[];
  /**
   * What an operator must do before the warehouse is complete (e.g. a backfill after a source
   * column was added with a volatile default), each with its command; the run exits 1 while any
   * is listed.
   */
  needs_action?: string[];
  /** The run was stopped before it finished: nodes it had not run are `interrupted`. */
  interrupted?: boolean;
  /**
   * The units the run announced before it started (builds, tests, run-wide checks; plan/units.ts).
   * Those without a result are `not run`: the tests of a model that failed or was skipped.
   */
  planned_units?: number;
}

/** Announced units without a result (the printed summary's and run_results.json's `not_run`). */
export function unitsNotRun(run: Pick<RunResults, 'results' | 'planned_units'>): number {
  return run.planned_units === undefined ? 0 : Math.max(0, run.planned_units - run.results.length);
}

export function summarizeTenants(results: readonly NodeResult[], tenants: readonly string[]): Record<string, TenantSummary> {
  const out: Record<string, TenantSummary> = {};
  for (const t of tenants) out[t] = { status: 'success', success: 0, error: 0, skipped: 0, interrupted: 0 };
  for (const r of results) {
    if (r.tenant === null) continue;
    const s = (out[r.tenant] ??= { status: 'success', success: 0, error: 0, skipped: 0, interrupted: 0 });
    s[r.status]++;
  }
  for (const s of Object.values(out)) s.status = s.error > 0 ? 'error' : s.interrupted > 0 ? 'interrupted' : s.skipped > 0 ? 'skipped' : 'success';
  return out;
}
