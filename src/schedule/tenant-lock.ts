/**
 * A per-practice lock so that two tsform processes never write one practice at once
 * (DESIGN §6). Only the contract lives here; the implementation sits on the warehouse
 * (a lock table or advisory lock) in execute/ or adapters/.
 */

export type LockResult = { ok: true } | { ok: false; heldBy: string };

export interface TenantLock {
  /**
   * Tries to take `tenant` for `holder` (e.g. `host:pid:run_id`) without blocking on the other
   * holder. Re-acquiring a lock this holder already has succeeds.
   */
  acquire(tenant: string, holder: string): Promise<LockResult>;
  /** Releases `tenant` if `holder` has it; releasing a lock one does not hold is a no-op. */
  release(tenant: string, holder: string): Promise<void>;
}

/** What a run does with a practice another process holds: wait (retrying acquire with backoff) or skip it. */
export type LockContention = 'wait' | 'skip';

/** The message for a practice another process holds; names the holder, as on-call needs it. */
export function lockHeldMessage(tenant: string, heldBy: string, contention: LockContention): string {
  return contention === 'skip'
    ? `practice ${tenant} skipped: another run (${heldBy}) is writing it`
    : `practice ${tenant} waits: another run (${heldBy}) is writing it`;
}
