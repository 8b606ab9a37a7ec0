import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { ResolvedSpec } from './capture-spec.ts';
import { hasIndexLedBy } from './oltp-index.ts';
import type { OltpSource } from './oltp-source.ts';

/**
 * Rows whose practice id is not in tenants.yml, by id (ids are not PHI); the five largest are
 * named. Every run asks, for every captured table. Counting them with one GROUP BY reads the
 * whole OLTP table, every run: thousands of per-practice runs a day would each scan it. With an
 * index led by the practice column (capture's own index is), the table's distinct practices are
 * found instead by one index probe each (a recursive "skip scan", which PostgreSQL does not do
 * by itself before version 18), and only the unknown ones' rows are counted.
 */
export async function countUnknownTenantRows(oltp: OltpSource, spec: ResolvedSpec, known: readonly string[]): Promise<{ total: number; shown: string }> {
  const col = quoteIdent(spec.tenantColumn);
  const rel = quoteRelation(spec.sourceSchema, spec.table);
  const indexed = await hasIndexLedBy(oltp, spec.sourceSchema, spec.table, spec.tenantColumn);
  const sql = indexed
    ? `WITH RECURSIVE p(v) AS (
         (SELECT ${col} FROM ${rel} WHERE ${col} IS NOT NULL ORDER BY ${col} LIMIT 1)
         UNION ALL
         SELECT (SELECT ${col} FROM ${rel} WHERE ${col} > p.v ORDER BY ${col} LIMIT 1) FROM p WHERE p.v IS NOT NULL
       ), counts AS (
         SELECT p.v::text AS tenant, (SELECT count(*) FROM ${rel} WHERE ${col} = p.v) AS n FROM p
          WHERE p.v IS NOT NULL AND NOT (p.v::text = ANY($1::text[]))
         UNION ALL
         SELECT NULL, count(*) FROM ${rel} WHERE ${col} IS NULL
       )
       SELECT tenant, n FROM counts WHERE n > 0 ORDER BY 2 DESC, 1`
    : `SELECT ${col}::text AS tenant, count(*) AS n FROM ${rel}
        WHERE ${col} IS NULL OR NOT (${col}::text = ANY($1::text[])) GROUP BY 1 ORDER BY 2 DESC, 1`;
  const { rows } = await oltp.query(sql, [[...known]]);
  const total = rows.reduce((a, r) => a + Number(r.n), 0);
  const shown = rows.slice(0, 5).map((r) => `${r.tenant === null ? 'NULL' : JSON.stringify(r.tenant)} (${Number(r.n)})`).join(', ');
  return { total, shown };
}
