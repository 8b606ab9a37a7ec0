import type { Plan, PlanStep } from '../plan/plan.ts';

/** What a run builds again at its end because rows moved between practices during it. */
export interface MovedRowRebuilds {
  /** Tenant-scoped steps, per practice, in plan order. */
  perPractice: { tenant: string; step: PlanStep }[];
  /** Global steps below any of them, in plan order. */
  global: PlanStep[];
}

/**
 * A practice whose slice of a source lost rows in another practice's build (`changed`: source
 * step → those practices; a row that moved there, which the practice's own extract never reads
 * again) may have had its downstream built earlier in the run, with the row. Every tenant-scoped
 * step below the source that `built` says succeeded for the practice is built again, then every
 * stored global step below those that succeeded (a view reads the rebuilt tables as they are). Pure.
 */
export function movedRowRebuilds(plan: Plan, changed: ReadonlyMap<string, ReadonlySet<string>>, built: (node: string) => boolean): MovedRowRebuilds {
  const below = new Map<string, string[]>();
  for (const s of plan.steps) for (const up of s.upstream) below.set(up, [...(below.get(up) ?? []), s.id]);
  const reach = (from: Iterable<string>): Set<string> => {
    const seen = new Set<string>();
    const stack = [...from];
    while (stack.length > 0) {
      for (const d of below.get(stack.pop()!) ?? []) {
        if (seen.has(d)) continue;
        seen.add(d);
        stack.push(d);
      }
    }
    return seen;
  };
  const sourcesOf = new Map<string, Set<string>>();
  for (const [source, tenants] of changed) for (const t of tenants) sourcesOf.set(t, (sourcesOf.get(t) ?? new Set()).add(source));
  const perPractice: MovedRowRebuilds['perPractice'] = [];
  for (const [tenant, sources] of [...sourcesOf].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const downstream = reach(sources);
    for (const step of plan.steps) if (step.fanOut && step.build && downstream.has(step.id) && built(`${step.id}@${tenant}`)) perPractice.push({ tenant, step });
  }
  const belowRebuilt = reach(new Set(perPractice.map((r) => r.step.id)));
  const global = perPractice.length === 0 ? [] : plan.steps.filter((s) => !s.fanOut && s.build && s.materialized !== 'view' && belowRebuilt.has(s.id) && built(s.id));
  return { perPractice, global };
}
