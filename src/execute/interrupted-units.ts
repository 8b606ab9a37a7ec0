import type { NodeResult } from '../artifacts/run-results.ts';
import { Codes } from '../errors.ts';
import type { PlanStep } from '../plan/plan.ts';

/**
 * The results of a task the run stopped before (Ctrl-C, SIGTERM, --fail-fast): one
 * `interrupted` (TSF420) per unit plan/units.ts counted for it, its tests included, so that
 * run_results.json accounts for every announced unit and `retry` reads each one. A step that
 * only tests (`tsform test`) gets no build result: it was never going to build.
 *
 * `batch`: the practices of a fanned task still to run; undefined for a step run once, whose
 * tests run per practice of the plan when it is tenant-scoped (a view).
 */
export function interruptedUnits(step: PlanStep, batch: readonly string[] | undefined, planTenants: readonly string[], why: string): NodeResult[] {
  const unit = (node: string, kind: NodeResult['kind'], tenant: string | null): NodeResult => ({
    node: tenant === null ? node : `${node}@${tenant}`,
    model: step.id,
    tenant,
    kind,
    status: 'interrupted',
    rows: null,
    duration_ms: 0,
    message: `interrupted: ${why}`,
    code: Codes.interrupted,
  });
  const practices: (string | null)[] = batch ? [...batch] : [null];
  const tested: (string | null)[] = step.scope === 'tenant' ? [...(batch ?? planTenants)] : [null];
  return [
    ...(step.build ? practices.map((t) => unit(step.id, 'build', t)) : []),
    ...step.tests.flatMap((name) => tested.map((t) => unit(`test:${name}`, 'test', t))),
  ];
}
