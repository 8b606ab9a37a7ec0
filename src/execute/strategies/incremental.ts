import type { ModelNode } from '../../artifacts/manifest.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { readAbsorption, type Absorption } from '../../warehouse/deletion-epochs.ts';
import { checkVersions, recordVersions, type VersionCheck } from '../../warehouse/relation-versions.ts';
import type { BuildContext, BuildOutcome, MaterializationStrategy } from '../strategy.ts';
import { incrementalSql, leakCheck, sliceExists, writeWholeIncremental } from './model-sql.ts';
import { writeSlice } from './relation-write.ts';

/**
 * `materialized: incremental`: a practice whose slice exists gets the `is_incremental` rendering
 * merged on unique_key; a new practice, a new table or `--full-refresh` gets the full SELECT. So
 * does a practice whose upstream lost rows since its slice was built (a soft delete, a row that
 * moved to another practice): merging would keep them for good (deletion-epochs.ts). And so
 * does a slice built by other SQL than the model's current SQL (relation-versions.ts): its
 * `{{this}}` is not what the high-water test was checked against.
 */
export const incrementalStrategy: MaterializationStrategy<'incremental'> = {
  kind: 'incremental',
  async buildSlice(ctx, node, tenants) {
    const absorption = await readAbsorption(ctx.adapter, ctx.metaSchema, ctx.manifest, node, tenants);
    const versions = await checkVersions(ctx.adapter, ctx.metaSchema, ctx.manifest, node, tenants);
    const stale = ctx.fullRefresh || !absorption ? new Set<string>() : absorption.stale;
    const inFull = (t: string) => stale.has(t) || versions.changed.has(t) || versions.unrecorded.has(t);
    const full = tenants.filter(inFull);
    const rest = tenants.filter((t) => !inFull(t));
    const notes = await rebuildNotes(ctx, node, full, stale, versions);
    const outcomes: BuildOutcome[] = [];
    // Each write records its practices' version once committed (relation-versions.ts).
    for (const [batch, mayMerge] of [[full, false], [rest, true]] as const) {
      if (batch.length === 0) continue;
      outcomes.push(await writeIncremental(ctx, node, batch, absorption, mayMerge));
      await recordVersions(ctx.adapter, ctx.metaSchema, ctx.manifest, node, batch);
    }
    return { rows: new Map(outcomes.flatMap((o) => [...o.rows])), notes: [...outcomes.flatMap((o) => o.notes), ...notes] };
  },
  buildWhole: (ctx, node) => writeWholeIncremental(ctx, node, leakCheck(ctx, node)),
};

/** Why practices of `full` that already had rows are rebuilt in full, counted (no practice named). */
async function rebuildNotes(ctx: BuildContext, node: ModelNode, full: readonly string[], stale: ReadonlySet<string>, versions: VersionCheck): Promise<string[]> {
  if (ctx.fullRefresh || full.length === 0) return [];
  const notes: string[] = [];
  const staleCount = full.filter((t) => stale.has(t)).length;
  if (staleCount > 0) notes.push(`${staleCount} practice(s) rebuilt in full: rows were deleted upstream since their slice was built`);
  const changed = full.filter((t) => !stale.has(t) && versions.changed.has(t)).length;
  if (changed > 0) notes.push(`${changed} practice(s) rebuilt in full: the model's SQL, or SQL upstream of it, changed since their slice was built`);
  // A practice with no record and no rows is simply new; one with rows was built before tsform recorded versions.
  const unrecorded = full.filter((t) => !stale.has(t) && versions.unrecorded.has(t));
  if (unrecorded.length > 0 && (await ctx.adapter.describe(node.schema, node.identifier))) {
    const { rows } = await ctx.adapter.query(
      `SELECT count(DISTINCT ${quoteIdent(ctx.tenantColumn)}) AS n FROM ${quoteRelation(node.schema, node.identifier)} WHERE ${quoteIdent(ctx.tenantColumn)} = ANY($1::VARCHAR[])`,
      [unrecorded],
    );
    const n = Number(rows[0]?.n ?? 0);
    if (n > 0) notes.push(`${n} practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)`);
  }
  return notes;
}

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
