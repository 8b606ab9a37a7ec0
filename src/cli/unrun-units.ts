import type { NodeResult } from '../artifacts/run-results.ts';
import { Codes } from '../errors.ts';
import type { Plan } from '../plan/plan.ts';

/**
 * A result for each unit of the plan that has none: one per practice for a step that fans out,
 * one for a step that runs once, as the one-process runner reports a task it never started
 * (execute/runner.ts). A distributed run collects its results from several places (its own
 * steps, the jobs, the fan-in decision); whatever none of them reported was not run, and must
 * say so, or `tsform retry` would not know to run it and the summary would not count it.
 */
export function unrunResults(plan: Plan, reported: readonly NodeResult[], why: { status: 'interrupted' | 'skipped'; reason: string }): NodeResult[] {
  const seen = new Set(reported.map((r) => `${r.model}\u0000${r.tenant ?? ''}`));
  const code = why.status === 'interrupted' ? Codes.interrupted : Codes.upstreamFailed;
  const message = `${why.status}: ${why.reason}`;
  const out: NodeResult[] = [];
  for (const step of plan.steps) {
    // a step with nothing to build or test reports nothing when it runs either
    if (!step.build && step.tests.length === 0) continue;
    for (const tenant of step.fanOut ? plan.tenants : [null]) {
      if (seen.has(`${step.id}\u0000${tenant ?? ''}`)) continue;
      out.push({ node: tenant ? `${step.id}@${tenant}` : step.id, model: step.id, tenant, kind: 'build', status: why.status, rows: null, duration_ms: 0, message, code });
    }
  }
  return out;
}
