import type { Adapter } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';

/**
 * Per-practice locks for the whole run (PostgreSQL): another run holding one of these practices
 * is waited for, and named, so two processes never write one practice at once.
 */
export async function lockPractices(adapter: Adapter, tenants: readonly string[], onWait?: (holder: string) => void, waitMs = 600_000) {
  if (!adapter.tryLockTenants || tenants.length === 0) return undefined;
  // A wait is a duration: the monotonic clock, so an injected clock that stands still cannot hang it.
  const giveUpAt = performance.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const lock = await adapter.tryLockTenants(tenants);
    if (lock.held.length === 0) return lock;
    await lock.release();
    const first = lock.held[0]!;
    if (performance.now() >= giveUpAt) {
      throw new TsformError(Codes.tenantLocked, `practice ${first.tenant} (and ${lock.held.length - 1} more) is being written by another tsform run (${first.holder}); gave up waiting`);
    }
    if (attempt === 0) onWait?.(`practice ${first.tenant} and ${lock.held.length - 1} more held by ${first.holder}`);
    await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
  }
}
