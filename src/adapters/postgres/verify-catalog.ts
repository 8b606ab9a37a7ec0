import type pg from 'pg';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { mapLimit } from './map-limit.ts';
import type { ProbedRole, VerifyInput } from './verify-types.ts';

/**
 * Read once, as the superuser, before any role is impersonated: a superuser bypasses row-level
 * security, so its row counts are the truth every probe is compared with.
 */

// Mirrors security/render-rls.ts (adapters/ may not import security/): the membership table
// apply fills.
export const MEMBERS_TABLE = 'members';
/** `SECURITY DEFINER` functions (regprocedure text) practice and research roles may execute. */
const DEFINER_ALLOW_LIST: readonly string[] = [];

export interface PolicyRow {
  oid: number;
  name: string;
  permissive: boolean;
  cmd: string;
  roles: string[];
  qual: string | null;
  with_check: string | null;
  uses_members: boolean;
}

/** A protected relation as the catalog shows it, with its probe statements built once. */
export interface Relation {
  label: string;
  kind: 'table' | 'view';
  oid: number | undefined;
  relkind: string;
  rowSecurity: boolean;
  forceRowSecurity: boolean;
  reloptions: string[];
  owner: string;
  ownerSuper: boolean;
  tenantIndex: boolean;
  hasTenantColumn: boolean;
  policies: PolicyRow[];
  /** Rows per practice id, as the superuser sees them (superusers bypass row-level security). */
  rowsByPractice: Map<string, number>;
  sql: ReturnType<typeof probeSql>;
}

interface OtherRelation {
  label: string;
  schema: string;
  oid: number;
  rowSecurity: boolean;
}

interface RoleRow {
  name: string;
  present: boolean;
  rolsuper: boolean;
  rolbypassrls: boolean;
  rolcreaterole: boolean;
  member_of: string[];
  privileged_member: string[];
  /** Which of the two policy groups (practices, groups) the role is a member of, directly or not. */
  policy_groups: string[];
  vault_usage: boolean | null;
  research_usage: boolean[];
  /** Schemas (not the server's own) in which the role may CREATE. */
  creatable: string[];
}

export interface Catalog {
  relations: Relation[];
  /** Relations in the research and restricted schemas and the vault, beyond the protected ones. */
  others: OtherRelation[];
  roles: Map<string, RoleRow>;
  definers: Map<string, string[]>;
  memberships: Map<string, number>;
  /** Every practice id with rows anywhere, most rows first: victims for spoofing. */
  practicesByRows: string[];
}

