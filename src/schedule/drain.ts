import type { FairScheduler } from './fair-scheduler.ts';
import type { SchedulerUnit, UnitOutcome } from './types.ts';

/** How a unit ended, and what its caller does around `complete()`. */
export interface UnitEnd {
  outcome: UnitOutcome;
  /** Before the unit's slot is freed: submit what it unblocked, so its lane keeps its place (no idle gap). */
  beforeComplete?: () => void;
  /** After: resubmit a unit that yielded with work left, report progress. */
  afterComplete?: () => void;
}

/**
 * The dispatch loop over a FairScheduler: every unit it dispatches is run as soon as a slot is
 * free, its measured time handed back, until the scheduler is idle. The one loop of tsform; the
 * runner and backfill differ only in `run`. Rejects with the first error `run` throws (a unit's
 * own failure is an outcome, not a throw).
 */
export function drain<U extends SchedulerUnit>(scheduler: FairScheduler<U>, run: (unit: U) => Promise<UnitEnd>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const pump = () => {
      for (let unit = scheduler.dispatch(); unit; unit = scheduler.dispatch()) {
        const current = unit;
        const started = performance.now();
        run(current)
          .then((end) => {
            if (failed) return;
            end.beforeComplete?.();
            scheduler.complete(current, performance.now() - started, end.outcome);
            end.afterComplete?.();
            if (scheduler.isIdle) resolve();
            else pump();
          })
          .catch((err: unknown) => {
            failed = true;
            reject(err);
          });
      }
      if (scheduler.isIdle) resolve();
    };
    pump();
  });
}
