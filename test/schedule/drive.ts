import type { FairScheduler } from '../../src/schedule/fair-scheduler.ts';
import type { SchedulerUnit } from '../../src/schedule/types.ts';

export const unit = (lane: string, i: number, pool = 'steady', extra: Partial<SchedulerUnit> = {}): SchedulerUnit => ({
  id: `${lane}#${i}`,
  lane,
  pool,
  ...extra,
});

export function submitLane(s: FairScheduler, lane: string, n: number, pool = 'steady', from = 0): void {
  for (let i = from; i < from + n; i++) s.submit(unit(lane, i, pool));
}

/**
 * Runs the scheduler to completion (or `maxDispatches`) on a virtual clock: fill every free
 * slot, then complete the unit that finishes first (ties: dispatched first). Returns the
 * dispatched units in order.
 */
export function drive(
  s: FairScheduler,
  elapsedOf: (u: SchedulerUnit) => number,
  maxDispatches = Infinity,
): SchedulerUnit[] {
  const order: SchedulerUnit[] = [];
  const inFlight: { u: SchedulerUnit; end: number; seq: number }[] = [];
  let now = 0;
  let seq = 0;
  for (;;) {
    while (order.length < maxDispatches) {
      const u = s.dispatch();
      if (!u) break;
      order.push(u);
      inFlight.push({ u, end: now + elapsedOf(u), seq: seq++ });
    }
    if (inFlight.length === 0) return order;
    inFlight.sort((a, b) => a.end - b.end || a.seq - b.seq);
    const next = inFlight.shift()!;
    now = next.end;
    s.complete(next.u, elapsedOf(next.u));
  }
}
