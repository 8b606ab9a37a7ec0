import { typedSelect } from '../../warehouse/load-csv.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { dropLoadTable, loadTextTable, writeWhole } from './relation-write.ts';

/** The practices of tenants.yml as a relation, rewritten every run. */
export const tenantsStrategy: MaterializationStrategy<'tenants'> = {
  kind: 'tenants',
  buildWhole: (ctx, node) =>
    writeWhole(
      ctx,
      node,
      async (s) => {
        const header = [ctx.tenantColumn, 'name', 'timezone', 'ready_by', 'pool', 'tags'];
        const loadTable = await loadTextTable(ctx, s, header, ctx.tenants.map((t) => [t.id, t.name, t.timezone, t.readyBy, t.pool, t.tags.join(',')]));
        return { select: typedSelect(ctx.metaSchema, loadTable, header, {}), cleanup: dropLoadTable(ctx.metaSchema, loadTable) };
      },
      { reshape: true, mergeWhenSameShape: false },
    ),
};
