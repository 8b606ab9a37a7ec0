import type { Adapter, Session } from '../adapters/adapter.ts';
import { Codes, TsformError } from '../errors.ts';
import type { PolicyConfig, Tenant } from '../project/types.ts';
import type { ProtectedRelation } from '../security/protected-relations.ts';
import { MEMBERS_TABLE, membershipRows, policyGroupRoles, roleSpecs, type PolicyRenderer } from '../security/render-rls.ts';
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
 * Roles, the membership table (synchronised with tenants.yml), schema grants. Idempotent; runs
 * inside the caller's transaction so that a failure leaves the previous policies in force.
 */
export async function applyPolicyFoundation(s: Session, ctx: PolicyContext): Promise<void> {
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

/** `tsform policies apply`: the foundation and every existing protected relation, atomically. */
export async function applyPolicies(adapter: Adapter, ctx: PolicyContext): Promise<{ protectedCount: number; missing: string[] }> {
  requireRowLevelSecurity(adapter);
  return adapter.transaction(async (s) => {
    await applyPolicyFoundation(s, ctx);
    let protectedCount = 0;
    const missing: string[] = [];
    for (const rel of ctx.relations.values()) {
      const exists = await s.query('SELECT to_regclass($1) IS NOT NULL AS present', [quoteRelation(rel.schema, rel.identifier)]);
      if (exists.rows[0]?.present !== true) {
        missing.push(rel.node);
        continue;
      }
      await s.runScript(ctx.renderer.protect(rel));
      protectedCount++;
    }
    return { protectedCount, missing };
  });
}
