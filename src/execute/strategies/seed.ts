import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsv } from '../../project/seed-csv.ts';
import { explainCastFailure } from '../../warehouse/csv-bad-value.ts';
import { inferColumnType, typedSelect } from '../../warehouse/load-csv.ts';
import type { MaterializationStrategy } from '../strategy.ts';
import { dropLoadTable, loadTextTable, writeWhole } from './relation-write.ts';

/** A CSV of seeds/: loaded whole every run, typed by its yml or inferred; follows the file's shape. */
export const seedStrategy: MaterializationStrategy<'seed'> = {
  kind: 'seed',
  buildWhole: (ctx, node) => {
    const types: Record<string, string> = {};
    return writeWhole(
      ctx,
      node,
      async (s) => {
        const { header, rows } = parseCsv(readFileSync(join(ctx.projectRoot, node.path), 'utf8'));
        const loadTable = await loadTextTable(ctx, s, header, rows.map((r) => r.map((v) => (v === '' ? null : v))));
        header.forEach((h, i) => {
          types[h] = node.columns[h]?.data_type ?? inferColumnType(rows.map((r) => r[i] ?? ''));
        });
        return { select: typedSelect(ctx.metaSchema, loadTable, header, types), cleanup: dropLoadTable(ctx.metaSchema, loadTable) };
      },
      { reshape: true, mergeWhenSameShape: false },
    ).catch(async (err: unknown) => {
      throw await explainCastFailure(err, ctx.adapter, { file: join(ctx.projectRoot, node.path), display: node.path }, types);
    });
  },
};
