import type { Adapter } from '../../adapters/adapter.ts';
import { CAPTURED_CHANGES } from '../../warehouse/meta-schema.ts';
import { quoteRelation } from '../../sql/quote.ts';

/**
 * Practices whose raw data log-based capture changed since their last successful model run
 * (`state:captured`), with the change count read now: a run that succeeds for a practice records
 * that count as built, so changes applied while it ran still count for the next one.
 */
export async function capturedSinceBuilt(wh: Adapter, metaSchema: string): Promise<Map<string, number>> {
  if (!(await wh.describe(metaSchema, CAPTURED_CHANGES.name))) return new Map();
  const { rows } = await wh.query(`SELECT tenant, captured FROM ${quoteRelation(metaSchema, CAPTURED_CHANGES.name)} WHERE captured > built`);
  return new Map(rows.map((r) => [String(r.tenant), Number(r.captured)]));
}

/** Records, per practice that built successfully, the change count its models now include. */
export async function markBuilt(wh: Adapter, metaSchema: string, built: ReadonlyMap<string, number>): Promise<void> {
  if (built.size === 0) return;
  const tenants = [...built.keys()];
  await wh.transaction(async (s) => {
    for (const t of tenants) {
      await s.query(`UPDATE ${quoteRelation(metaSchema, CAPTURED_CHANGES.name)} SET built = $2 WHERE tenant = $1 AND built < $2`, [t, built.get(t)!]);
    }
  });
}
