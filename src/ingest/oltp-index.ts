import type { OltpSource } from './oltp-source.ts';

/**
 * Whether a valid, non-partial B-tree index of the OLTP table has `column` as its first column:
 * one that can serve a range and an order on it (a hash or BRIN index cannot).
 */
export async function hasIndexLedBy(oltp: OltpSource, schema: string, table: string, column: string): Promise<boolean> {
  const { rows } = await oltp.query(
    `SELECT 1 AS one FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
       JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_am am ON am.oid = ic.relam
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree' LIMIT 1`,
    [schema, table, column],
  );
  return rows.length > 0;
}
