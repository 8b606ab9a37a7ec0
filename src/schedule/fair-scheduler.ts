import { IndexedMinHeap } from './indexed-heap.ts';
import { activeSlot, laneLess, LaneState, PoolLane } from './lane-state.ts';
import { poolFirst, PoolState } from './pool-state.ts';
import { SchedulerStateError } from './scheduler-error.ts';
import { buildSnapshot, slowestLanes } from './scheduler-snapshot.ts';
import type { FairSchedulerOptions, LaneCounters, SchedulerSnapshot, SchedulerUnit, UnitOutcome } from './types.ts';

interface RunningUnit<U extends SchedulerUnit> {
  unit: U;
  entry: PoolLane<U>;
  /** Estimate charged at dispatch; `complete` replaces it with the measured time. */
  charged: number;
}

/**
 * Fair dispatcher of units over lanes (practices) and pools (DESIGN §6). Pure and synchronous:
 * no clock, no timers, no I/O. The runner submits units as they become ready, calls `dispatch()`
 * until it returns undefined, and calls `complete()` with the measured time when a unit ends.
 *
 * Order: among lanes with a queued unit in a pool that has a free slot (and below their own
 * limit, under the global limit), the lane with the least service goes first; ties go to the
 * lane with fewer units in flight (always 0 for lanes with the default limit 1), then lane id;
 * within a lane, units go in submission order. Service is run time (`complete`'s elapsedMs),
 * not node count, so a lane whose nodes take 10× longer gets ~1/10 of the dispatches.
 *
 * Virtual time: a lane that becomes active (was idle: nothing queued or running) starts at
 * max(its own service, the least service among active lanes). Without this, a practice that
 * joins late, or was idle while others ran, would have so little service that it took every
 * slot until it caught up (a burst that stalls everyone else); with it, it competes as an equal
 * from the moment it arrives. A lane keeps service it has received (no credit for idling, no
 * amnesty for debt). The floor is one value for all pools, and never decreases.
 *
 * Cost: `dispatch` is O(pools + log lanes) — one heap per pool, keyed by service; pools are few.
 * `submit` and `complete` are O(log lanes). No call scans all lanes except the progress views
 * (`snapshot`, `slowestLanes`, `allLaneCounters`).
 *
 * Integration note: when a unit ends, submit the units it releases in the same lane *before*
 * calling `complete` for it, so a practice whose next node is ready never looks idle for an
 * instant (it would be lifted to the floor and lose the credit it had).
 */
export class FairScheduler<U extends SchedulerUnit = SchedulerUnit> {
  readonly globalLimit: number;
  private readonly defaultLaneLimit: number;
  private readonly laneLimits: Map<string, number>;
  private readonly pools = new Map<string, PoolState<U>>();
  /** Sorted by name: pool order is part of the deterministic tie-break. */
  private readonly poolList: PoolState<U>[];
  private readonly lanes = new Map<string, LaneState<U>>();
  private readonly active = new IndexedMinHeap<LaneState<U>>(laneLess, activeSlot);
  private readonly runningUnits = new Map<string, RunningUnit<U>>();
  private readonly queuedIds = new Set<string>();
  private readonly waitingIds = new Map<string, LaneState<U>>();
  private virtualTime = 0;
  private totals = { running: 0, queued: 0, waiting: 0, done: 0, failed: 0, skipped: 0, retries: 0 };

  constructor(opts: FairSchedulerOptions) {
    const names = Object.keys(opts.pools).sort();
    if (names.length === 0) throw new SchedulerStateError('FairScheduler needs at least one pool');
    for (const name of names) {
      const slots = opts.pools[name]!.slots;
      checkPositiveInt(slots, `pool '${name}' slots`);
      this.pools.set(name, new PoolState<U>(name, slots));
    }
    this.poolList = names.map((n) => this.pools.get(n)!);
    this.globalLimit = opts.globalLimit ?? this.poolList.reduce((n, p) => n + p.slots, 0);
    checkPositiveInt(this.globalLimit, 'globalLimit');
    this.defaultLaneLimit = opts.laneLimit ?? 1;
    checkPositiveInt(this.defaultLaneLimit, 'laneLimit');
    this.laneLimits = new Map(Object.entries(opts.laneLimits ?? {}));
    for (const [lane, limit] of this.laneLimits) checkPositiveInt(limit, `lane '${lane}' limit`);
  }

