import type { MaterializationStrategy } from '../strategy.ts';
import { incrementalSql, leakCheck, sliceExists } from './model-sql.ts';
import { writeSlice, writeWhole } from './relation-write.ts';

/**
 * `materialized: incremental`: a practice whose slice exists gets the `is_incremental` rendering
 * merged on unique_key; a new practice, a new table or `--full-refresh` gets the full SELECT.
 */
export const incrementalStrategy: MaterializationStrategy<'incremental'> = {
  kind: 'incremental',
  buildSlice: (ctx, node, tenants) =>
    writeSlice(
      ctx,
      node,
      tenants,
      async (s, existing) => {
        const merge = existing !== undefined && !ctx.fullRefresh && (await sliceExists(s, node, tenants, ctx.tenantColumn));
        return { select: merge ? incrementalSql(node) : node.compiled_sql, merge };
      },
      leakCheck(ctx, node),
    ),
  buildWhole: (ctx, node) =>
    writeWhole(
      ctx,
      node,
      async (_s, existing) => ({ select: existing && !ctx.fullRefresh ? incrementalSql(node) : node.compiled_sql }),
      // A model keeps its table's shape unless rebuilt in full.
      { reshape: ctx.fullRefresh, mergeWhenSameShape: !ctx.fullRefresh },
      leakCheck(ctx, node),
    ),
};
