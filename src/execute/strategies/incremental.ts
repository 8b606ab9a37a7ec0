import type { ModelNode } from '../../artifacts/manifest.ts';
import { readAbsorption, type Absorption } from '../../warehouse/deletion-epochs.ts';
import type { BuildContext, BuildOutcome, MaterializationStrategy } from '../strategy.ts';
import { incrementalSql, leakCheck, sliceExists } from './model-sql.ts';
import { writeSlice, writeWhole } from './relation-write.ts';

/**
 * `materialized: incremental`: a practice whose slice exists gets the `is_incremental` rendering
 * merged on unique_key; a new practice, a new table or `--full-refresh` gets the full SELECT. So
 * does a practice whose upstream lost rows since its slice was built (a soft delete, a row that
 * moved to another practice): merging would keep them for good (deletion-epochs.ts).
 */
export const incrementalStrategy: MaterializationStrategy<'incremental'> = {
  kind: 'incremental',
  async buildSlice(ctx, node, tenants) {
    const absorption = await readAbsorption(ctx.adapter, ctx.metaSchema, ctx.manifest, node, tenants);
    const stale = ctx.fullRefresh || !absorption ? [] : tenants.filter((t) => absorption.stale.has(t));
    if (stale.length === 0) return writeIncremental(ctx, node, tenants, absorption, true);
    const rebuilt = await writeIncremental(ctx, node, stale, absorption, false);
    const note = `${stale.length} practice(s) rebuilt in full: rows were deleted upstream since their slice was built`;
    const rest = tenants.filter((t) => !absorption!.stale.has(t));
    if (rest.length === 0) return { ...rebuilt, notes: [...rebuilt.notes, note] };
    const merged = await writeIncremental(ctx, node, rest, absorption, true);
    return { ...merged, rows: new Map([...rebuilt.rows, ...merged.rows]), notes: [...rebuilt.notes, ...merged.notes, note] };
  },
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

function writeIncremental(ctx: BuildContext, node: ModelNode, tenants: readonly string[], absorption: Absorption | undefined, mayMerge: boolean): Promise<BuildOutcome> {
  return writeSlice(
    ctx,
    node,
    tenants,
    async (s, existing) => {
      const merge = mayMerge && existing !== undefined && !ctx.fullRefresh && (await sliceExists(s, node, tenants, ctx.tenantColumn));
      return { select: merge ? incrementalSql(node) : node.compiled_sql, merge };
    },
    leakCheck(ctx, node),
    absorption,
  );
}