  /** Queues a unit at the end of its lane's queue in its pool. Re-submitting a unit after `retry` is expected. */
  submit(unit: U): void {
    const pool = this.pools.get(unit.pool);
    if (!pool) throw new SchedulerStateError(`unit '${unit.id}' names pool '${unit.pool}', which is not one of: ${this.poolList.map((p) => p.name).join(', ')}`);
    if (this.queuedIds.has(unit.id) || this.runningUnits.has(unit.id)) throw new SchedulerStateError(`unit '${unit.id}' is already queued or running`);
    if (unit.cost !== undefined && !(unit.cost >= 0 && Number.isFinite(unit.cost))) throw new SchedulerStateError(`unit '${unit.id}' has cost ${unit.cost}`);
    const lane = this.laneOf(unit.lane);
    const waitingIn = this.waitingIds.get(unit.id);
    if (waitingIn) {
      this.waitingIds.delete(unit.id);
      waitingIn.waiting--;
      this.totals.waiting--;
    }
    const wasActive = lane.isActive;
    let entry = lane.entries.find((e) => e.pool === pool.name);
    if (!entry) lane.entries.push((entry = new PoolLane<U>(lane, pool.name)));
    entry.queue.push(unit);
    this.queuedIds.add(unit.id);
    lane.queued++;
    pool.queued++;
    this.totals.queued++;
    if (!wasActive) this.activate(lane);
    this.refresh(lane);
  }

  /**
   * The next unit to run, now counted as running; undefined when nothing may start (no queued
   * unit whose pool has a free slot and whose lane is below its limit, or the global limit is
   * reached). Call it until it returns undefined after every submit or complete.
   */
  dispatch(): U | undefined {
    if (this.totals.running >= this.globalLimit) return undefined;
    let best: PoolState<U> | undefined;
    for (const p of this.poolList) {
      if (!p.hasFreeSlot || p.heap.size === 0) continue;
      if (!best || poolFirst(p, best)) best = p;
    }
    if (!best) return undefined;
    const entry = best.heap.peek()!;
    const lane = entry.lane;
    const unit = entry.queue.shift()!;
    this.queuedIds.delete(unit.id);
    const charged = unit.cost ?? lane.estimateMs();
    this.runningUnits.set(unit.id, { unit, entry, charged });
    lane.queued--;
    lane.running++;
    best.queued--;
    best.running++;
    this.totals.queued--;
    this.totals.running++;
    lane.service += charged;
    this.refresh(lane);
    return unit;
  }

  /**
   * Ends a running unit: frees its pool slot, its lane's slot and a global slot, and charges
   * the lane `elapsedMs` (replacing the dispatch-time estimate). `retry` also expects the same
   * id to be submitted again after the runner's backoff; until then it counts as waiting.
   */
  complete(unit: U | string, elapsedMs: number, outcome: UnitOutcome = 'success'): void {
    const id = typeof unit === 'string' ? unit : unit.id;
    const run = this.runningUnits.get(id);
    if (!run) throw new SchedulerStateError(`unit '${id}' completed but it is not running`);
    if (!(elapsedMs >= 0 && Number.isFinite(elapsedMs))) throw new SchedulerStateError(`unit '${id}' completed with elapsed ${elapsedMs} ms`);
    this.runningUnits.delete(id);
    const lane = run.entry.lane;
    const pool = this.pools.get(run.entry.pool)!;
    lane.running--;
    pool.running--;
    this.totals.running--;
    lane.service += elapsedMs - run.charged;
    lane.busyMs += elapsedMs;
    lane.completions++;
    switch (outcome) {
      case 'success':
        lane.done++;
        this.totals.done++;
        break;
      case 'error':
        lane.failed++;
        this.totals.failed++;
        break;
      case 'skipped':
      case 'interrupted':
        lane.skipped++;
        this.totals.skipped++;
        break;
      case 'retry':
        lane.retries++;
        this.totals.retries++;
        this.wait(id, lane);
        break;
      case 'yield':
        this.wait(id, lane);
        break;
      default: {
        const never: never = outcome;
        throw new SchedulerStateError(`unknown outcome '${String(never)}'`);
      }
    }
    if (!lane.isActive) this.deactivate(lane);
    this.refresh(lane);
  }

