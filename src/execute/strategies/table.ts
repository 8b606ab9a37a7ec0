import type { MaterializationStrategy } from '../strategy.ts';
import { leakCheck } from './model-sql.ts';
import { writeSlice, writeWhole } from './relation-write.ts';

/** `materialized: table`: rebuilt from its SELECT every run (per batch of practices, or whole). */
export const tableStrategy: MaterializationStrategy<'table'> = {
  kind: 'table',
  buildSlice: (ctx, node, tenants) => writeSlice(ctx, node, tenants, async () => ({ select: node.compiled_sql, merge: false }), leakCheck(ctx, node)),
  buildWhole: (ctx, node) => writeWhole(ctx, node, async () => ({ select: node.compiled_sql }), { reshape: true, mergeWhenSameShape: false }, leakCheck(ctx, node)),
};