export async function readCatalog(pool: pg.Pool, input: VerifyInput, probed: readonly ProbedRole[], concurrency: number): Promise<Catalog> {
  const members = quoteRelation(input.securitySchema, MEMBERS_TABLE);
  const rels = await pool.query(
    `SELECT r.ord, c.oid::int8 AS oid, c.relkind::text AS relkind, c.relrowsecurity, c.relforcerowsecurity,
            coalesce(c.reloptions, '{}')::text[] AS reloptions, o.rolname::text AS owner, o.rolsuper AS owner_super,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                     WHERE i.indrelid = c.oid AND a.attname = $3) AS tenant_index,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum) AS columns,
            tt.nspname::text AS tenant_type_schema, tt.typname::text AS tenant_type
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(schema_name, rel_name, ord)
       LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema_name
       LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       LEFT JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
       LEFT JOIN LATERAL (SELECT tn.nspname, t.typname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                            JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
                           WHERE a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped) tt ON true
      ORDER BY r.ord`,
    [input.relations.map((r) => r.schema), input.relations.map((r) => r.identifier), input.tenantColumn],
  );
  const oids = rels.rows.filter((r) => r.oid !== null).map((r) => String(r.oid));
  const policies = await pool.query<PolicyRow>(
    `SELECT p.polrelid::int8 AS oid, p.polname::text AS name, p.polpermissive AS permissive, p.polcmd::text AS cmd,
            ARRAY(SELECT CASE WHEN x = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(x)::text END FROM unnest(p.polroles) x) AS roles,
            pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check,
            EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
                     AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = to_regclass($2)) AS uses_members
       FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY($1::oid[]) ORDER BY p.polname`,
    [oids, members],
  );
  const relations: Relation[] = input.relations.map((r, i) => {
    const row = rels.rows[i] ?? {};
    const oid = row.oid === null || row.oid === undefined ? undefined : Number(row.oid);
    const columns = (row.columns ?? []) as string[];
    return {
      label: `${r.schema}.${r.identifier}`,
      kind: r.kind,
      oid,
      relkind: String(row.relkind ?? ''),
      rowSecurity: row.relrowsecurity === true,
      forceRowSecurity: row.relforcerowsecurity === true,
      reloptions: (row.reloptions ?? []) as string[],
      owner: String(row.owner ?? ''),
      ownerSuper: row.owner_super === true,
      tenantIndex: row.tenant_index === true,
      hasTenantColumn: typeof row.tenant_type === 'string',
      policies: policies.rows.filter((p) => Number(p.oid) === oid),
      rowsByPractice: new Map(),
      sql: probeSql(r.schema, r.identifier, input.tenantColumn, columns, [String(row.tenant_type_schema ?? 'pg_catalog'), String(row.tenant_type ?? 'text')]),
    };
  });
  // Rows per practice: the truth every probe is compared with.
  await mapLimit(
    relations.filter((r) => r.oid !== undefined && r.hasTenantColumn),
    concurrency,
    async (r) => {
      const { rows } = await pool.query(r.sql.baseline);
      for (const row of rows) if (row.t !== null) r.rowsByPractice.set(String(row.t), Number(row.n));
    },
  );
  const totals = new Map<string, number>();
  for (const r of relations) for (const [p, n] of r.rowsByPractice) totals.set(p, (totals.get(p) ?? 0) + n);

  const others = await pool.query(
    `SELECT n.nspname::text AS schema_name, c.relname::text AS rel_name, c.oid::int8 AS oid, c.relrowsecurity
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT (c.oid = ANY($2::oid[]))
      ORDER BY 1, 2`,
    [[...new Set([...input.researchSchemas, ...input.restrictedSchemas, input.vaultSchema])], oids],
  );
  const roleNames = [...new Set([...probed.map((r) => r.role), input.vaultSteward, input.owner])];
  const privileged = [input.owner, input.researchReader, input.vaultSteward];
  const roles = await pool.query<RoleRow>(
    `SELECT r.name, a.oid IS NOT NULL AS present, coalesce(a.rolsuper, false) AS rolsuper, coalesce(a.rolbypassrls, false) AS rolbypassrls,
            coalesce(a.rolcreaterole, false) AS rolcreaterole,
            ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid ORDER BY 1) AS member_of,
            ARRAY(SELECT p.rolname::text FROM pg_catalog.pg_roles p
                   WHERE a.oid IS NOT NULL AND p.rolname = ANY($2::text[]) AND p.oid <> a.oid AND pg_catalog.pg_has_role(a.oid, p.oid, 'MEMBER') ORDER BY 1) AS privileged_member,
            ARRAY(SELECT p.rolname::text FROM pg_catalog.pg_roles p
                   WHERE a.oid IS NOT NULL AND p.rolname = ANY($5::text[]) AND pg_catalog.pg_has_role(a.oid, p.oid, 'MEMBER') ORDER BY 1) AS policy_groups,
            (SELECT pg_catalog.has_schema_privilege(a.oid, n.oid, 'USAGE') FROM pg_catalog.pg_namespace n WHERE n.nspname = $3 AND a.oid IS NOT NULL) AS vault_usage,
            ARRAY(SELECT pg_catalog.has_schema_privilege(a.oid, n.oid, 'USAGE') FROM pg_catalog.pg_namespace n
                   WHERE n.nspname = ANY($4::text[]) AND a.oid IS NOT NULL) AS research_usage,
            ARRAY(SELECT n.nspname::text FROM pg_catalog.pg_namespace n
                   WHERE a.oid IS NOT NULL AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                     AND pg_catalog.has_schema_privilege(a.oid, n.oid, 'CREATE') ORDER BY 1) AS creatable
       FROM unnest($1::text[]) AS r(name) LEFT JOIN pg_catalog.pg_roles a ON a.rolname = r.name`,
    [roleNames, privileged, input.vaultSchema, input.researchSchemas, [input.practicesRole, input.groupsRole]],
  );
  // EXECUTE is granted to PUBLIC by default: a SECURITY DEFINER function counts as executable
  // whatever the USAGE on its schema, which is a weaker, easily granted barrier.
  const definers = await pool.query(
    `SELECT r.name, p.oid::regprocedure::text AS fn
       FROM unnest($1::text[]) AS r(name) JOIN pg_catalog.pg_roles a ON a.rolname = r.name
       CROSS JOIN pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
        AND pg_catalog.has_function_privilege(a.oid, p.oid, 'EXECUTE')
      ORDER BY 1, 2`,
    [probed.map((r) => r.role)],
  );
  const memberships = await pool
    .query(`SELECT role_name::text AS role, count(*) AS n FROM ${members} WHERE role_name = ANY($1::text[]) GROUP BY 1`, [probed.map((r) => r.role)])
    .then(
      (r) => new Map(r.rows.map((row) => [String(row.role), Number(row.n)])),
      () => new Map<string, number>(),
    );
  const definerMap = new Map<string, string[]>();
  for (const row of definers.rows) {
    if (DEFINER_ALLOW_LIST.includes(String(row.fn))) continue;
    definerMap.set(String(row.name), [...(definerMap.get(String(row.name)) ?? []), String(row.fn)]);
  }
  return {
    relations,
    others: others.rows.map((r) => ({ label: `${r.schema_name}.${r.rel_name}`, schema: String(r.schema_name), oid: Number(r.oid), rowSecurity: r.relrowsecurity === true })),
    roles: new Map(roles.rows.map((r) => [r.name, r])),
    definers: definerMap,
    memberships,
    practicesByRows: [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([p]) => p),
  };
}

