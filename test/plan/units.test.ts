import { describe, expect, it } from 'vitest';
import type { Plan, PlanStep } from '../../src/plan/plan.ts';
import { plannedUnits } from '../../src/plan/units.ts';

const step = (id: string, o: Partial<PlanStep>): PlanStep => ({
  id,
  kind: 'model',
  scope: 'tenant',
  materialized: 'table',
  fanOut: true,
  singleTenant: false,
  build: true,
  upstream: [],
  tests: [],
  ...o,
});

const plan = (steps: PlanStep[], tenants = ['p_a', 'p_b', 'p_c']): Plan => ({
  command: 'build',
  steps,
  tenants,
  batches: [tenants],
  batchPools: ['steady'],
  fullRefresh: false,
  fanIn: 'use_last_good',
  nodeCount: steps.reduce((n, s) => n + (s.fanOut ? tenants.length : 1), 0),
});

describe('plannedUnits: one unit per result the run will report', () => {
  it('builds per practice and once, tests per practice on tenant-scoped relations (views too), once elsewhere, plus checks', () => {
    const u = plannedUnits(
      plan([
        step('seed_codes', { kind: 'seed', scope: 'shared', fanOut: false, tests: ['unique_code'] }),
        step('stg', { tests: ['not_null_a', 'unique_b'] }),
        step('v_stg', { materialized: 'view', fanOut: false, tests: ['not_null_v'] }),
        step('global_counts', { scope: 'global', fanOut: false, tests: ['not_null_n'] }),
      ]),
      { checks: 1 },
    );
    // builds: 3 (stg × 3) + 3 once (seed, view, global); tests: 1 + 2 × 3 + 1 × 3 + 1
    expect(u).toEqual({ builds: 6, onceBuilds: 3, tests: 11, checks: 1, total: 18 });
  });

  it('a `test` plan builds nothing; only its tests count', () => {
    const u = plannedUnits(plan([step('stg', { build: false, tests: ['not_null_a'] })]));
    expect(u).toEqual({ builds: 0, onceBuilds: 0, tests: 3, checks: 0, total: 3 });
  });
});
