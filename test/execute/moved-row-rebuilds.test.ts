import { describe, expect, it } from 'vitest';
import { movedRowRebuilds } from '../../src/execute/moved-row-rebuilds.ts';
import type { Plan, PlanStep } from '../../src/plan/plan.ts';

const step = (id: string, upstream: string[], o: Partial<PlanStep> = {}): PlanStep => ({
  id,
  kind: 'model',
  scope: 'tenant',
  materialized: 'table',
  fanOut: true,
  singleTenant: false,
  build: true,
  upstream,
  tests: [],
  ...o,
});

// source:a → stg_a → mart_a → global_report; source:b → stg_b (not below source:a); a view below stg_a
const plan = {
  steps: [
    step('source:a', [], { kind: 'source' }),
    step('source:b', [], { kind: 'source' }),
    step('stg_a', ['source:a']),
    step('stg_b', ['source:b']),
    step('view_a', ['stg_a'], { materialized: 'view', fanOut: false }),
    step('mart_a', ['stg_a', 'stg_b']),
    step('global_report', ['mart_a'], { scope: 'global', fanOut: false }),
    step('global_b', ['stg_b'], { scope: 'global', fanOut: false }),
  ],
} as unknown as Plan;

describe('movedRowRebuilds: what a run builds again when rows moved out of a practice during it', () => {
  it("the practice's tenant-scoped steps below the source, in plan order, then the global steps below those", () => {
    const r = movedRowRebuilds(plan, new Map([['source:a', new Set(['p2', 'p1'])]]), () => true);
    expect(r.perPractice.map((x) => `${x.step.id}@${x.tenant}`)).toEqual(['stg_a@p1', 'mart_a@p1', 'stg_a@p2', 'mart_a@p2']);
    // a view holds no rows: it reads the rebuilt tables as they are
    expect(r.global.map((s) => s.id)).toEqual(['global_report']);
  });

  it('only what succeeded for that practice in this run: a failed or unselected step is left as it is', () => {
    const built = (node: string) => node !== 'mart_a@p1' && node !== 'global_report';
    const r = movedRowRebuilds(plan, new Map([['source:a', new Set(['p1'])]]), built);
    expect(r.perPractice.map((x) => `${x.step.id}@${x.tenant}`)).toEqual(['stg_a@p1']);
    expect(r.global).toEqual([]);
  });

  it('nothing when no rows moved, and never a step that does not read the source', () => {
    expect(movedRowRebuilds(plan, new Map(), () => true)).toEqual({ perPractice: [], global: [] });
    const r = movedRowRebuilds(plan, new Map([['source:b', new Set(['p1'])]]), () => true);
    expect(r.perPractice.map((x) => `${x.step.id}@${x.tenant}`)).toEqual(['stg_b@p1', 'mart_a@p1']);
    expect(r.global.map((s) => s.id)).toEqual(['global_report', 'global_b']);
  });
});
