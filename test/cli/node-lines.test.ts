import { describe, expect, it } from 'vitest';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { alertLines, textReporter } from '../../src/cli/progress.ts';
import type { Plan, PlanStep } from '../../src/plan/plan.ts';
import type { SchedulerSnapshot } from '../../src/schedule/index.ts';

/**
 * Issue 15 item 6: a dbt-like line per node (not per practice or batch) on a terminal and off it,
 * and alerts summed up in words in text mode.
 */

const practices = ['p_a', 'p_b', 'p_c', 'p_d', 'p_e'];
const step = (id: string, upstream: string[] = []): PlanStep => ({ id, kind: 'model', scope: 'tenant', materialized: 'table', fanOut: true, singleTenant: false, build: true, upstream, tests: [] });
const stg = step('stg_x');
const mart = step('mart_x', ['stg_x']);
const once: PlanStep = { id: 'research_x', kind: 'model', scope: 'global', materialized: 'table', fanOut: false, singleTenant: false, build: true, upstream: ['mart_x'], tests: [] };
const plan: Plan = { command: 'build', steps: [stg, mart, once], tenants: practices, batches: [practices.slice(0, 3), practices.slice(3)], batchPools: ['steady', 'steady'], fullRefresh: false, fanIn: 'use_last_good', nodeCount: 11 };
const snapshot = { slowest: [], lanes: { running: 1, queued: 0 } } as unknown as SchedulerSnapshot;

const result = (model: string, tenant: string | null, status: NodeResult['status'], rows = 2): NodeResult => ({
  node: tenant ? `${model}@${tenant}` : model,
  model,
  tenant,
  kind: 'build',
  status,
  rows: status === 'success' ? rows : null,
  duration_ms: 5,
  message: status === 'error' ? `models/${model}.sql:3: Binder Error: Referenced column x not found` : status === 'skipped' ? 'skipped: upstream failed' : null,
  ...(status === 'error' ? { code: 'TSF401' } : {}),
});

