import { sqlLiteral } from '../../sql/quote.ts';
import type { FoldDialect } from '../fold-dialect.ts';

export const postgresFoldDialect: FoldDialect = {
  position: 'row_number() OVER (ORDER BY lsn, seq)',
  parsedRow: () => `CAST(row_json AS jsonb)`,
  present: (name) => `coalesce(j ? ${sqlLiteral(name)}, false)`,
  value: (name) => `(j ->> ${sqlLiteral(name)})`,
  carriesOther: (names) => `coalesce((j - ARRAY[${names.map(sqlLiteral).join(', ')}]::text[]) <> '{}'::jsonb, false)`,
  keyPart: (i) => `(CAST(key_json AS jsonb) ->> ${i})`,
  cast: (expr, type) => `CAST(${expr} AS ${type})`,
  last: (expr, filter) => `(array_agg(${expr} ORDER BY pos DESC)${filter ? ` FILTER (WHERE ${filter})` : ''})[1]`,
};
