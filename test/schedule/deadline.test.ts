import { describe, expect, it } from 'vitest';
import { deadlineFor, isPastDeadline, remainingMs } from '../../src/schedule/deadline.ts';
import { SchedulerStateError } from '../../src/schedule/scheduler-error.ts';
import { lockHeldMessage, type TenantLock } from '../../src/schedule/tenant-lock.ts';
import { unit } from './drive.ts';

describe('deadlineFor', () => {
  const policy = { defaultMs: 60_000, byPool: { backfill: 600_000 } };

  it("takes the unit's timeout, else its pool's, else the default, else none", () => {
    expect(deadlineFor(unit('p1', 0, 'steady', { timeoutMs: 5_000 }), 1_000, policy)).toEqual({ unit: 'p1#0', startedAt: 1_000, timeoutMs: 5_000, at: 6_000 });
    expect(deadlineFor(unit('p1', 0, 'backfill'), 0, policy)?.timeoutMs).toBe(600_000);
    expect(deadlineFor(unit('p1', 0, 'steady'), 0, policy)?.timeoutMs).toBe(60_000);
    expect(deadlineFor(unit('p1', 0, 'steady'), 0)).toBeUndefined();
    expect(() => deadlineFor(unit('p1', 0, 'steady', { timeoutMs: 0 }), 0)).toThrow(SchedulerStateError);
  });

  it('answers how long is left and whether it has passed, on the caller\'s clock', () => {
    const d = deadlineFor(unit('p1', 0), 100, { defaultMs: 50 })!;
    expect([remainingMs(d, 100), remainingMs(d, 140), remainingMs(d, 200)]).toEqual([50, 10, 0]);
    expect([isPastDeadline(d, 149), isPastDeadline(d, 150)]).toEqual([false, true]);
  });
});

describe('TenantLock contract', () => {
  it('an in-memory implementation fits the type, and the message names the holder', async () => {
    const held = new Map<string, string>();
    const lock: TenantLock = {
      acquire: async (tenant, holder) => {
        const other = held.get(tenant);
        if (other !== undefined && other !== holder) return { ok: false, heldBy: other };
        held.set(tenant, holder);
        return { ok: true };
      },
      release: async (tenant, holder) => {
        if (held.get(tenant) === holder) held.delete(tenant);
      },
    };
    expect(await lock.acquire('p1', 'host:1')).toEqual({ ok: true });
    const second = await lock.acquire('p1', 'host:2');
    expect(second).toEqual({ ok: false, heldBy: 'host:1' });
    if (!second.ok) expect(lockHeldMessage('p1', second.heldBy, 'skip')).toBe('practice p1 skipped: another run (host:1) is writing it');
    await lock.release('p1', 'host:1');
    expect(await lock.acquire('p1', 'host:2')).toEqual({ ok: true });
  });
});
