import { Codes, TsformError } from '../errors.ts';
import type { Plan } from './plan.ts';

/**
 * A plan cut for `tsform run --distributed`: what the coordinator runs itself, once, before and
 * after the practices' jobs, and the jobs the workers run (one batch of practices each, every
 * fanned-out step of the plan for those practices). A job never contains a step that runs once,
 * so two workers never race to build the same relation.
 */
export interface DistributedPlan {
  /** Steps run once before any job: the ones a fanned-out step reads, directly or not. */
  before: string[];
  /** The fanned-out steps every job runs for its practices. */
  perPractice: string[];
  /** Steps run once after every job: global models over all practices, views. */
  after: string[];
  jobs: PracticeJob[];
}

export interface PracticeJob {
  /** Stable within a run: the batch's first practice and its size. */
  key: string;
  tenants: string[];
  pool: string;
}

export function distributePlan(plan: Plan): DistributedPlan {
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const perPractice = plan.steps.filter((s) => s.fanOut).map((s) => s.id);
  const before = new Set<string>();
  const visit = (id: string) => {
    for (const up of byId.get(id)?.upstream ?? []) {
      const step = byId.get(up);
      if (!step || step.fanOut || before.has(up)) continue;
      before.add(up);
      visit(up);
    }
  };
  for (const id of perPractice) visit(id);
  for (const id of before) {
    const fannedUp = byId.get(id)!.upstream.filter((u) => byId.get(u)?.fanOut);
    if (fannedUp.length > 0) {
      throw new TsformError(
        Codes.unsupported,
        `--distributed: ${id} runs once but sits between per-practice steps (it reads ${fannedUp.join(', ')} and a per-practice step reads it); materialize it as a table, or run without --distributed`,
      );
    }
  }
  const after = plan.steps.filter((s) => !s.fanOut && !before.has(s.id)).map((s) => s.id);
  const jobs = plan.batches.map((tenants, i) => ({ key: `${tenants[0]}+${tenants.length}`, tenants, pool: plan.batchPools[i]! }));
  return { before: plan.steps.filter((s) => before.has(s.id)).map((s) => s.id), perPractice, after, jobs };
}
