/**
 * `npm run bench:overhead`: the FairScheduler's own cost per node, on no-op nodes, with 5,000
 * lanes (practices): 5,000 × 20 = 100,000 units through submit → dispatch → complete with 8
 * slots (6 `steady`, 2 `backfill`; every fifth practice is in `backfill`). Two shapes, each timed as the median of 5 runs after a warm-up:
 *   bulk     every unit queued up front (deepest heaps), completed in dispatch order;
 *   chained  a lane's next unit submitted when its previous one completes (the runner's shape:
 *            dependents are released on completion), so lanes go active and idle all the time.
 * Elapsed times fed to `complete` vary (seeded) so that lanes' service keys keep moving.
 * Also reports the cost of one `snapshot()` (what a progress view calls about once a second).
 * BENCH_LANES=50000 tries another lane count (nodes = lanes × 20).
 * Progress goes to stderr; the last stdout line is one JSON object.
 */
import { performance } from 'node:perf_hooks';
import { FairScheduler } from '../src/schedule/fair-scheduler.ts';
import type { SchedulerUnit } from '../src/schedule/types.ts';
import { prng } from './lib/synthetic-project.ts';

const LANES = Number(process.env.BENCH_LANES ?? 5_000);
const PER_LANE = 20;
const SLOTS = 8;
const REPEATS = 5;

const log = (msg: string) => process.stderr.write(`[bench:overhead] ${msg}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const laneIds = Array.from({ length: LANES }, (_, i) => `p${String(i).padStart(5, '0')}`);
// Every fifth practice is backfilling, in its own pool: both pools' heaps are exercised.
const poolOf = (i: number) => (i % 5 === 0 ? 'backfill' : 'steady');
const units: SchedulerUnit[][] = laneIds.map((lane, i) => Array.from({ length: PER_LANE }, (_, k) => ({ id: `m${k}@${lane}`, lane, pool: poolOf(i) })));
const rand = prng(7);
const elapsed = Float64Array.from({ length: LANES * PER_LANE }, () => 1 + Math.floor(rand() * 200));

function newScheduler(): FairScheduler {
  return new FairScheduler({ pools: { steady: { slots: SLOTS - 2 }, backfill: { slots: 2 } } });
}

/** Runs every unit; returns [ms, nodes]. In-flight units complete first-in first-out. */
function runBulk(): [number, number] {
  const s = newScheduler();
  const t0 = performance.now();
  for (const lane of units) for (const u of lane) s.submit(u);
  const inFlight: SchedulerUnit[] = [];
  let head = 0;
  let done = 0;
  for (;;) {
    for (let u = s.dispatch(); u; u = s.dispatch()) inFlight.push(u);
    if (head === inFlight.length) break;
    s.complete(inFlight[head++]!, elapsed[done++]!);
  }
  const ms = performance.now() - t0;
  if (done !== LANES * PER_LANE || !s.isIdle) throw new Error(`bulk: ${done} nodes completed`);
  return [ms, done];
}

function runChained(): [number, number] {
  const s = newScheduler();
  const next = new Int32Array(LANES);
  const laneIndex = new Map(laneIds.map((l, i) => [l, i]));
  const t0 = performance.now();
  for (const lane of units) s.submit(lane[0]!);
  const inFlight: SchedulerUnit[] = [];
  let head = 0;
  let done = 0;
  for (;;) {
    for (let u = s.dispatch(); u; u = s.dispatch()) inFlight.push(u);
    if (head === inFlight.length) break;
    const u = inFlight[head++]!;
    const i = laneIndex.get(u.lane)!;
    const k = ++next[i]!;
    if (k < PER_LANE) s.submit(units[i]![k]!);
    s.complete(u, elapsed[done++]!);
  }
  const ms = performance.now() - t0;
  if (done !== LANES * PER_LANE || !s.isIdle) throw new Error(`chained: ${done} nodes completed`);
  return [ms, done];
}

function measure(name: string, fn: () => [number, number]): { ms: number; nodes: number } {
  fn(); // warm-up (JIT)
  const times: number[] = [];
  let nodes = 0;
  for (let r = 0; r < REPEATS; r++) {
    const [ms, n] = fn();
    times.push(ms);
    nodes = n;
  }
  const ms = median(times);
  log(`${name}: ${nodes} nodes in ${ms.toFixed(1)} ms (median of ${REPEATS}) → ${((ms / nodes) * 1000).toFixed(2)} µs/node`);
  return { ms, nodes };
}

const bulk = measure('bulk', runBulk);
const chained = measure('chained', runChained);

// Snapshot cost with 5,000 lanes half-way through a run.
const s = newScheduler();
for (const lane of units) for (const u of lane.slice(0, 2)) s.submit(u);
for (let i = 0; i < LANES; i++) {
  const u = s.dispatch();
  if (!u) break;
  s.complete(u, elapsed[i]!);
}
const snapTimes = Array.from({ length: 20 }, () => {
  const t0 = performance.now();
  JSON.stringify(s.snapshot({ slowest: 10 }));
  return performance.now() - t0;
});

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const worst = Math.max(bulk.ms / bulk.nodes, chained.ms / chained.nodes);
console.log(
  JSON.stringify({
    per_node_ms: round4(worst),
    lanes: LANES,
    nodes: bulk.nodes,
    slots: SLOTS,
    bulk_per_node_ms: round4(bulk.ms / bulk.nodes),
    chained_per_node_ms: round4(chained.ms / chained.nodes),
    snapshot_ms: round4(median(snapTimes)),
  }),
);
