import type { LaneState } from './lane-state.ts';
import type { PoolState } from './pool-state.ts';
import type { LaneCounters, LaneStatus, SchedulerSnapshot, SchedulerUnit } from './types.ts';

/** Busiest first; ties by lane id. */
function busier(a: LaneState<SchedulerUnit>, b: LaneState<SchedulerUnit>): boolean {
  return a.busyMs > b.busyMs || (a.busyMs === b.busyMs && a.id < b.id);
}

/**
 * The `n` lanes with the most measured run time, largest first. O(lanes × n) with a small
 * sorted buffer: called by progress views about once a second, never on the dispatch path.
 */
export function slowestLanes<U extends SchedulerUnit>(lanes: Iterable<LaneState<U>>, n: number, activeOnly = false): LaneCounters[] {
  if (n <= 0) return [];
  const top: LaneState<U>[] = [];
  for (const lane of lanes) {
    if (activeOnly && !lane.isActive) continue;
    if (top.length === n && !busier(lane, top[n - 1]!)) continue;
    let i = Math.min(top.length, n - 1);
    if (top.length < n) top.push(lane);
    while (i > 0 && busier(lane, top[i - 1]!)) {
      top[i] = top[i - 1]!;
      i--;
    }
    top[i] = lane;
  }
  return top.map((l) => l.counters());
}

export interface SnapshotTotals {
  running: number;
  queued: number;
  waiting: number;
  done: number;
  failed: number;
  skipped: number;
  retries: number;
  globalLimit: number;
  virtualTime: number;
}

export function buildSnapshot<U extends SchedulerUnit>(
  totals: SnapshotTotals,
  pools: Iterable<PoolState<U>>,
  lanes: Iterable<LaneState<U>>,
  slowest: number,
): SchedulerSnapshot {
  const byStatus: Record<LaneStatus | 'total', number> = { total: 0, failed: 0, running: 0, queued: 0, done: 0 };
  const laneList: LaneState<U>[] = [];
  for (const lane of lanes) {
    laneList.push(lane);
    byStatus.total++;
    byStatus[lane.status()]++;
  }
  const poolOut: SchedulerSnapshot['pools'] = {};
  for (const p of pools) poolOut[p.name] = p.snapshot();
  return {
    running: totals.running,
    queued: totals.queued,
    waiting: totals.waiting,
    done: totals.done,
    failed: totals.failed,
    skipped: totals.skipped,
    retries: totals.retries,
    global_limit: totals.globalLimit,
    virtual_time_ms: totals.virtualTime,
    pools: poolOut,
    lanes: byStatus,
    slowest: slowestLanes(laneList, slowest),
  };
}