function drive(isTTY: boolean): { lines: string[]; live: string[] } {
  const lines: string[] = [];
  const live: string[] = [];
  const r = textReporter((l) => lines.push(l.replace(/\x1b\[[0-9;]*m/g, '')), { isTTY, write: (t) => live.push(t) });
  r.onPlan!(plan);
  r.onTaskEnd!(stg, practices.slice(0, 3).map((t) => result('stg_x', t, 'success')), snapshot);
  r.onTaskEnd!(stg, [result('stg_x', 'p_d', 'success'), result('stg_x', 'p_e', 'error')], snapshot);
  r.onTaskEnd!(mart, practices.slice(0, 3).map((t) => result('mart_x', t, 'success', 10)), snapshot);
  r.onTaskEnd!(mart, [result('mart_x', 'p_d', 'success', 10), result('mart_x', 'p_e', 'skipped')], snapshot);
  r.onTaskEnd!(once, [result('research_x', null, 'success', 7)], snapshot);
  r.onEnd({ run_id: 'r', elapsed_ms: 10, results: [], tenants: {}, alerts: [], notices: [] } as unknown as RunResults);
  return { lines, live };
}

describe('a line per node', () => {
  for (const isTTY of [false, true]) {
    it(`${isTTY ? 'on a terminal' : 'off a terminal'}: one line per step once all its practices reported, in completion order, with counts`, () => {
      const { lines, live } = drive(isTTY);
      const nodeLines = lines.filter((l) => / of 3 /.test(l));
      expect(nodeLines).toHaveLength(3);
      expect(nodeLines[0]).toMatch(/^1 of 3 ERROR\s+table model stg_x \.{3,} 5 practices: 4 ok, 1 failed, 8 rows \[\d+\.\ds\]$/);
      expect(nodeLines[1]).toMatch(/^2 of 3 OK\s+table model mart_x \.{3,} 5 practices: 4 ok, 1 skipped, 40 rows \[\d+\.\ds\]$/);
      expect(nodeLines[2]).toMatch(/^3 of 3 OK\s+table model research_x \.{3,} once, 7 rows \[\d+\.\ds\]$/);
      // No line per batch or per practice.
      expect(lines.some((l) => /@p_|practice\(s\)\]/.test(l))).toBe(false);
      // The live status line is for terminals only.
      expect(live.some((t) => t.includes('practices '))).toBe(isTTY);
    });
  }

  it('tsform test: a line per tested model once its batches ran, counting test units', () => {
    const lines: string[] = [];
    const testStep: PlanStep = { ...stg, build: false, tests: ['not_null_stg_x_v', 'unique_stg_x_id'] };
    const testPlan: Plan = { ...plan, command: 'test', steps: [testStep] };
    const r = textReporter((l) => lines.push(l.replace(/\x1b\[[0-9;]*m/g, '')), { isTTY: false, write: () => true });
    r.onPlan!(testPlan);
    const t = (tenant: string, name: string, failing: number): NodeResult => ({ node: `test:${name}@${tenant}`, model: 'stg_x', tenant, kind: 'test', status: failing > 0 ? 'error' : 'success', rows: failing, duration_ms: 1, message: failing > 0 ? 'x' : null });
    r.onTaskEnd!(testStep, practices.slice(0, 3).flatMap((p) => [t(p, 'not_null_stg_x_v', 0), t(p, 'unique_stg_x_id', 0)]), snapshot);
    expect(lines.filter((l) => / of 1 /.test(l))).toEqual([]);
    r.onTaskEnd!(testStep, practices.slice(3).flatMap((p) => [t(p, 'not_null_stg_x_v', p === 'p_e' ? 2 : 0), t(p, 'unique_stg_x_id', 0)]), snapshot);
    expect(lines.filter((l) => / of 1 /.test(l))).toEqual([expect.stringMatching(/^1 of 1 ERROR\s+tests of stg_x \.{3,} 10 tests: 9 passed, 1 failed \[\d+\.\ds\]$/)]);
  });

  it('a step with an unfinished batch prints nothing yet', () => {
    const lines: string[] = [];
    const r = textReporter((l) => lines.push(l), { isTTY: false, write: () => true });
    r.onPlan!(plan);
    r.onTaskEnd!(stg, practices.slice(0, 3).map((t) => result('stg_x', t, 'success')), snapshot);
    expect(lines.filter((l) => / of 3 /.test(l))).toEqual([]);
  });
});

describe('alerts in text mode', () => {
  it('one line per kind with the number of practices, never JSON', () => {
    const alerts = [
      ...['p_a', 'p_b', 'p_c'].map((tenant) => ({ kind: 'node_failed', tenant, message: 'x' })),
      { kind: 'sla_at_risk', tenant: 'p_a', message: 'y' },
    ];
    const lines = alertLines(alerts);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^alerts: node_failed .* for 3 practices \(p_a, p_b, p_c\); details in target\/run_results\.json$/);
    expect(lines[1]).toMatch(/^alerts: sla_at_risk .* for 1 practice \(p_a\)/);
    const many = alertLines(Array.from({ length: 221 }, (_, i) => ({ kind: 'sla_late', tenant: `p_${i}`, message: '' })));
    expect(many).toHaveLength(1);
    expect(many[0]).toMatch(/for 221 practices \(p_0, .*, p_9, …\)/);
  });

  it('the reporter prints the grouped line at the end and nothing of the alert stream', () => {
    const lines: string[] = [];
    const stream: string[] = [];
    const r = textReporter((l) => lines.push(l.replace(/\x1b\[[0-9;]*m/g, '')), { isTTY: false, write: () => true }, { write: (l) => stream.push(l) });
    r.onPlan!(plan);
    r.alertLog.write('{"event":"alert","kind":"node_failed"}\n');
    r.onEnd({ run_id: 'r', elapsed_ms: 1, results: [], tenants: {}, alerts: [{ kind: 'node_failed', tenant: 'p_e', message: 'm' }], notices: [] } as unknown as RunResults);
    expect(stream).toHaveLength(1);
    expect(lines.some((l) => l.includes('{'))).toBe(false);
    expect(lines).toContain('alerts: node_failed (a node failed, its downstream skipped) for 1 practice (p_e); details in target/run_results.json');
  });
});
