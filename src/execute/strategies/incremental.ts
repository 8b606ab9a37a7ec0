import type { ModelNode } from '../../artifacts/manifest.ts';
import type { Absorption } from '../../warehouse/deletion-epochs.ts';
import { recordVersions } from '../../warehouse/relation-versions.ts';
import type { BuildContext, BuildOutcome, MaterializationStrategy } from '../strategy.ts';
import { incrementalSql, leakCheck, sliceExists, writeWholeIncremental } from './model-sql.ts';
import { rebuildCounts, rebuildNotes, sliceRebuilds } from './rebuild-decisions.ts';
import { writeSlice } from './relation-write.ts';
import { bothChecks, uniqueKeyCheck } from './unique-key.ts';

/**
 * `materialized: incremental`: a practice whose slice exists gets the `is_incremental` rendering
 * merged on unique_key; a new practice, a new table or `--full-refresh` gets the full SELECT. So
 * does a practice whose upstream lost rows since its slice was built (a soft delete, a row that
 * moved to another practice): merging would keep them for good (deletion-epochs.ts). And so
 * does a slice built by other SQL than the model's current SQL (relation-versions.ts): its
 * `{{this}}` is not what the high-water test was checked against. Every write first checks that
 * unique_key is a key of the rows (unique-key.ts).
 */
export const incrementalStrategy: MaterializationStrategy<'incremental'> = {
  kind: 'incremental',
  async buildSlice(ctx, node, tenants) {
    const decided = await sliceRebuilds(ctx.adapter, ctx.metaSchema, ctx.manifest, node, tenants, ctx.fullRefresh);
    const notes = ctx.fullRefresh || decided.full.length === 0 ? [] : rebuildNotes(await rebuildCounts(ctx.adapter, node, ctx.tenantColumn, decided));
    const outcomes: BuildOutcome[] = [];
    // Each write records its practices' version once committed (relation-versions.ts).
    for (const [batch, mayMerge] of [[decided.full, false], [decided.rest, true]] as const) {
      if (batch.length === 0) continue;
      outcomes.push(await writeIncremental(ctx, node, batch, decided.absorption, mayMerge));
      await recordVersions(ctx.adapter, ctx.metaSchema, ctx.manifest, node, batch);
    }
    return { rows: new Map(outcomes.flatMap((o) => [...o.rows])), notes: [...outcomes.flatMap((o) => o.notes), ...notes] };
  },
  buildWhole: (ctx, node) => writeWholeIncremental(ctx, node, leakCheck(ctx, node)),
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
    bothChecks(uniqueKeyCheck(ctx, node), leakCheck(ctx, node)),
    absorption,
  );
}
