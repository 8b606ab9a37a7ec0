import { describe, expect, it } from 'vitest';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { textReporter } from '../../src/cli/progress.ts';
import type { Plan, PlanStep } from '../../src/plan/plan.ts';
import type { SchedulerSnapshot } from '../../src/schedule/index.ts';

/** Issue 15: in text output, one error per model with the practices it failed for, not one per practice. */

const practices = ['p_a', 'p_b', 'p_c', 'p_d', 'p_e'];
const step: PlanStep = { id: 'fragile_mart', kind: 'model', scope: 'tenant', materialized: 'table', fanOut: true, singleTenant: false, build: true, upstream: [], tests: ['not_null_fragile_mart_v'] };
const plan: Plan = { command: 'build', steps: [step], tenants: practices, batches: [practices.slice(0, 3), practices.slice(3)], batchPools: ['steady', 'steady'], fullRefresh: false, fanIn: 'use_last_good', nodeCount: 5 };

const failed = (tenant: string): NodeResult => ({
  node: `fragile_mart@${tenant}`,
  model: 'fragile_mart',
  tenant,
  kind: 'build',
  status: 'error',
  rows: null,
  duration_ms: 3,
  message: 'models/marts/fragile_mart.sql: Conversion Error: Could not convert string to INT32 (value withheld)',
  code: 'TSF401',
});
const testFailed = (tenant: string, n: number): NodeResult => ({
  node: `test:not_null_fragile_mart_v@${tenant}`,
  model: 'fragile_mart',
  tenant,
  kind: 'test',
  status: 'error',
  rows: n,
  duration_ms: 1,
  message: `not_null test not_null_fragile_mart_v found ${n} failing row(s) (models/marts/_fragile.yml:6)`,
  code: 'TSF406',
});
const ok = (tenant: string): NodeResult => ({ ...failed(tenant), status: 'success', rows: 1, message: null, code: undefined });

describe('text output: one error per model, with its practices', () => {
  it('prints a model that fails for four practices in two batches once as it happens, and once at the end with all four', () => {
    const lines: string[] = [];
    const reporter = textReporter((l) => lines.push(l.replace(/\x1b\[[0-9;]*m/g, '')), { isTTY: false, write: () => true });
    reporter.onPlan!(plan);
    const first = [failed('p_a'), failed('p_b'), ok('p_c'), testFailed('p_c', 2)];
    const second = [failed('p_d'), failed('p_e'), testFailed('p_a', 5)];
    reporter.onTaskEnd!(step, first, {} as SchedulerSnapshot);
    reporter.onTaskEnd!(step, second, {} as SchedulerSnapshot);
    const results = [...first, ...second];
    reporter.onEnd({ run_id: 'r', elapsed_ms: 10, results, tenants: {}, alerts: [], notices: [] } as unknown as RunResults);

    const aboutModel = lines.filter((l) => l.startsWith('✗ fragile_mart'));
    expect(aboutModel).toEqual([
      '✗ fragile_mart failed for p_a: error TSF401: models/marts/fragile_mart.sql: Conversion Error: Could not convert string to INT32 (value withheld)',
      '✗ fragile_mart failed for 4 practices (p_a, p_b, p_d, p_e): error TSF401: models/marts/fragile_mart.sql: Conversion Error: Could not convert string to INT32 (value withheld)',
    ]);
    const aboutTest = lines.filter((l) => l.startsWith('✗ test:not_null_fragile_mart_v'));
    expect(aboutTest).toEqual([
      '✗ test:not_null_fragile_mart_v failed for p_c: error TSF406: not_null test not_null_fragile_mart_v found 2 failing row(s) (models/marts/_fragile.yml:6)',
      '✗ test:not_null_fragile_mart_v failed for 2 practices (p_c, p_a): error TSF406: not_null test not_null_fragile_mart_v found 2 failing row(s) (models/marts/_fragile.yml:6) (messages differ per practice: target/run_results.json)',
    ]);
    expect(lines.some((l) => l.includes('fragile_mart@'))).toBe(false);
  });
});
