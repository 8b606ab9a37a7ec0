/** Fair lanes, pools and the retry policy (DESIGN §6-7). No SQL, no I/O. */
export { FairScheduler } from './fair-scheduler.ts';
export { SchedulerStateError } from './scheduler-error.ts';
export { DEFAULT_RETRY_POLICY, nextDelayMs, shouldRetry, type ErrorClass, type RetryPolicy } from './retry-policy.ts';
export {
  GLOBAL_LANE,
  type FairSchedulerOptions,
  type LaneCounters,
  type LaneStatus,
  type PoolConfig,
  type PoolSnapshot,
  type SchedulerSnapshot,
  type SchedulerUnit,
  type UnitOutcome,
} from './types.ts';
