/**
 * `npm run bench:fairness`: does a large practice's backfill delay the small practices' daily
 * runs? One large practice backfills 100 days (100× its daily volume) alongside 200 small
 * practices' daily runs, with the same 4 slots in total, under
 *   fifo             today's runner: one ready queue in submission order (backlog first), 4 workers;
 *   tsform           FairScheduler, backfill in the `backfill` pool (1 slot), small practices in
 *                    `steady` (3 slots): 4 slots in total;
 *   tsform_one_pool  FairScheduler, everything in one 4-slot pool, fair lanes only (the large
 *                    practice runs one node at a time: default per-lane limit 1);
 *   tsform_one_pool_lane_limit_4  the same with the large practice allowed all 4 slots, so the
 *                    backfill uses every slot the small practices leave idle.
 * For each: the small practices' p95 completion time (a practice completes when its last node
 * does) with the backfill present, divided by the same without the backfill (same scheduler,
 * same configuration). The last stdout line is one JSON object; progress goes to stderr.
 *
 * Why a simulation is a fair measure of the dispatch policy: the database work is the same
 * under every policy (the same nodes with the same durations; the bench asserts the executed
 * work is equal), and the policy only decides the order in which nodes take slots. So a
 * discrete-event simulation on a virtual clock (nodes occupy a slot for their duration; a
 * practice's next node is submitted when the previous completes) measures exactly what the
 * policy changes, deterministically (seeded), in milliseconds instead of hours, and without a
 * 2-core machine's noise. It deliberately ignores what a policy does not change (statement cost,
 * contention between concurrent statements, which the DuckDB/PostgreSQL benches measure).
 * The tsform rows drive the very FairScheduler class (src/schedule/fair-scheduler.ts) that the
 * runner uses, through the same submit / dispatch / complete calls; the FIFO row is a queue
 * shaped like the runner's previous ready queue (bench/lib/sched-fifo.ts).
 *
 * Workload (bench/lib/sched-workload.ts): each practice-day is a chain of 10 model nodes; a
 * node takes 40 ms × practice size × model weight × noise (seeded lognormal sizes around 1 for
 * small practices, size 40 for the large one). Backfill days are independent chains (day
 * partitions). A coarse variant (one 100-day node per model) is reported beside it: there the
 * one-pool policy suffers from non-preemption (a node holds its slot to the end), which is why
 * backfills get their own pool.
 */
import { FairScheduler } from '../src/schedule/fair-scheduler.ts';
import { FifoDispatcher } from './lib/sched-fifo.ts';
import { percentile, simulate, type Dispatcher, type SimResult } from './lib/sched-sim.ts';
import { buildWorkload, LARGE_PRACTICE, workMs, type Chain, type SimUnit, type Workload, type WorkloadOptions } from './lib/sched-workload.ts';

const SLOTS = 4;
const SEED = 20240607;
const EXTRA_SEEDS = [1, 2, 3, 4, 5];

const log = (msg: string) => process.stderr.write(`[bench:fairness] ${msg}\n`);
const sec = (ms: number) => Math.round(ms) / 1000;
const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

interface Policy {
  name: string;
  pools: Pick<WorkloadOptions, 'smallPool' | 'backfillPool'>;
  make(): Dispatcher;
  /** Dispatcher for the run without backfill; default `make`. */
  makeWithout?(): Dispatcher;
}

const fair = (pools: Record<string, { slots: number }>) => () => new FairScheduler<SimUnit>({ pools });


const POLICIES: Policy[] = [
  { name: 'fifo', pools: { smallPool: 'steady', backfillPool: 'steady' }, make: () => new FifoDispatcher<SimUnit>(SLOTS) },
  {
    name: 'tsform',
    pools: { smallPool: 'steady', backfillPool: 'backfill' },
    make: fair({ steady: { slots: SLOTS - 1 }, backfill: { slots: 1 } }),
  },
  { name: 'tsform_one_pool', pools: { smallPool: 'steady', backfillPool: 'steady' }, make: fair({ steady: { slots: SLOTS } }) },
  // Lets the large practice use every idle slot (per-lane limit 4 instead of 1): work-conserving.
  {
    name: 'tsform_one_pool_lane_limit_4',
    pools: { smallPool: 'steady', backfillPool: 'steady' },
    make: () => new FairScheduler<SimUnit>({ pools: { steady: { slots: SLOTS } }, laneLimits: { [LARGE_PRACTICE]: SLOTS } }),
  },
];

