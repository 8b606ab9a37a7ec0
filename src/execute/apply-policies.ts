import type { Adapter, Session } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import type { PolicyConfig, Tenant } from '../project/types.ts';
import type { ProtectedRelation } from '../security/protected-relations.ts';
import { createdPolicyNames, hidesTenantStatistics, MEMBERS_TABLE, membershipRows, policyGroupRoles, roleSpecs, type PolicyRenderer } from '../security/render-rls.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';

export interface PolicyContext {
  policies: PolicyConfig;
  renderer: PolicyRenderer;
  tenants: readonly Tenant[];
  tenantColumn: string;
  /** Protected relations by manifest node id. */
  relations: Map<string, ProtectedRelation>;
  /** The project has a vault (privacy: in tsform.yml): install the audited re-identification path. */
  vault?: boolean;
}

export function requireRowLevelSecurity(adapter: Adapter): void {
  if (!adapter.capabilities.rowLevelSecurity) {
    throw new TsformError(
      Codes.unsupported,
      `the ${adapter.kind} target has no roles or row-level security, so policies cannot be applied there; use --target postgres (tsform policies render still shows the DDL)`,
    );
  }
}

/**
 * The owner's policy (every row) goes to policies.yml's `roles.owner`, and policies TO a role
 * apply to its members: the role that builds must be it, a member of it, or a superuser. Else the
 * builder (owner of the tables, filtered by FORCE) read none of its own rows, so an incremental
 * model merged into what looked empty, and every row went to whoever roles.owner named.
 */
async function requireOwnerConnection(s: Session, owner: string): Promise<void> {
  const { rows } = await s.query(
    `SELECT current_user AS me, r.rolsuper AS super, EXISTS (SELECT 1 FROM pg_roles o WHERE o.rolname = $1 AND pg_has_role(current_user, o.oid, 'MEMBER')) AS member
       FROM pg_roles r WHERE r.rolname = current_user`,
    [owner],
  );
  const me = rows[0];
  if (me && (me.super === true || me.member === true)) return;
  throw new TsformError(
    Codes.invalidRunSetting,
    `connected as '${String(me?.me ?? '?')}', which is not policies.yml's roles.owner '${owner}' nor a member of it: the owner's policy (every row) would go to another role; connect as ${owner}, or set roles.owner`,
    { file: 'policies/policies.yml' },
  );
}

/**
 * Roles, the membership table (synchronised with tenants.yml), schema grants. Idempotent; runs
 * inside the caller's transaction so that a failure leaves the previous policies in force.
 */
export async function applyPolicyFoundation(s: Session, ctx: PolicyContext): Promise<void> {
  await requireOwnerConnection(s, ctx.policies.roles.owner);
  const specs = roleSpecs(ctx.policies, ctx.tenants);
  const { rows } = await s.query('SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])', [specs.map((r) => r.role)]);
  const existing = new Set(rows.map((r) => String(r.rolname)));
  for (const spec of specs) {
    if (!existing.has(spec.role)) {
      await s.query(`CREATE ROLE ${quoteIdent(spec.role)} ${spec.login ? 'LOGIN' : 'NOLOGIN'} NOSUPERUSER NOBYPASSRLS`);
    }
  }
  if (!existing.has(ctx.policies.roles.owner)) {
    const owner = await s.query('SELECT 1 AS present FROM pg_roles WHERE rolname = $1', [ctx.policies.roles.owner]);
    if (owner.rows.length === 0) await s.query(`CREATE ROLE ${quoteIdent(ctx.policies.roles.owner)} NOLOGIN NOSUPERUSER`);
  }
  // Every run syncs roles: one query finds the missing memberships instead of one per role.
  const wanted = specs.flatMap((spec) => spec.memberOf.map((group) => ({ role: spec.role, group })));
  const missing = await s.query(
    `SELECT r AS role, g AS grp FROM (SELECT unnest($1::text[]) AS r, unnest($2::text[]) AS g) AS w WHERE NOT pg_has_role(r, g, 'MEMBER')`,
    [wanted.map((w) => w.role), wanted.map((w) => w.group)],
  );
  for (const m of missing.rows) await s.query(`GRANT ${quoteIdent(String(m.grp))} TO ${quoteIdent(String(m.role))}`);
  // A managed role in the wrong policy group (a practice role turned into a group, or roles
  // from before the groups were split) would get the other group's policy too.
  const stray = await s.query(
    `SELECT u.rolname AS role, g.rolname AS grp FROM pg_auth_members m
       JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
      WHERE g.rolname = ANY($1::text[]) AND u.rolname = ANY($2::text[])`,
    [policyGroupRoles(ctx.policies), specs.map((r) => r.role)],
  );
  const wantedPairs = new Set(wanted.map((w) => `${w.role}\u0000${w.group}`));
  for (const m of stray.rows) {
    if (!wantedPairs.has(`${String(m.role)}\u0000${String(m.grp)}`)) await s.query(`REVOKE ${quoteIdent(String(m.grp))} FROM ${quoteIdent(String(m.role))}`);
  }
  await s.runScript(ctx.renderer.bootstrap());
  await s.runScript(ctx.renderer.schemaGrants());
  if (ctx.vault) await s.runScript(ctx.renderer.vaultReidentify());
  const members = membershipRows(ctx.policies, ctx.tenants);
  const table = quoteRelation(ctx.policies.securitySchema, MEMBERS_TABLE);
  await s.query(`DELETE FROM ${table}`);
  await s.query(`INSERT INTO ${table} (role_name, ${quoteIdent(ctx.tenantColumn)}) SELECT * FROM unnest($1::text[], $2::text[])`, [
    members.map((m) => m.role),
    members.map((m) => m.practice),
  ]);
}

