import type { OltpSource } from './oltp-source.ts';

/** Whether a valid, non-partial index of the OLTP table has `column` as its first column. */
export async function hasIndexLedBy(oltp: OltpSource, schema: string, table: string, column: string): Promise<boolean> {
  const { rows } = await oltp.query(
    `SELECT 1 AS one FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND i.indisvalid AND i.indpred IS NULL LIMIT 1`,
    [schema, table, column],
  );
  return rows.length > 0;
}
