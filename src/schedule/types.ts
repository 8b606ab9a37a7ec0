import type { NodeStatus } from '../artifacts/run-results.ts';

/** Lane of global (not per-practice) nodes. Give it its own limit through `laneLimits`. */
export const GLOBAL_LANE = '__global';

/** One unit of work as the scheduler sees it. The runner may extend it with its own fields. */
export interface SchedulerUnit {
  /** Unique among the units queued, running or waiting to retry in one scheduler. */
  readonly id: string;
  /** Practice id, or `GLOBAL_LANE`. Fairness is between lanes; each lane has a concurrency limit. */
  readonly lane: string;
  /** Pool whose slots this unit may use; it never takes another pool's slot. */
  readonly pool: string;
  /**
   * Expected run time in ms (e.g. the node's p50 from run history). Charged to the lane when the
   * unit is dispatched and corrected to the measured time by `complete()`, so that a lane with
   * units in flight is not picked again as if it had received nothing. Default: the lane's mean
   * measured time so far (0 before its first completion).
   */
  readonly cost?: number;
}

/**
 * How a dispatched unit ended. `retry` frees the slot and charges the lane like the others,
 * and expects the runner to `submit` the same id again after its backoff. `yield`: the unit
 * used up its time slice with work left (a practice's capture backlog); the runner submits it
 * again at once, behind its lane's other queued units, and every lane with less service goes
 * first: a long unit waits behind itself instead of holding its slot.
 */
export type UnitOutcome = NodeStatus | 'retry' | 'yield';

/** Same shape as tsform.yml `pools:` (ProjectConfig.pools). */
export interface PoolConfig {
  /** Units of this pool that may run at once. An integer ≥ 1. */
  slots: number;
}

export interface FairSchedulerOptions {
  /** Pools by name. A unit naming another pool is refused at `submit`. */
  pools: Readonly<Record<string, PoolConfig>>;
  /** Units running at once over all pools. Default: the sum of the pools' slots. */
  globalLimit?: number;
  /** Units of one lane running at once. Default 1: a practice's nodes never race each other. */
  laneLimit?: number;
  /** Per-lane overrides of `laneLimit`, e.g. `{ __global: 4 }`. */
  laneLimits?: Readonly<Record<string, number>>;
}

/** Counters of one lane, for progress views and the run summary. JSON-serializable. */
export interface LaneCounters {
  lane: string;
  queued: number;
  running: number;
  /** Units that ended with `retry` and have not been submitted again yet. */
  waiting: number;
  done: number;
  failed: number;
  skipped: number;
  retries: number;
  /** Measured run time received so far (sum of `elapsedMs`). */
  busy_ms: number;
  /**
   * The fairness key: busy time plus the in-flight estimate, plus any lift to the virtual time
   * the lane got when it became active (so it can exceed busy_ms).
   */
  service_ms: number;
}

/** How a person reads a lane: failed wins over running, running over queued, queued over done. */
export type LaneStatus = 'failed' | 'running' | 'queued' | 'done';

export interface PoolSnapshot {
  slots: number;
  running: number;
  queued: number;
}

/** The whole scheduler at one moment, as plain JSON (progress lines, live view, tests). */
export interface SchedulerSnapshot {
  running: number;
  queued: number;
  waiting: number;
  done: number;
  failed: number;
  skipped: number;
  retries: number;
  global_limit: number;
  virtual_time_ms: number;
  pools: Record<string, PoolSnapshot>;
  /** Lanes by `LaneStatus`, plus the total. */
  lanes: Record<LaneStatus | 'total', number>;
  /** Top lanes by busy_ms, largest first (ties by lane id). */
  slowest: LaneCounters[];
}