/** What `policies apply` did to the tenant column's statistics (`planner_statistics: { tenant_column: none }`). */
export interface TenantStatisticsOutcome {
  /** Tables whose tenant column had statistics, now removed. */
  cleared: string[];
  /** Tables whose statistics could not be removed, and why (e.g. a view uses the column). */
  kept: { relation: string; reason: string }[];
}

export interface ApplyPoliciesResult {
  protectedCount: number;
  missing: string[];
  /** Present only with `planner_statistics: { tenant_column: none }`. */
  tenantStatistics?: TenantStatisticsOutcome;
}

/** `tsform policies apply`: the foundation and every existing protected relation, atomically. */
export async function applyPolicies(adapter: Adapter, ctx: PolicyContext): Promise<ApplyPoliciesResult> {
  requireRowLevelSecurity(adapter);
  const hideStatistics = hidesTenantStatistics(ctx.policies);
  return adapter.transaction(async (s) => {
    await applyPolicyFoundation(s, ctx);
    let protectedCount = 0;
    const missing: string[] = [];
    const statistics: TenantStatisticsOutcome = { cleared: [], kept: [] };
    for (const rel of ctx.relations.values()) {
      const exists = await s.query('SELECT to_regclass($1) IS NOT NULL AS present', [quoteRelation(rel.schema, rel.identifier)]);
      if (exists.rows[0]?.present !== true) {
        missing.push(rel.node);
        continue;
      }
      if (hideStatistics && rel.kind === 'table') await clearTenantStatistics(s, ctx, rel, statistics);
      // protect() also sets the column's statistics target to 0 (render-rls.ts)
      await s.runScript(ctx.renderer.protect(rel));
      protectedCount++;
    }
    return hideStatistics ? { protectedCount, missing, tenantStatistics: statistics } : { protectedCount, missing };
  });
}

const RESET_SAVEPOINT = 'tsform_tenant_statistics';

/**
 * Removes the statistics ANALYZE kept for the tenant column of one table, in the caller's
 * transaction, before `protect(rel)` runs (which forces row-level security again and creates
 * the policies dropped here). A column a view, rule, trigger or a policy tsform does not create
 * uses cannot be altered: that table is reported in `kept`, and the rest of the apply goes on.
 */
async function clearTenantStatistics(s: Session, ctx: PolicyContext, rel: ProtectedRelation, out: TenantStatisticsOutcome): Promise<void> {
  const table = quoteRelation(rel.schema, rel.identifier);
  const label = `${rel.schema}.${rel.identifier}`;
  // pg_stats hides the statistics of a table from everyone row-level security applies to,
  // under FORCE the owner too; protect(rel) forces it again below, in this transaction.
  await s.query(`ALTER TABLE ${table} NO FORCE ROW LEVEL SECURITY`);
  const { rows } = await s.query(
    `SELECT a.attnum, format_type(a.atttypid, a.atttypmod) AS column_type, cn.nspname AS coll_schema, co.collname AS coll_name,
            EXISTS (SELECT 1 FROM pg_stats st WHERE st.schemaname = $2 AND st.tablename = $3 AND st.attname = $4) AS has_stats
       FROM pg_attribute a
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE a.attrelid = $1::regclass AND a.attname = $4 AND NOT a.attisdropped`,
    [table, rel.schema, rel.identifier, ctx.tenantColumn],
  );
  const column = rows[0];
  if (!column || column.has_stats !== true) return;
  const dependents = await s.query(
    `SELECT CASE d.classid WHEN 'pg_policy'::regclass THEN 'policy' WHEN 'pg_trigger'::regclass THEN 'trigger' ELSE 'view or rule' END AS kind,
            coalesce(p.polname::text, t.tgname::text, r.ev_class::regclass::text) AS name
       FROM pg_depend d
       LEFT JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND p.oid = d.objid
       LEFT JOIN pg_trigger t ON d.classid = 'pg_trigger'::regclass AND t.oid = d.objid
       LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
      WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::regclass AND d.refobjsubid = $2
        AND d.classid IN ('pg_policy'::regclass, 'pg_trigger'::regclass, 'pg_rewrite'::regclass)
      ORDER BY 1, 2`,
    [table, Number(column.attnum)],
  );
  const recreated = new Set(createdPolicyNames(ctx.renderer.protect(rel)));
  const ours = dependents.rows.filter((d) => d.kind === 'policy' && recreated.has(String(d.name))).map((d) => String(d.name));
  const blockers = dependents.rows.filter((d) => !(d.kind === 'policy' && recreated.has(String(d.name))));
  if (blockers.length > 0) {
    const names = [...new Set(blockers.map((b) => `${String(b.kind)} ${String(b.name)}`))].join(', ');
    out.kept.push({ relation: label, reason: `PostgreSQL cannot alter a column that ${names} uses` });
    return;
  }
  const reset = ctx.renderer.tenantStatisticsReset(
    rel,
    { columnType: String(column.column_type), collation: column.coll_name == null ? undefined : { schema: String(column.coll_schema), name: String(column.coll_name) } },
    ours,
  );
  await s.query(`SAVEPOINT ${RESET_SAVEPOINT}`);
  try {
    await s.runScript(reset);
    await s.query(`RELEASE SAVEPOINT ${RESET_SAVEPOINT}`);
    out.cleared.push(label);
  } catch (err) {
    // Whatever else PostgreSQL refuses the change for: the statistics stay, the apply goes on.
    await s.query(`ROLLBACK TO SAVEPOINT ${RESET_SAVEPOINT}`);
    out.kept.push({ relation: label, reason: err instanceof Error ? err.message : String(err) });
  }
}
