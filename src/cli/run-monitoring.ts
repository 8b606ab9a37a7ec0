import type { Adapter } from '../adapters/adapter.ts';
import type { NodeResult } from '../artifacts/run-results.ts';
import type { Clock } from '../clock.ts';
import { readRunHistory, readTenantState } from '../execute/state-store.ts';
import type { Plan } from '../plan/plan.ts';
import type { Tenant } from '../project/types.ts';
import { AlertDispatcher, createAlertSinks, DEFAULT_ALERT_SINKS, DurationProfile } from '../sla/index.ts';
import { RunMonitor } from '../sla/run-monitor.ts';
import type { Env } from './env.ts';
import type { RunRequest } from './run-request.ts';
import type { Workspace } from './workspace.ts';

/** The SLA side of a run: the monitor told of every result, in order, and the alerts it raised. */
export interface RunMonitoring {
  onResults(results: NodeResult[]): void;
  /** Waits until every result handed in so far has been looked at. */
  settled(): Promise<void>;
  dispatcher: AlertDispatcher;
}

/** Alert sinks of tsform.yml (or log only) and a RunMonitor over the run's practices, started. */
export async function startMonitoring(
  ws: Workspace,
  plan: Plan,
  adapter: Adapter,
  run: { runId: string; clock: Clock; env: Env; selectedTenants: Tenant[]; alertLog: RunRequest['alertLog'] },
): Promise<RunMonitoring> {
  const meta = ws.project.config.schemas.meta;
  const sinks = createAlertSinks(ws.alertSinks.length > 0 ? ws.alertSinks : DEFAULT_ALERT_SINKS, {
    log: run.alertLog ?? { write: () => true },
    clock: run.clock,
    env: run.env,
  });
  const dispatcher = new AlertDispatcher(sinks.sinks);
  const monitor = new RunMonitor({
    runId: run.runId,
    tenants: run.selectedTenants,
    models: plan.steps.filter((s) => s.fanOut && s.build).map((s) => s.id),
    profile: DurationProfile.fromHistory(await readRunHistory(adapter, meta, run.clock)),
    state: await readTenantState(adapter, meta),
    dispatcher,
    clock: run.clock,
  });
  await monitor.start();
  let monitoring = Promise.resolve();
  return {
    onResults: (results) => {
      monitoring = monitoring.then(() => monitor.onResults(results));
    },
    settled: () => monitoring,
    dispatcher,
  };
}
