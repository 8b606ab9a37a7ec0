import { randomUUID } from 'node:crypto';
import type { RunResults } from '../artifacts/run-results.ts';
import { systemClock } from '../clock.ts';
import { TsformError, Codes } from '../errors.ts';
import { execute } from '../execute/index.ts';
import { plannedUnits } from '../plan/units.ts';
import { defaultStrategies } from '../execute/strategies/index.ts';
import { captureStrategy } from '../execute/strategies/capture.ts';
import { isolateOnboarding, retiredTenantNotices, runCaptureFor } from './capture-wiring.ts';
import { policyContext } from './policy-context.ts';
import { lockPractices } from './practice-locks.ts';
import type { RunRequest } from './run-request.ts';
import { startMonitoring } from './run-monitoring.ts';
import { leakScanPlanned, leakScanResult, recordRun } from './run-record.ts';
import { refuseDeferredDepartedRows } from './defer-research.ts';
import { DEFER_CATALOG, prepareSlimCi, refuseNoPractices } from './slim-ci.ts';
import { openAdapter, resolveTarget } from './target.ts';
import { settleVaultKey } from './vault-key-stage.ts';
import { selectsCaptured } from '../graph/select.ts';
import { capturedSinceBuilt, markBuilt } from '../ingest/logical/captured-state.ts';
import { compileWorkspace } from './compile-stage.ts';
import { markRunStarted } from '../artifacts/run-started.ts';
import { checkSettingsUnchanged, SETTINGS_READS, SETTINGS_REREAD_NOTICE, SettingsChanged, settingsDigest, settingsKeptChanging } from './settings-reread.ts';

/**
 * The programmatic API behind the CLI (tests call it too): the composition root. It wires the
 * stages together and does no domain work itself; each stage is a module of its own.
 */
export { compileLoadedProject, compileWorkspace } from './compile-stage.ts';
export { policyContext } from './policy-context.ts';
export type { Env } from './env.ts';
export type { RunRequest } from './run-request.ts';
export { compileAgainst, planWorkspace, prepareSlimCi, readStateManifest } from './slim-ci.ts';
export { openAdapter, resolveTarget } from './target.ts';
export type { Workspace } from './workspace.ts';

/**
 * compile → plan → vault key → capture wiring → locks → monitor → execute → leak scan → record.
 * Compiled again when the settings files changed before the locks were held (settings-reread.ts).
 */
export async function runWorkspace(req: RunRequest): Promise<RunResults> {
  const notices: string[] = [];
  for (let read = 1; ; read++) {
    const settingsRead = settingsDigest(req.projectDir);
    try {
      return await runOnce(req, settingsRead, notices);
    } catch (err) {
      if (!(err instanceof SettingsChanged)) throw err;
      if (read >= SETTINGS_READS) throw settingsKeptChanging();
      notices.push(SETTINGS_REREAD_NOTICE);
    }
  }
}

