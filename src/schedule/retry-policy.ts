/**
 * Retries of transient failures (DESIGN §6): exponential backoff with full jitter, capped.
 * Pure: the runner passes the random source and does the sleeping.
 *
 * Full jitter (delay uniform in [0, min(cap, base·2^(n-1)))) rather than a fixed schedule: two
 * runs that conflicted on one practice (DuckDB "Conflict on tuple deletion", a PostgreSQL
 * serialization failure) would otherwise retry in lockstep and conflict again
 * (notes/duckdb-fanout.md: immediate retries mostly failed; spaced retries resolved all).
 */

/** Same union as the Adapter's `classifyError` (adapters/ is not importable from schedule/). */
export type ErrorClass = 'transient' | 'permanent';

export interface RetryPolicy {
  /** Retries after the first attempt; 0 disables retrying. */
  maxRetries: number;
  /** Ceiling of the first retry's delay, in ms; it doubles with each retry. */
  baseMs: number;
  /** No delay exceeds this, in ms. */
  capMs: number;
}

/** Expected delays ≈ 10, 20, 40, 80 ms: enough to outlast a conflicting commit. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = { maxRetries: 4, baseMs: 20, capMs: 2_000 };

/**
 * Delay before retry number `attempt` (1 for the first retry), in whole ms, uniform in
 * [0, min(capMs, baseMs · 2^(attempt-1))). `rng` returns [0, 1) like Math.random; pass a seeded
 * one in tests.
 */
export function nextDelayMs(attempt: number, rng: () => number, policy: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`retry attempt must be an integer ≥ 1, got ${attempt}`);
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
  const r = Math.min(Math.max(rng(), 0), 1 - Number.EPSILON);
  return Math.floor(r * ceiling);
}

/**
 * Whether to make retry number `attempt` (1 for the first retry) after a failure of this class.
 * Only transient failures (lost connection, serialization failure, deadlock, write conflict) are
 * retried; a permanent one (a SQL error in a model) would fail the same way every time.
 */
export function shouldRetry(errorClass: ErrorClass, attempt: number, policy: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY): boolean {
  switch (errorClass) {
    case 'permanent':
      return false;
    case 'transient':
      return attempt >= 1 && attempt <= policy.maxRetries;
    default: {
      const never: never = errorClass;
      throw new RangeError(`unknown error class '${String(never)}'`);
    }
  }
}
