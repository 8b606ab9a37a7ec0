import type { RelationInfo, Session } from '../../adapters/adapter.ts';
import type { ManifestNode } from '../../artifacts/manifest.ts';
import { projectFilePath } from '../../project/project-path.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { countDeletion, relationKey } from '../../warehouse/deletion-epochs.ts';
import { explainCastFailure } from '../../warehouse/csv-bad-value.ts';
import { loadCsvText, loadTableName, typedSelect } from '../../warehouse/load-csv.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { dropLoadTable, writeSlice } from './relation-write.ts';

/** A source loaded from a CSV file (sources.yml `loader: csv`): each batch writes only its practices' rows. */
export const csvSourceStrategy: MaterializationStrategy<'csv_source'> = {
  kind: 'csv_source',
  async buildSlice(ctx, node, tenants) {
    let existing: RelationInfo | undefined;
    // Before the batch's transaction: the run's one load commits on a connection of its own,
    // which a batch holding a connection while waiting for it could starve.
    const shared = ctx.csvLoads ? await ctx.csvLoads.load(node.csv_path) : undefined;
    const types = Object.fromEntries(Object.entries(node.columns).map(([c, v]) => [c, v.data_type]));
    const file = { file: projectFilePath(ctx.projectRoot, node.csv_path), display: node.csv_path };
    return writeSlice(
      ctx,
      node,
      tenants,
      async (s, before) => {
        existing = before;
        if (shared) {
          // The run's one parse of the file (csv-run-loads.ts); this batch takes its practices' rows.
          return {
            select: `${typedSelect(ctx.metaSchema, shared.table, shared.header, types)} WHERE ${quoteIdent(ctx.tenantColumn)} = ANY($1::VARCHAR[])`,
            merge: false,
            notes: unknownNote(shared.unknownTenantRows, ctx.tenantColumn),
          };
        }
        const loadTable = loadTableName();
        const load = await loadCsvText(s, file.file, file.display, ctx.metaSchema, loadTable, {
          column: ctx.tenantColumn,
          wanted: new Set(tenants),
          known: new Set(ctx.tenants.map((t) => t.id)),
        });
        return {
          // The load kept only these practices' rows; the filter keeps `$1` uniform with models.
          select: `${typedSelect(ctx.metaSchema, loadTable, load.header, types)} WHERE ${quoteIdent(ctx.tenantColumn)} = ANY($1::VARCHAR[])`,
          merge: false,
          notes: unknownNote(load.unknownTenantRows, ctx.tenantColumn),
          cleanup: dropLoadTable(ctx.metaSchema, loadTable),
        };
      },
      async (s, stageTable, batch) => {
        if (existing?.kind === 'table' && batch) await countLostRows(s, ctx.metaSchema, node, existing, stageTable, batch, ctx.tenantColumn);
        return [];
      },
    ).catch(async (err: unknown) => {
      throw await explainCastFailure(err, ctx.adapter, file, types, { column: ctx.tenantColumn, wanted: new Set(tenants) });
    });
  },
};

function unknownNote(rows: number, tenantColumn: string): string[] {
  return rows > 0 ? [`${rows} row(s) carry a ${tenantColumn} that is not in tenants.yml; not loaded`] : [];
}

/**
 * The file is the whole truth of each practice's slice: a row of the slice that the new load
 * does not have again counts as a deletion in that practice, so that its incremental models
 * rebuild it (deletion-epochs.ts). With the table's `key:` a row is its key, so an updated row
 * is not a deletion (the incremental model merges it); without one a changed row counts too.
 * Compared as text.
 */
async function countLostRows(s: Session, metaSchema: string, node: ManifestNode, existing: RelationInfo, stageTable: string, tenants: readonly string[], tenantColumn: string): Promise<void> {
  const staged = new Set((await s.query(`SELECT * FROM ${quoteIdent(stageTable)} LIMIT 0`)).columns);
  const present = existing.columns.map((c) => c.name).filter((c) => staged.has(c));
  if (!present.includes(tenantColumn)) return;
  const keyed = node.unique_key.length > 0 && node.unique_key.every((k) => present.includes(k));
  const common = keyed ? [tenantColumn, ...node.unique_key.filter((k) => k !== tenantColumn)] : present;
  const cols = common.map((c) => `CAST(${quoteIdent(c)} AS VARCHAR) AS ${quoteIdent(c)}`).join(', ');
  const { rows } = await s.query(
    `SELECT DISTINCT ${quoteIdent(tenantColumn)} AS tenant FROM (
       SELECT ${cols} FROM ${quoteRelation(node.schema, node.identifier)} WHERE ${quoteIdent(tenantColumn)} = ANY($1::VARCHAR[])
       EXCEPT ALL
       SELECT ${cols} FROM ${quoteIdent(stageTable)}) AS lost`,
    [[...tenants]],
  );
  await countDeletion(s, metaSchema, relationKey(node), rows.map((r) => String(r.tenant)));
}
