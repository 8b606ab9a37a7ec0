import type { PracticeApplied, QueueApplyResult } from './apply-queue.ts';

/** Queue rows one group's transaction takes at most; a practice with more is applied alone, in steps. */
export const GROUP_ROWS = 50_000;

export interface GroupedApply {
  applied: PracticeApplied[];
  /** Practices whose apply failed on its own (isolated by splitting), with the error. */
  failed: { tenant: string; error: unknown }[];
}

/**
 * Practices with queued changes, in groups that one warehouse transaction each applies: smallest
 * queues first (a big practice's backlog waits behind itself), a group holds at most `groupRows`
 * queue rows, and a practice with more is a group of its own. Pure.
 */
export function groupPractices(queued: ReadonlyMap<string, number>, groupRows = GROUP_ROWS): string[][] {
  const order = [...queued].filter(([, n]) => n > 0).sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const groups: string[][] = [];
  let current: string[] = [];
  let rows = 0;
  for (const [tenant, n] of order) {
    if (current.length > 0 && rows + n > groupRows) {
      groups.push(current);
      current = [];
      rows = 0;
    }
    current.push(tenant);
    rows += n;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * Applies each group until its queues are drained (`apply` takes a batch of the group's queue
 * rows per call and says whether more wait). A group that fails is split in two and each half
 * applied again, until the failing practice is alone; the others commit (DESIGN §6's batches).
 * A statement error (the SQL itself is wrong) fails every practice of the group without splitting.
 */
export async function applyGroups(
  groups: readonly (readonly string[])[],
  apply: (tenants: readonly string[]) => Promise<QueueApplyResult>,
  isStatementError: (err: unknown) => boolean,
): Promise<GroupedApply> {
  const out: GroupedApply = { applied: [], failed: [] };
  const byTenant = new Map<string, PracticeApplied>();
  const record = (r: QueueApplyResult): void => {
    for (const p of r.practices) {
      const seen = byTenant.get(p.tenant);
      if (!seen) {
        const copy = { ...p };
        byTenant.set(p.tenant, copy);
        out.applied.push(copy);
      } else {
        seen.changes += p.changes;
        seen.upserted += p.upserted;
        seen.deleted += p.deleted;
      }
    }
  };
  const run = async (tenants: readonly string[]): Promise<void> => {
    try {
      for (;;) {
        const r = await apply(tenants);
        record(r);
        if (!r.more) return;
      }
    } catch (error) {
      if (tenants.length === 1 || isStatementError(error)) {
        for (const tenant of tenants) out.failed.push({ tenant, error });
        return;
      }
      const half = Math.ceil(tenants.length / 2);
      await run(tenants.slice(0, half));
      await run(tenants.slice(half));
    }
  };
  for (const g of groups) await run(g);
  return out;
}
