import { join } from 'node:path';
import { quoteIdent } from '../../sql/quote.ts';
import { loadCsvText, typedSelect } from '../load-csv.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { dropLoadTable, loadTableName, writeSlice } from './relation-write.ts';

/** A source loaded from a CSV file (sources.yml `loader: csv`): each batch loads only its practices' rows. */
export const csvSourceStrategy: MaterializationStrategy<'csv_source'> = {
  kind: 'csv_source',
  buildSlice: (ctx, node, tenants) =>
    writeSlice(ctx, node, tenants, async (s) => {
      const loadTable = loadTableName();
      const load = await loadCsvText(s, join(ctx.projectRoot, node.csv_path), node.csv_path, ctx.metaSchema, loadTable, {
        column: ctx.tenantColumn,
        wanted: new Set(tenants),
        known: new Set(ctx.tenants.map((t) => t.id)),
      });
      const types = Object.fromEntries(Object.entries(node.columns).map(([c, v]) => [c, v.data_type]));
      return {
        // The load kept only these practices' rows; the filter keeps `$1` uniform with models.
        select: `${typedSelect(ctx.metaSchema, loadTable, load.header, types)} WHERE ${quoteIdent(ctx.tenantColumn)} = ANY($1::VARCHAR[])`,
        merge: false,
        notes: load.unknownTenantRows > 0 ? [`${load.unknownTenantRows} row(s) carry a ${ctx.tenantColumn} that is not in tenants.yml; not loaded`] : [],
        cleanup: dropLoadTable(ctx.metaSchema, loadTable),
      };
    }),
};
