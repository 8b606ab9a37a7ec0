import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { typedSelect } from '../load-csv.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { dropLoadTable, loadTableName, writeWhole } from './relation-write.ts';

/** The practices of tenants.yml as a relation, rewritten every run. */
export const tenantsStrategy: MaterializationStrategy<'tenants'> = {
  kind: 'tenants',
  buildWhole: (ctx, node) =>
    writeWhole(
      ctx,
      node,
      async (s) => {
        const loadTable = loadTableName();
        const header = [ctx.tenantColumn, 'name', 'timezone', 'ready_by', 'pool', 'tags'];
        await s.query(`CREATE TABLE ${quoteRelation(ctx.metaSchema, loadTable)} (${header.map((h) => `${quoteIdent(h)} VARCHAR`).join(', ')})`);
        await s.insertText(
          ctx.metaSchema,
          loadTable,
          header,
          ctx.tenants.map((t) => [t.id, t.name, t.timezone, t.readyBy, t.pool, t.tags.join(',')]),
        );
        return { select: typedSelect(ctx.metaSchema, loadTable, header, {}), cleanup: dropLoadTable(ctx.metaSchema, loadTable) };
      },
      { reshape: true, mergeWhenSameShape: false },
    ),
};
