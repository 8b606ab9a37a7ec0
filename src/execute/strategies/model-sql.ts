import type { Session } from '../../adapters/adapter.ts';
import type { ModelNode } from '../../artifacts/manifest.ts';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { checkStagedForLeaks } from '../privacy-gates.ts';
import type { BuildContext } from '../strategy.ts';
import type { StagedCheck } from './relation-write.ts';

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
