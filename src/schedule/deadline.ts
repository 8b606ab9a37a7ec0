import { SchedulerStateError } from './scheduler-error.ts';
import type { SchedulerUnit } from './types.ts';

/**
 * Per-node timeouts as data. The runner turns a `Deadline` into an AbortController (one timer
 * per running unit); here there is no clock, only the `now` the caller passes.
 */
export interface TimeoutPolicy {
  /** Timeout of every unit, in ms. Default: none. */
  defaultMs?: number;
  /** Per-pool timeouts, overriding `defaultMs` (a backfill node may take longer than a daily one). */
  byPool?: Readonly<Record<string, number>>;
}

export interface Deadline {
  unit: string;
  startedAt: number;
  timeoutMs: number;
  /** startedAt + timeoutMs, on the caller's clock. */
  at: number;
}

/**
 * When `unit`, starting at `now`, must have ended: the unit's own `timeoutMs`, else its pool's,
 * else the default; undefined when none applies. A timed-out node is a failure of that node
 * only (its practice's downstream is skipped); treat it as permanent for retries, since a node
 * that hung once will most likely hang again and hold a slot twice as long.
 */
export function deadlineFor(unit: SchedulerUnit, now: number, policy: TimeoutPolicy = {}): Deadline | undefined {
  const timeoutMs = unit.timeoutMs ?? policy.byPool?.[unit.pool] ?? policy.defaultMs;
  if (timeoutMs === undefined) return undefined;
  if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) throw new SchedulerStateError(`unit '${unit.id}' has timeout ${timeoutMs} ms`);
  return { unit: unit.id, startedAt: now, timeoutMs, at: now + timeoutMs };
}

export function remainingMs(deadline: Deadline, now: number): number {
  return Math.max(0, deadline.at - now);
}

export function isPastDeadline(deadline: Deadline, now: number): boolean {
  return now >= deadline.at;
}
