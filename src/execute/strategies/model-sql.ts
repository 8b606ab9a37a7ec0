import type { Session } from '../../adapters/adapter.ts';
import type { ModelNode } from '../../artifacts/manifest.ts';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { checkStagedForLeaks } from '../privacy-gates.ts';
import { recordVersions, WHOLE_RELATION } from '../../warehouse/relation-versions.ts';
import type { BuildContext, BuildOutcome } from '../strategy.ts';
import { wholeRebuild, WHOLE_REBUILD_WHY } from './rebuild-decisions.ts';
import { writeWhole, type StagedCheck } from './relation-write.ts';
import { bothChecks, uniqueKeyCheck } from './unique-key.ts';

/** The `is_incremental` rendering; compile writes one for every incremental model. */
export function incrementalSql(node: ModelNode): string {
  if (node.compiled_incremental_sql === undefined) {
    throw new TsformError(Codes.unsupported, `${node.name} is incremental but its manifest has no is_incremental rendering; compile again`);
  }
  return node.compiled_incremental_sql;
}

/** Pseudonymized rows are scanned for raw identifiers before they are written. */
export function leakCheck(ctx: BuildContext, node: ModelNode): StagedCheck | undefined {
  const privacy = ctx.privacy;
  if (!privacy || !node.pseudonymized) return undefined;
  return async (s, stageTable, tenants) => {
    await checkStagedForLeaks(s, stageTable, node, ctx.manifest, privacy, tenants);
    return [];
  };
}

/** Whether any of these practices already has rows in the table (then an incremental model merges). */
export async function sliceExists(s: Session, node: ModelNode, tenants: readonly string[], tenantColumn: string): Promise<boolean> {
  const r = await s.query(
    `SELECT 1 AS present FROM ${quoteRelation(node.schema, node.identifier)} WHERE ${quoteIdent(tenantColumn)} = ANY($1::VARCHAR[]) LIMIT 1`,
    [[...tenants]],
  );
  return r.rows.length > 0;
}

/**
 * An incremental relation built once per run (global, or published research): merged on
 * unique_key only when the model's current SQL built it (relation-versions.ts); otherwise, like
 * `--full-refresh`, rebuilt from the full rendering in the table's new shape. Either way
 * unique_key must be a key of the rows (unique-key.ts).
 */
export async function writeWholeIncremental(ctx: BuildContext, node: ModelNode, check: StagedCheck | undefined): Promise<BuildOutcome> {
  const why = await wholeRebuild(ctx.adapter, ctx.metaSchema, ctx.manifest, node);
  const rebuild = ctx.fullRefresh || why !== undefined;
  let existing = false;
  const outcome = await writeWhole(
    ctx,
    node,
    async (_s, table) => {
      existing = table !== undefined;
      return { select: table && !rebuild ? incrementalSql(node) : node.compiled_sql };
    },
    { reshape: rebuild, mergeWhenSameShape: !rebuild },
    bothChecks(uniqueKeyCheck(ctx, node), check),
  );
  await recordVersions(ctx.adapter, ctx.metaSchema, ctx.manifest, node, [WHOLE_RELATION]);
  if (!existing || why === undefined || ctx.fullRefresh) return outcome;
  return { ...outcome, notes: [...outcome.notes, `rebuilt in full: ${WHOLE_REBUILD_WHY[why]}`] };
}