interface Measured {
  p95_ratio: number;
  p95_with_s: number;
  p95_without_s: number;
  p50_with_s: number;
  max_with_s: number;
  /** When the whole backfill was done (virtual seconds). */
  backfill_done_s: number;
}

function completionTimes(res: SimResult, chains: readonly Chain[]): number[] {
  return chains.map((c) => res.chainDoneMs.get(c.id)!);
}

function measure(policy: Policy, w: Workload): Measured {
  // Backlog first: the order a FIFO queue would see it when the backfill was started earlier.
  const withRes = simulate(policy.make(), [...w.backfill, ...w.small], SLOTS);
  const withoutRes = simulate((policy.makeWithout ?? policy.make)(), w.small, SLOTS);
  const expectedWork = workMs(w.small) + workMs(w.backfill);
  if (withRes.busyMs !== expectedWork || withoutRes.busyMs !== workMs(w.small)) throw new Error(`${policy.name}: executed work differs from the workload`);
  const withT = completionTimes(withRes, w.small);
  const withoutT = completionTimes(withoutRes, w.small);
  const p95With = percentile(withT, 95);
  const p95Without = percentile(withoutT, 95);
  return {
    p95_ratio: ratio(p95With, p95Without),
    p95_with_s: sec(p95With),
    p95_without_s: sec(p95Without),
    p50_with_s: sec(percentile(withT, 50)),
    max_with_s: sec(Math.max(...withT)),
    backfill_done_s: sec(Math.max(...w.backfill.map((c) => withRes.chainDoneMs.get(c.id)!))),
  };
}

function run(seed: number, grain: WorkloadOptions['backfillGrain'] = 'day'): Record<string, Measured> {
  const out: Record<string, Measured> = {};
  for (const p of POLICIES) out[p.name] = measure(p, buildWorkload({ seed, backfillGrain: grain, ...p.pools }));
  return out;
}

const main = run(SEED);
for (const [name, m] of Object.entries(main)) log(`${name}: p95 ${m.p95_with_s}s with backfill, ${m.p95_without_s}s without → ${m.p95_ratio}`);

// The reserved backfill slot is a cost paid every day, backfill or not: the small practices'
// p95 with the backfill against a 4-slot fair scheduler with no backfill pool at all.
const w = buildWorkload({ seed: SEED, smallPool: 'steady', backfillPool: 'backfill' });
const allSlots = percentile(completionTimes(simulate(fair({ steady: { slots: SLOTS } })(), w.small, SLOTS), w.small), 95);
const fifoNoBackfill = percentile(completionTimes(simulate(new FifoDispatcher<SimUnit>(SLOTS), w.small, SLOTS), w.small), 95);
const tsformWith = main.tsform!.p95_with_s * 1000;

const coarse = run(SEED, 'model');
log(`coarse backfill (one 100-day node per model): ${Object.entries(coarse).map(([n, m]) => `${n} ${m.p95_ratio}`).join(', ')}`);
const seeds: Record<string, number[]> = {};
for (const seed of EXTRA_SEEDS) {
  for (const [name, m] of Object.entries(run(seed))) (seeds[name] ??= []).push(m.p95_ratio);
}
log(`other seeds: ${Object.entries(seeds).map(([n, r]) => `${n} max ${Math.max(...r)}`).join(', ')}`);

console.log(
  JSON.stringify({
    tsform: { ...main.tsform, p95_ratio_vs_4_slot_fair_no_backfill: ratio(tsformWith, allSlots), p95_ratio_vs_fifo_no_backfill: ratio(tsformWith, fifoNoBackfill) },
    fifo: main.fifo,
    tsform_one_pool: main.tsform_one_pool,
    tsform_one_pool_lane_limit_4: main.tsform_one_pool_lane_limit_4,
    coarse_backfill_p95_ratio: Object.fromEntries(Object.entries(coarse).map(([n, m]) => [n, m.p95_ratio])),
    p95_ratio_by_seed: { seeds: EXTRA_SEEDS, ...seeds },
    slots: SLOTS,
    pools: { tsform: { steady: SLOTS - 1, backfill: 1 }, tsform_one_pool: { steady: SLOTS } },
    small_practices: w.smallPractices.length,
    backfill_days: w.backfill.length,
    work_s: { small: sec(workMs(w.small)), backfill: sec(workMs(w.backfill)) },
    seed: SEED,
  }),
);
