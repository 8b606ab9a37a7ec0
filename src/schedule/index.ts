/** Fair lanes, pools and the retry policy (DESIGN §6-7). No SQL, no I/O. */
export { drain, type UnitEnd } from './drain.ts';
export { FairScheduler } from './fair-scheduler.ts';
export { SchedulerStateError } from './scheduler-error.ts';
export {
  CAPTURE_CHUNK_RETRY_POLICY,
  DEFAULT_RETRY_POLICY,
  LOCK_WAIT_POLICY,
  WEBHOOK_RETRY_POLICY,
  nextDelayMs,
  retrying,
  shouldRetry,
  type ErrorClass,
  type RetryOptions,
  type RetryPolicy,
} from './retry-policy.ts';
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
