import type { Session } from '../adapter.ts';

/**
 * Views (plain and materialized) that read a relation, directly or through other views: what
 * `DROP TABLE` refuses to drop without CASCADE. PostgreSQL records a view's reads as
 * dependencies of its rewrite rule (pg_depend → pg_rewrite → the view), so they are followed
 * from there; DuckDB records none.
 */
export async function dependentViews(q: Pick<Session, 'query'>, schema: string, name: string): Promise<{ schema: string; name: string }[]> {
  const { rows } = await q.query(
    `WITH RECURSIVE deps(oid) AS (
       SELECT DISTINCT r.ev_class
         FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
         JOIN pg_catalog.pg_class rel ON rel.oid = d.refobjid
         JOIN pg_catalog.pg_namespace n ON n.oid = rel.relnamespace
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND n.nspname = $1 AND rel.relname = $2 AND r.ev_class <> d.refobjid
       UNION
       SELECT r.ev_class
         FROM deps
         JOIN pg_catalog.pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_catalog.pg_rewrite'::regclass
         JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        WHERE r.ev_class <> deps.oid)
     SELECT n.nspname AS schema, c.relname AS name
       FROM deps JOIN pg_catalog.pg_class c ON c.oid = deps.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      ORDER BY 1, 2`,
    [schema, name],
  );
  return rows.map((r) => ({ schema: String(r.schema), name: String(r.name) }));
}
