import type { NodeResult } from '../artifacts/run-results.ts';
import { Codes, type Code } from '../errors.ts';
import type { Plan, PlanStep } from '../plan/plan.ts';

/** Why a unit has no result of its own: the run was stopped, or a step it needed failed. */
export interface NotRun {
  status: 'interrupted' | 'skipped';
  reason: string;
}

/**
 * The results of a task the run did not start (Ctrl-C, SIGTERM, --fail-fast; or, in a
 * distributed run, a job never sent): one per unit plan/units.ts counted for it, its tests
 * included, so that run_results.json accounts for every announced unit and `retry` reads each
 * one. A step that only tests (`tsform test`) gets no build result: it was never going to build.
 *
 * `batch`: the practices of a fanned task still to run; undefined for a step run once, whose
 * tests run per practice of the plan when it is tenant-scoped (a view).
 */
export function unitsNotRun(step: PlanStep, batch: readonly string[] | undefined, planTenants: readonly string[], why: NotRun): NodeResult[] {
  const code: Code = why.status === 'interrupted' ? Codes.interrupted : Codes.upstreamFailed;
  const unit = (node: string, kind: NodeResult['kind'], tenant: string | null): NodeResult => ({
    node: tenant === null ? node : `${node}@${tenant}`,
    model: step.id,
    tenant,
    kind,
    status: why.status,
    rows: null,
    duration_ms: 0,
    message: `${why.status}: ${why.reason}`,
    code,
  });
  const practices: (string | null)[] = batch ? [...batch] : [null];
  const tested: (string | null)[] = step.scope === 'tenant' ? [...(batch ?? planTenants)] : [null];
  return [
    ...(step.build ? practices.map((t) => unit(step.id, 'build', t)) : []),
    ...step.tests.flatMap((name) => tested.map((t) => unit(`test:${name}`, 'test', t))),
  ];
}

export function interruptedUnits(step: PlanStep, batch: readonly string[] | undefined, planTenants: readonly string[], why: string): NodeResult[] {
  return unitsNotRun(step, batch, planTenants, { status: 'interrupted', reason: why });
}

/**
 * A distributed run collects its results from several places (its own steps, the jobs, the
 * fan-in decision); each unit of the plan that none of them reported was not run, and says so,
 * or `tsform retry` would not know to run it and the summary would not count it.
 */
export function unreportedUnits(plan: Plan, reported: readonly NodeResult[], why: NotRun): NodeResult[] {
  const seen = new Set(reported.map((r) => `${r.model}\u0000${r.tenant ?? ''}`));
  return plan.steps.flatMap((step) => {
    if (!step.fanOut) return seen.has(`${step.id}\u0000`) ? [] : unitsNotRun(step, undefined, plan.tenants, why);
    const missing = plan.tenants.filter((t) => !seen.has(`${step.id}\u0000${t}`));
    return missing.length > 0 ? unitsNotRun(step, missing, plan.tenants, why) : [];
  });
}
