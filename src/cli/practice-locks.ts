import type { Adapter } from '../adapters/adapter.ts';
import { Codes, TransientError } from '../errors.ts';
import { LOCK_WAIT_POLICY, retrying } from '../schedule/index.ts';

/**
 * Per-practice locks for the whole run (PostgreSQL): another run holding one of these practices
 * is waited for, and named, so two processes never write one practice at once.
 */
export async function lockPractices(adapter: Adapter, tenants: readonly string[], onWait?: (holder: string) => void) {
  const tryLock = adapter.tryLockTenants?.bind(adapter);
  if (!tryLock || tenants.length === 0) return undefined;
  let waitingFor = '';
  // A held practice is a TransientError until the wait runs out, then the run fails with TSF412.
  // A wait is a duration: LOCK_WAIT_POLICY measures it on the monotonic clock, so an injected clock that stands still cannot hang it.
  return retrying(
    async () => {
      const lock = await tryLock(tenants);
      if (lock.held.length === 0) return lock;
      await lock.release();
      const first = lock.held[0]!;
      waitingFor = `practice ${first.tenant} and ${lock.held.length - 1} more held by ${first.holder}`;
      throw new TransientError(`practice ${first.tenant} (and ${lock.held.length - 1} more) is being written by another tsform run (${first.holder}); gave up waiting`, Codes.tenantLocked);
    },
    {
      policy: LOCK_WAIT_POLICY,
      classify: (err) => adapter.classifyError(err),
      onRetry: (_err, retry) => {
        if (retry === 1) onWait?.(waitingFor);
      },
    },
  );
}
