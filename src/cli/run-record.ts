import type { Adapter } from '../adapters/adapter.ts';
import { RUN_RESULTS_SCHEMA_VERSION, summarizeTenants, type NodeResult, type RunResults } from '../artifacts/run-results.ts';
import { writeRunResults } from '../artifacts/write.ts';
import { Codes } from '../errors.ts';
import { scanForLeaks } from '../execute/privacy-gates.ts';
import { recordRunHistory, writeTenantState } from '../execute/state-store.ts';
import type { Plan } from '../plan/plan.ts';
import type { PrivacyConfig, Tenant } from '../project/types.ts';
import type { AlertDispatcher } from '../sla/index.ts';
import { slaDeadline } from '../sla/index.ts';
import type { RunRequest } from './run-request.ts';
import type { Workspace } from './workspace.ts';

/** Whether the run ends with the leak scan: it built a pseudonymized model of a project with privacy. */
export function leakScanPlanned(ws: Workspace, plan: Plan): boolean {
  return Boolean(ws.project.config.privacy) && plan.steps.some((s) => s.build && ws.manifest.models[s.id]?.pseudonymized);
}

/** The leak scan's node name in run_results.json (a run-wide check: retry runs it with what it checks). */
export const LEAK_SCAN = 'privacy:leak_scan';

/** The leak scan as a node result: it fails the run when any research value holds an identifier. */
export async function leakScanResult(adapter: Adapter, ws: Workspace, privacy: PrivacyConfig): Promise<NodeResult> {
  const started = performance.now();
  const findings = await scanForLeaks(adapter, ws.manifest, privacy);
  return {
    node: LEAK_SCAN,
    model: LEAK_SCAN,
    tenant: null,
    kind: 'test',
    status: findings.length > 0 ? 'error' : 'success',
    rows: findings.reduce((n, f) => n + f.rows, 0),
    duration_ms: Math.round(performance.now() - started),
    message:
      findings.length > 0
        ? `raw direct identifiers found in research data: ${findings.map((f) => `${f.relation}.${f.column} (${f.rows} rows)`).join(', ')}`
        : null,
    ...(findings.length > 0 ? { code: Codes.privacyGate } : {}),
  };
}

/** The leak scan a run planned but did not reach (interrupted, or the steps it checks were not run). */
export function leakScanNotRun(why: { status: 'interrupted' | 'skipped'; reason: string }): NodeResult {
  const code = why.status === 'interrupted' ? Codes.interrupted : Codes.upstreamFailed;
  return { node: LEAK_SCAN, model: LEAK_SCAN, tenant: null, kind: 'test', status: why.status, rows: null, duration_ms: 0, message: `${why.status}: ${why.reason}`, code };
}

export interface FinishedRun {
  runId: string;
  command: RunRequest['command'];
  target: string;
  startedAt: Date;
  finishedAt: Date;
  results: NodeResult[];
  notices: string[];
  needsAction?: string[];
  interrupted?: boolean;
  /** The units the run announced (`onPlan`): the summaries count those without a result as not run. */
  plannedUnits?: number;
  dispatcher: AlertDispatcher;
}

/** The run's record: target/run_results.json, the run history, and loaded-through dates (T+1). */
export async function recordRun(adapter: Adapter, ws: Workspace, plan: Plan, req: RunRequest, selectedTenants: Tenant[], done: FinishedRun): Promise<RunResults> {
  const run: RunResults = {
    schema_version: RUN_RESULTS_SCHEMA_VERSION,
    run_id: done.runId,
    command: done.command,
    target: done.target,
    started_at: done.startedAt.toISOString(),
    finished_at: done.finishedAt.toISOString(),
    elapsed_ms: done.finishedAt.getTime() - done.startedAt.getTime(),
    results: done.results,
    tenants: summarizeTenants(done.results, plan.tenants),
    alerts: done.dispatcher.raised.map((a) => ({ kind: a.kind, tenant: a.tenant.id, message: a.message })),
    ...(done.notices.length > 0 ? { notices: done.notices } : {}),
    ...(done.needsAction?.length ? { needs_action: done.needsAction } : {}),
    ...(done.interrupted ? { interrupted: true } : {}),
    ...(done.plannedUnits !== undefined ? { planned_units: done.plannedUnits } : {}),
  };
  writeRunResults(ws.targetDir, run, { full: req.fullResults });
  const meta = ws.project.config.schemas.meta;
  await recordRunHistory(adapter, meta, run);
  // A full run that succeeded for a practice loads it through its local yesterday (T+1).
  if (req.command !== 'test' && req.command !== 'seed' && !req.select?.length && !req.exclude?.length && (!req.nodes || req.nodesAreWholeRun)) {
    await writeTenantState(
      adapter,
      meta,
      selectedTenants
        .filter((t) => run.tenants[t.id]?.status === 'success')
        .map((t) => ({ tenant: t.id, loadedThrough: slaDeadline(t, done.startedAt).dataDate, lastSuccessAt: done.finishedAt.toISOString(), runId: done.runId })),
    );
  }
  return run;
}
