import { describe, expect, it } from 'vitest';
import { distributePlan } from '../../src/plan/distribute.ts';
import type { Plan, PlanStep } from '../../src/plan/plan.ts';

const step = (id: string, fanOut: boolean, upstream: string[] = []): PlanStep => ({
  id,
  kind: 'model',
  scope: fanOut ? 'tenant' : 'global',
  materialized: 'table',
  fanOut,
  singleTenant: false,
  build: true,
  upstream,
  tests: [],
});

const plan = (steps: PlanStep[]): Plan => ({
  command: 'run',
  steps,
  tenants: ['a', 'b', 'c'],
  batches: [['a', 'b'], ['c']],
  batchPools: ['steady', 'backfill'],
  fullRefresh: false,
  fanIn: 'use_last_good',
  nodeCount: 0,
});

describe('cutting a plan for distributed workers', () => {
  it('runs what practices read first, practices in jobs by batch and pool, global models after', () => {
    const cut = distributePlan(plan([step('seed', false), step('stg', true, ['seed']), step('mart', true, ['stg']), step('research', false, ['mart']), step('lonely', false)]));
    expect(cut.before).toEqual(['seed']);
    expect(cut.perPractice).toEqual(['stg', 'mart']);
    expect(cut.after).toEqual(['research', 'lonely']);
    expect(cut.jobs).toEqual([
      { key: 'a+2', tenants: ['a', 'b'], pool: 'steady' },
      { key: 'c+1', tenants: ['c'], pool: 'backfill' },
    ]);
  });

  it('finds what practices read through other steps that run once', () => {
    const cut = distributePlan(plan([step('s1', false), step('s2', false, ['s1']), step('stg', true, ['s2'])]));
    expect(cut.before).toEqual(['s1', 's2']);
  });

  it('refuses a step that runs once between per-practice steps, naming it (TSF408)', () => {
    expect(() => distributePlan(plan([step('stg', true), step('shared_view', false, ['stg']), step('mart', true, ['shared_view'])]))).toThrow(
      expect.objectContaining({ code: 'TSF408', message: expect.stringMatching(/shared_view runs once but sits between per-practice steps/) }),
    );
  });
});
