import type { Plan } from './plan.ts';

/**
 * What a run will report, counted before it starts: one unit per result the run can write
 * (issue 15: the announced total and the final total must be the same number).
 *
 * - a build per practice for a step that fans out, one for a step that runs once;
 * - a data test per practice when its model is tenant-scoped (tables and views alike), once otherwise;
 * - run-wide checks after the nodes (the leak scan), counted by the caller, which knows them.
 */
export interface PlannedUnits {
  builds: number;
  /** Steps that build once (global and shared models, seeds, the tenants relation). */
  onceBuilds: number;
  tests: number;
  checks: number;
  total: number;
}

export function plannedUnits(plan: Plan, opts: { checks?: number } = {}): PlannedUnits {
  const practices = plan.tenants.length;
  let builds = 0;
  let onceBuilds = 0;
  let tests = 0;
  for (const s of plan.steps) {
    if (s.build) {
      if (s.fanOut) builds += practices;
      else onceBuilds++;
    }
    tests += s.tests.length * (s.scope === 'tenant' ? practices : 1);
  }
  const checks = opts.checks ?? 0;
  return { builds: builds + onceBuilds, onceBuilds, tests, checks, total: builds + onceBuilds + tests + checks };
}
