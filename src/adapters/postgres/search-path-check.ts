import type pg from 'pg';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent } from '../../sql/quote.ts';

/**
 * The schemas a target adds to tsform's search path (session-options.ts) hold functions a model
 * calls by bare name, run as the role that builds. So each must exist (else whoever may create it
 * later decides what those calls run) and be creatable only by that role or a superuser: CREATE
 * held by PUBLIC or by any other role (owner or grantee) lets that role plant a better match than
 * the function meant (CVE-2018-1058). `pg_database_owner` (owner of `public` since PostgreSQL 15)
 * stands for the database's owner.
 */
export async function checkSearchPathSchemas(pool: pg.Pool, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const { rows } = await pool.query<{ name: string; present: boolean; creators: string }>(
    `WITH wanted AS (SELECT unnest($1::text[]) AS name),
          dbo AS (SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),
          pdo AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = 'pg_database_owner')
     SELECT w.name, n.oid IS NOT NULL AS present,
            pg_catalog.to_json(coalesce((
              SELECT pg_catalog.array_agg(DISTINCT who ORDER BY who) FROM (
                SELECT CASE WHEN c.role = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(c.role) END AS who
                  FROM (SELECT CASE WHEN x.role = (SELECT oid FROM pdo) THEN (SELECT datdba FROM dbo) ELSE x.role END AS role
                          FROM (SELECT n.nspowner AS role
                                UNION SELECT a.grantee FROM pg_catalog.aclexplode(n.nspacl) a WHERE a.privilege_type = 'CREATE') x) c
                  LEFT JOIN pg_catalog.pg_roles r ON r.oid = c.role
                 WHERE c.role = 0 OR NOT (r.rolsuper OR r.rolname = current_user)) creators
            ), '{}')::text[])::text AS creators
       FROM wanted w LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = w.name`,
    [[...schemas]],
  );
  const problems = rows.flatMap((row) => {
    // as JSON text: the pool's result types (result-types.ts) read values as the DuckDB adapter returns them
    const r = { ...row, creators: JSON.parse(row.creators) as string[] };
    if (!r.present) return [`'${r.name}' does not exist (whoever creates it would decide what models call)`];
    if (r.creators.length > 0) return [`'${r.name}' may be created in by ${r.creators.join(', ')} (REVOKE CREATE ON SCHEMA ${quoteIdent(r.name)} FROM ${r.creators.map((c) => (c === 'PUBLIC' ? c : quoteIdent(c))).join(', ')})`];
    return [];
  });
  if (problems.length === 0) return;
  throw new TsformError(
    Codes.invalidRunSetting,
    `the target's search_path holds schemas whose functions models call as this role, but ${problems.join('; ')}; only this role and superusers may create there`,
    { file: 'tsform.yml' },
  );
}
