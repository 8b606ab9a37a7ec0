/**
 * Misuse of the scheduler by its caller (completing a unit that is not running, an unknown
 * pool, a duplicate id). A bug in the runner, never a user or database error: it is not
 * reported as a node failure and has no TSF code.
 */
export class SchedulerStateError extends Error {
  override name = 'SchedulerStateError';
}