  /** Until it is submitted again, the unit keeps its lane active (no idle gap, no lift to the floor). */
  private wait(id: string, lane: LaneState<U>): void {
    lane.waiting++;
    this.totals.waiting++;
    this.waitingIds.set(id, lane);
  }

  /**
   * Removes every queued unit of a lane (e.g. its practice is locked by another process and the
   * run skips it) and returns them in queue order, pool by pool. Running units are untouched.
   */
  cancelLane(laneId: string): U[] {
    const lane = this.lanes.get(laneId);
    if (!lane) return [];
    const out: U[] = [];
    for (const entry of lane.entries) {
      const units = entry.queue.drain();
      const pool = this.pools.get(entry.pool)!;
      pool.queued -= units.length;
      for (const u of units) this.queuedIds.delete(u.id);
      out.push(...units);
    }
    lane.queued -= out.length;
    this.totals.queued -= out.length;
    if (!lane.isActive) this.deactivate(lane);
    this.refresh(lane);
    return out;
  }

  /** Changes one lane's concurrency limit (also before its first unit); takes effect at the next dispatch. */
  setLaneLimit(laneId: string, limit: number): void {
    checkPositiveInt(limit, `lane '${laneId}' limit`);
    this.laneLimits.set(laneId, limit);
    const lane = this.lanes.get(laneId);
    if (!lane) return;
    lane.limit = limit;
    this.refresh(lane);
  }

  /** Nothing queued and nothing running (units waiting to retry are not counted). */
  get isIdle(): boolean {
    return this.totals.queued === 0 && this.totals.running === 0;
  }

  get runningCount(): number {
    return this.totals.running;
  }

  get queuedCount(): number {
    return this.totals.queued;
  }

  /** Counters of one lane, or undefined if nothing was ever submitted to it. */
  laneCounters(laneId: string): LaneCounters | undefined {
    return this.lanes.get(laneId)?.counters();
  }

  /** Counters of every lane, sorted by lane id. O(lanes log lanes): for summaries, not per dispatch. */
  allLaneCounters(): LaneCounters[] {
    return [...this.lanes.keys()].sort().map((id) => this.lanes.get(id)!.counters());
  }

  /** The `n` lanes with the most measured run time, largest first (ties by lane id). */
  slowestLanes(n: number, opts: { activeOnly?: boolean } = {}): LaneCounters[] {
    return slowestLanes(this.lanes.values(), n, opts.activeOnly ?? false);
  }

  /** Plain JSON of the whole scheduler; `slowest` lanes listed (default 5). */
  snapshot(opts: { slowest?: number } = {}): SchedulerSnapshot {
    return buildSnapshot(
      { ...this.totals, globalLimit: this.globalLimit, virtualTime: this.virtualTime },
      this.poolList,
      this.lanes.values(),
      opts.slowest ?? 5,
    );
  }

  private laneOf(id: string): LaneState<U> {
    let lane = this.lanes.get(id);
    if (!lane) this.lanes.set(id, (lane = new LaneState<U>(id, this.laneLimits.get(id) ?? this.defaultLaneLimit)));
    return lane;
  }

  /** Raises the floor to the least service among active lanes; it never goes down. */
  private advanceVirtualTime(): void {
    const min = this.active.peek();
    if (min && min.service > this.virtualTime) this.virtualTime = min.service;
  }

  private activate(lane: LaneState<U>): void {
    this.advanceVirtualTime();
    if (lane.service < this.virtualTime) lane.service = this.virtualTime;
    this.active.push(lane);
  }

  private deactivate(lane: LaneState<U>): void {
    this.advanceVirtualTime();
    this.active.remove(lane);
  }

  /**
   * Puts each of the lane's pool entries in its pool's heap iff it can run a unit now, and
   * re-keys it (its service may have changed). O(pools of this lane × log lanes).
   */
  private refresh(lane: LaneState<U>): void {
    const belowLimit = lane.running < lane.limit;
    for (const entry of lane.entries) {
      const heap = this.pools.get(entry.pool)!.heap;
      const runnable = belowLimit && entry.queue.length > 0;
      if (runnable && entry.heapIndex < 0) heap.push(entry);
      else if (!runnable && entry.heapIndex >= 0) heap.remove(entry);
      else if (runnable) heap.update(entry);
    }
    this.active.update(lane);
  }
}

function checkPositiveInt(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new SchedulerStateError(`${what} must be an integer ≥ 1, got ${n}`);
}
