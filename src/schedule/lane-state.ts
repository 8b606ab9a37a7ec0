import type { HeapSlot } from './indexed-heap.ts';
import { UnitQueue } from './unit-queue.ts';
import type { LaneCounters, LaneStatus, SchedulerUnit } from './types.ts';

/** Mutable per-lane bookkeeping. Internal to the scheduler; callers see `LaneCounters`. */
export class LaneState<U extends SchedulerUnit> {
  /** Fairness key (ms): busy time + in-flight estimates + virtual-time lifts. */
  service = 0;
  busyMs = 0;
  completions = 0;
  queued = 0;
  running = 0;
  waiting = 0;
  done = 0;
  failed = 0;
  skipped = 0;
  retries = 0;
  /** Position in the scheduler's heap of active lanes, -1 when idle. */
  activeIndex = -1;
  /** One entry per pool this lane has submitted to (usually one). */
  readonly entries: PoolLane<U>[] = [];

  constructor(
    readonly id: string,
    public limit: number,
  ) {}

  get isActive(): boolean {
    return this.queued > 0 || this.running > 0;
  }

  /** What to charge at dispatch when the unit carries no `cost`. */
  estimateMs(): number {
    return this.completions > 0 ? this.busyMs / this.completions : 0;
  }

  counters(): LaneCounters {
    return {
      lane: this.id,
      queued: this.queued,
      running: this.running,
      waiting: this.waiting,
      done: this.done,
      failed: this.failed,
      skipped: this.skipped,
      retries: this.retries,
      busy_ms: this.busyMs,
      service_ms: this.service,
    };
  }

  status(): LaneStatus {
    if (this.failed > 0) return 'failed';
    if (this.running > 0) return 'running';
    if (this.queued > 0 || this.waiting > 0) return 'queued';
    return 'done';
  }
}

/** A lane's queue in one pool; this is what a pool's heap orders. */
export class PoolLane<U extends SchedulerUnit> {
  readonly queue = new UnitQueue<U>();
  heapIndex = -1;

  constructor(
    readonly lane: LaneState<U>,
    readonly pool: string,
  ) {}
}

/**
 * Least service first; on equal service the lane with fewer units in flight (only differs from
 * the next rule for lanes allowed more than one: before a lane's first completion its in-flight
 * units are charged nothing, and without this rule it would take every slot at a tie); then
 * lane id (code-unit order, not locale) so order is reproducible.
 */
export function laneLess<U extends SchedulerUnit>(a: LaneState<U>, b: LaneState<U>): boolean {
  if (a.service !== b.service) return a.service < b.service;
  if (a.running !== b.running) return a.running < b.running;
  return a.id < b.id;
}

export function poolLaneLess<U extends SchedulerUnit>(a: PoolLane<U>, b: PoolLane<U>): boolean {
  return laneLess(a.lane, b.lane);
}

export const activeSlot: HeapSlot<LaneState<SchedulerUnit>> = {
  get: (l) => l.activeIndex,
  set: (l, i) => {
    l.activeIndex = i;
  },
};

export const poolLaneSlot: HeapSlot<PoolLane<SchedulerUnit>> = {
  get: (e) => e.heapIndex,
  set: (e, i) => {
    e.heapIndex = i;
  },
};