/** Statement texts of one relation, built once and shared by every role's probes. */
function probeSql(schema: string, identifier: string, tenantColumn: string, columns: readonly string[], tenantType: [string, string]) {
  const rel = quoteRelation(schema, identifier);
  const t = quoteIdent(tenantColumn);
  const own = `${t}::text = ANY($1::text[])`;
  const cols = columns.map(quoteIdent);
  // INSERT ... SELECT does not take a parameter's type from the target column: cast to it
  const fromOwn = columns.map((c) => (c === tenantColumn ? `$1::${quoteRelation(...tenantType)}` : quoteIdent(c)));
  return {
    baseline: `SELECT ${t}::text AS t, count(*) AS n FROM ${rel} GROUP BY 1`,
    counts: `SELECT count(*) AS total, count(*) FILTER (WHERE ${own}) AS own FROM ${rel}`,
    copyQuery: `COPY (SELECT * FROM ${rel}) TO STDOUT`,
    copyTable: `COPY ${rel} TO STDOUT`,
    insertValues: `INSERT INTO ${rel} (${t}) VALUES ($1)`,
    insertFromOwn: `INSERT INTO ${rel} (${cols.join(', ')}) SELECT ${fromOwn.join(', ')} FROM ${rel} LIMIT 1`,
    updateMove: `UPDATE ${rel} SET ${t} = $1`,
    updateOthers: `UPDATE ${rel} SET ${t} = ${t} WHERE NOT (${own})`,
    deleteOthers: `DELETE FROM ${rel} WHERE NOT (${own})`,
  };
}
