/**
 * Retries of transient failures (DESIGN §6): exponential backoff with full jitter, capped. The one
 * retry policy of tsform: every retry (a node's build, a capture chunk, a lock wait, a webhook)
 * goes through `retrying`, and policies differ only by their numbers.
 *
 * Full jitter (delay uniform in [0, min(cap, base·2^(n-1)))) rather than a fixed schedule: two
 * runs that conflicted on one practice (DuckDB "Conflict on tuple deletion", a PostgreSQL
 * serialization failure) would otherwise retry in lockstep and conflict again
 * (notes/duckdb-fanout.md: immediate retries mostly failed; spaced retries resolved all).
 *
 * Pure apart from waiting: the random source, the sleep and the monotonic clock are injectable
 * (defaults Math.random, the global setTimeout and performance.now).
 */
import type { ErrorClass } from '../errors.ts';

export type { ErrorClass } from '../errors.ts';

export interface RetryPolicy {
  /** Retries after the first attempt; 0 disables retrying, Infinity leaves the limit to `maxElapsedMs`. */
  maxRetries: number;
  /** Ceiling of the first retry's delay, in ms; it doubles with each retry. */
  baseMs: number;
  /** No delay exceeds this, in ms. */
  capMs: number;
  /**
   * No retry starts once this long (ms, monotonic clock) has passed since the first attempt:
   * for waits on a lock held by another run, which are bounded by time, not by count. Default: no bound.
   */
  maxElapsedMs?: number;
}

/**
 * A model's build (the runner; `--retries` overrides maxRetries). Expected delays ≈ 10, 20, 40,
 * 80 ms: enough to outlast a conflicting commit.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = { maxRetries: 4, baseMs: 20, capMs: 2_000 };

/**
 * One capture chunk (ingest/): more retries than a build, because the chunks of many practices
 * commit into one raw table at once and conflict more often, and a chunk given up on fails the
 * practice's whole extract. Expected delays ≈ 40, 80, … ms as before this policy existed.
 */
export const CAPTURE_CHUNK_RETRY_POLICY: Readonly<RetryPolicy> = { maxRetries: 7, baseMs: 80, capMs: 2_000 };

/**
 * Waiting for another tsform run to let go (DuckDB's file lock, PostgreSQL per-practice advisory
 * locks): that run may take minutes, so the wait is bounded by time (10 minutes unless the caller
 * says otherwise), and polls at most every 2 s.
 */
export const LOCK_WAIT_POLICY: Readonly<RetryPolicy> = { maxRetries: Infinity, baseMs: 100, capMs: 2_000, maxElapsedMs: 600_000 };

/**
 * An alert webhook (sla/): tsform.yml's `retries` and `backoff_ms` replace maxRetries and
 * baseMs. The cap keeps a run from waiting minutes on an endpoint that is down (up to 10 retries
 * are allowed; uncapped, the tenth would wait up to 256 × backoff_ms).
 */
export const WEBHOOK_RETRY_POLICY: Readonly<RetryPolicy> = { maxRetries: 2, baseMs: 500, capMs: 30_000 };

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
 * retried; a permanent one (a SQL error in a model) would fail the same way every time, and a
 * cancelled one was stopped on purpose.
 */
export function shouldRetry(errorClass: ErrorClass, attempt: number, policy: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY): boolean {
  switch (errorClass) {
    case 'permanent':
    case 'cancelled':
      return false;
    case 'transient':
      return attempt >= 1 && attempt <= policy.maxRetries;
    default: {
      const never: never = errorClass;
      throw new RangeError(`unknown error class '${String(never)}'`);
    }
  }
}

export interface RetryOptions {
  /** The class of a failure; only `transient` ones are retried. Usually an adapter's `classifyError`. */
  classify: (err: unknown) => ErrorClass;
  /** Default DEFAULT_RETRY_POLICY. */
  policy?: Readonly<RetryPolicy>;
  /** [0, 1) like Math.random (the default); seeded in tests. */
  rng?: () => number;
  /** Waits `ms`; default the global setTimeout. Tests record the delays instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
  /** Monotonic ms for `maxElapsedMs`; default performance.now (durations never use the time of day). */
  now?: () => number;
  /** Called before each retry's wait: `retry` is 1 for the first retry. */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void;
}

/**
 * Runs `run` (`attempt` is 1 for the first try) until it succeeds, a failure is not transient, or
 * the policy's retries or time are used up; then rethrows the last failure unchanged, so its code
 * and class reach the caller as they were.
 */
export async function retrying<T>(run: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  for (let retry = 0; ; retry++) {
    try {
      return await run(retry + 1);
    } catch (err) {
      const next = retry + 1;
      if (!shouldRetry(options.classify(err), next, policy)) throw err;
      if (policy.maxElapsedMs !== undefined && now() - started >= policy.maxElapsedMs) throw err;
      const delay = nextDelayMs(next, options.rng ?? Math.random, policy);
      options.onRetry?.(err, next, delay);
      await sleep(delay);
    }
  }
}
