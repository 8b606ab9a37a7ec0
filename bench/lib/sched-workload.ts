import type { SchedulerUnit } from '../../src/schedule/types.ts';
import { prng } from './synthetic-project.ts';

/**
 * The fairness workload: 200 small practices' daily runs and one large practice's backfill of
 * 100 days. Each run (a practice's day) is a chain of MODELS nodes: node k+1 is submitted when
 * node k completes (a practice's models depend on each other). Backfill days are independent
 * chains (day partitions of incremental models), so a FIFO runner can start them all at once.
 *
 * A node's duration is BASE_MS × practice size × model weight × noise: size lognormal around 1
 * for small practices (the large one is LARGE_SIZE), model weights fixed per model, noise
 * lognormal per node. All from one seed.
 */
export interface SimUnit extends SchedulerUnit {
  readonly practice: string;
  /** Chain this node belongs to: a practice's day. */
  readonly chain: string;
  readonly step: number;
  readonly durationMs: number;
}

export interface Chain {
  id: string;
  practice: string;
  nodes: SimUnit[];
}

export interface Workload {
  small: Chain[];
  backfill: Chain[];
  smallPractices: string[];
  largePractice: string;
}

export interface WorkloadOptions {
  seed: number;
  smallPractices?: number;
  backfillDays?: number;
  models?: number;
  /** Large practice's size relative to the median small one. */
  largeSize?: number;
  baseMs?: number;
  /** Pools the units name (the FIFO baseline ignores them). */
  smallPool: string;
  backfillPool: string;
  /**
   * `day` (default): one node per (model, day); a day's models are chained, days independent.
   * `model`: one chain of one node per model covering all days (each 100× longer), the coarsest
   * a backfill can be cut.
   */
  backfillGrain?: 'day' | 'model';
}

export const LARGE_PRACTICE = 'p0000';

export function buildWorkload(o: WorkloadOptions): Workload {
  const rand = prng(o.seed);
  const gauss = () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const lognormal = (sigma: number) => Math.exp(sigma * gauss());
  const models = o.models ?? 10;
  const baseMs = o.baseMs ?? 40;
  const weights = Array.from({ length: models }, () => 0.5 + rand());
  const nSmall = o.smallPractices ?? 200;
  const days = o.backfillDays ?? 100;
  const largeSize = o.largeSize ?? 40;

  const chain = (id: string, practice: string, pool: string, size: number, scale = 1): Chain => ({
    id,
    practice,
    nodes: weights.map((w, k) => ({
      id: `${id}/m${k}`,
      lane: practice,
      pool,
      practice,
      chain: id,
      step: k,
      durationMs: Math.max(1, Math.round(baseMs * size * w * lognormal(0.25) * scale)),
    })),
  });

  const smallPractices = Array.from({ length: nSmall }, (_, i) => `p${String(i + 1).padStart(4, '0')}`);
  const small = smallPractices.map((p) => chain(`${p}@d0`, p, o.smallPool, Math.min(4, Math.max(0.25, lognormal(0.6)))));
  const backfill =
    (o.backfillGrain ?? 'day') === 'day'
      ? Array.from({ length: days }, (_, d) => chain(`${LARGE_PRACTICE}@d-${d + 1}`, LARGE_PRACTICE, o.backfillPool, largeSize))
      : [chain(`${LARGE_PRACTICE}@d-1..${days}`, LARGE_PRACTICE, o.backfillPool, largeSize, days)];
  return { small, backfill, smallPractices, largePractice: LARGE_PRACTICE };
}

export const workMs = (chains: readonly Chain[]) => chains.reduce((n, c) => n + c.nodes.reduce((m, u) => m + u.durationMs, 0), 0);