async function runOnce(reqIn: RunRequest, settingsRead: string, earlier: readonly string[]): Promise<RunResults> {
  const env = reqIn.env ?? process.env;
  // state:captured: which practices changed is warehouse state, read once before the pure planner
  const captured = selectsCaptured(reqIn.select) ? await readCaptured(reqIn, env) : undefined;
  const req = captured ? { ...reqIn, capturedTenants: new Set(captured.keys()) } : reqIn;
  const clock = req.clock ?? systemClock;
  const { ws, plan: planned, deferDatabase, deferred, notices: slimCiNotices } = prepareSlimCi(req);
  refuseNoPractices(ws, req.command);
  const target = resolveTarget(ws.project, req.target);
  if (deferDatabase && target.type !== 'duckdb') {
    throw new TsformError(Codes.unsupported, '--defer reads production from a DuckDB file; on PostgreSQL it is not supported yet');
  }
  const adapter =
    req.adapter ??
    (await openAdapter(ws.project, target, { threads: req.threads, onLockWait: req.onLockWait, readOnly: deferDatabase ? { [DEFER_CATALOG]: deferDatabase } : undefined, env }));
  const startedAt = clock.now();
  const runId = randomUUID();
  const capture = runCaptureFor(ws, planned, adapter, req.openOltp, env, req.threads ?? target.threads);
  let locks: Awaited<ReturnType<typeof lockPractices>>;
  try {
    if (deferred) await refuseDeferredDepartedRows(adapter, ws.manifest, deferred, DEFER_CATALOG, ws.project.config.tenantColumn);
    const notices = [...earlier, ...slimCiNotices, ...(await settleVaultKey(ws, planned, adapter, { env, clock, target: target.name }))];
    const { plan, onboarding } = capture ? await isolateOnboarding(ws, planned, adapter) : { plan: planned, onboarding: [] };
    capture?.useBatches(plan.batches);
    if (onboarding.length > 0) notices.push(`onboarding ${onboarding.length} practice(s), each captured alone in its own batch: ${onboarding.join(', ')}`);
    locks = await lockPractices(adapter, plan.tenants, req.onLockWait);
    checkSettingsUnchanged(req.projectDir, settingsRead);
    markRunStarted(ws.targetDir, { runId, command: req.command, startedAt });
    const leakScan = !req.skipLeakScan && leakScanPlanned(ws, plan);
    const units = plannedUnits(plan, { checks: leakScan ? 1 : 0 });
    req.onPlan?.(plan, units);
    const selectedTenants = ws.project.tenants.filter((t) => plan.tenants.includes(t.id));
    const monitoring = await startMonitoring(ws, plan, adapter, { runId, clock, env, selectedTenants, alertLog: req.alertLog });
    const results = await execute({
      plan,
      adapter,
      manifest: ws.manifest,
      project: ws.project,
      threads: req.threads ?? target.threads,
      fullRefresh: req.fullRefresh ?? false,
      fullRefreshId: req.fullRefreshSlicesOnly ? req.fullRefreshId : undefined,
      policy: adapter.capabilities.rowLevelSecurity ? policyContext(ws) : undefined,
      nodeTimeoutMs: req.nodeTimeoutMs,
      clock,
      env,
      signal: req.signal,
      strategies: capture ? defaultStrategies().register(captureStrategy(capture)) : defaultStrategies(),
      onTaskEnd: (step, stepResults, progress) => {
        monitoring.onResults(stepResults);
        req.onTaskEnd?.(step, stepResults, progress);
      },
    });
    await monitoring.settled();
    const privacy = ws.project.config.privacy;
    if (privacy && leakScan) results.push(await leakScanResult(adapter, ws, privacy));
    notices.push(...(capture?.runNotices() ?? []), ...(await retiredTenantNotices(adapter, ws.project)));
    const needsAction = capture?.actionsNeeded() ?? [];
    const finished = {
      runId,
      command: req.command,
      target: target.name,
      startedAt,
      finishedAt: clock.now(),
      results,
      notices,
      needsAction,
      interrupted: req.signal?.aborted === true,
      plannedUnits: units.total,
      dispatcher: monitoring.dispatcher,
    };
    const recorded = await recordRun(adapter, ws, plan, req, selectedTenants, finished);
    if (captured) {
      const ok = new Map([...captured].filter(([t]) => recorded.tenants[t]?.status === 'success'));
      await markBuilt(adapter, ws.project.config.schemas.meta, ok);
    }
    return recorded;
  } finally {
    await capture?.close();
    await locks?.release();
    if (!req.adapter) await adapter.close();
  }
}

async function readCaptured(req: RunRequest, env: NonNullable<RunRequest['env']>): Promise<Map<string, number>> {
  const ws = compileWorkspace(req.projectDir, { vars: req.vars, write: false });
  const adapter = req.adapter ?? (await openAdapter(ws.project, resolveTarget(ws.project, req.target), { env }));
  try {
    return await capturedSinceBuilt(adapter, ws.project.config.schemas.meta);
  } finally {
    if (!req.adapter) await adapter.close();
  }
}
