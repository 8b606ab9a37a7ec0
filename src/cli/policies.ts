import type { VerifyInput } from '../adapters/postgres/verify-types.ts';
import { applyPolicies, requireRowLevelSecurity, type PolicyContext } from '../execute/apply-policies.ts';
import { Codes, TsformError } from '../errors.ts';
import { membershipRows, practiceRole, renderRoles, roleSpecs } from '../security/render-rls.ts';
import { compileWorkspace, openAdapter, policyContext, resolveTarget, type Workspace } from './api.ts';

function requirePolicies(ws: Workspace) {
  const ctx = policyContext(ws);
  if (!ctx) throw new TsformError(Codes.missingFile, 'this project has no policies/policies.yml', { file: 'policies/policies.yml' });
  return ctx;
}

/** The full DDL as text. Practice ids never appear in it: memberships are data, loaded with bound parameters. */
export function renderPoliciesText(projectDir: string): string {
  const ws = compileWorkspace(projectDir, { write: false });
  const ctx = requirePolicies(ws);
  const members = membershipRows(ctx.policies, ctx.tenants);
  return [
    `-- tsform policies for ${ws.project.config.name}: ${ctx.relations.size} protected relations, ${members.length} memberships`,
    // A script piped to psql runs in that session: read and resolved as in tsform's own (session-options.ts).
    '-- read and resolved as tsform\'s own sessions do: literals as compile parsed them, names from pg_catalog',
    'SET standard_conforming_strings = on;',
    'SET search_path = pg_catalog, pg_temp;',
    '-- roles (apply creates only the missing ones)',
    renderRoles(roleSpecs(ctx.policies, ctx.tenants)),
    '-- security schema and membership table',
    ctx.renderer.bootstrap(),
    '-- schema grants',
    ctx.renderer.schemaGrants(),
    `-- membership rows are loaded by apply as bound parameters: INSERT INTO ${ctx.policies.securitySchema}.members SELECT * FROM unnest($1::text[], $2::text[])`,
    ...[...ctx.relations.values()].map((r) => `-- ${r.node} (${r.kind})\n${ctx.renderer.protect(r)}`),
  ].join('\n');
}

export async function applyPoliciesCommand(projectDir: string, targetName: string | undefined, out: (l: string) => void): Promise<number> {
  const ws = compileWorkspace(projectDir, { write: false });
  const ctx = requirePolicies(ws);
  const target = resolveTarget(ws.project, targetName);
  if (target.type !== 'postgres') {
    throw new TsformError(Codes.unsupported, `target '${target.name}' is DuckDB, which has no roles or row-level security; policies apply needs --target postgres (tsform policies render shows the DDL)`);
  }
  const adapter = await openAdapter(ws.project, target, { threads: 1 });
  try {
    requireRowLevelSecurity(adapter);
    const { protectedCount, missing, tenantStatistics } = await applyPolicies(adapter, ctx).catch((err: unknown) => {
      if (err instanceof TsformError) throw err;
      throw new TsformError(Codes.sqlError, `policies apply failed and was rolled back (the previous policies stay in force): ${adapter.describeError(err)}`);
    });
    out(`applied: ${roleSpecs(ctx.policies, ctx.tenants).length} roles, ${membershipRows(ctx.policies, ctx.tenants).length} memberships, ${protectedCount} relations protected`);
    if (missing.length > 0) out(`not built yet (protected when tsform run creates them): ${missing.join(', ')}`);
    if (tenantStatistics) {
      out(`planner statistics of ${ctx.tenantColumn}: target 0 on every protected table; removed from ${tenantStatistics.cleared.length} table(s)`);
      for (const k of tenantStatistics.kept) out(`planner statistics of ${ctx.tenantColumn} KEPT in ${k.relation}: ${k.reason}`);
    }
    const partitioned = target.partitionByPractice;
    if (partitioned) out(partitionFiguresNote(partitioned.list.length));
    return 0;
  } finally {
    await adapter.close();
  }
}

export async function verifyPoliciesCommand(projectDir: string, targetName: string | undefined, maxRoles: number, out: (l: string) => void): Promise<number> {
  const ws = compileWorkspace(projectDir, { write: false });
  const ctx = requirePolicies(ws);
  const target = resolveTarget(ws.project, targetName);
  if (target.type !== 'postgres') {
    throw new TsformError(Codes.unsupported, `target '${target.name}' is DuckDB, which has no roles or row-level security; policies verify needs --target postgres`);
  }
  const { verifyPolicies, formatVerifyReport } = await import('../adapters/postgres/policy-verifier.ts');
  const adminUrl = process.env.TSFORM_PG_ADMIN_URL ?? process.env[target.urlEnv];
  if (!adminUrl) throw new TsformError(Codes.missingEnv, `policies verify connects with $TSFORM_PG_ADMIN_URL (a superuser, to impersonate practice roles) or $${target.urlEnv}`);
  const input = verifyInputOf(ws, ctx, adminUrl);
  const report = await verifyPolicies({ ...input, practiceRoles: input.practiceRoles.slice(0, maxRoles) });
  out(formatVerifyReport(report));
  return report.failures > 0 ? 1 : 0;
}

/** What the verifier checks, from the compiled project: every practice role (the caller samples). */
export function verifyInputOf(ws: Workspace, ctx: PolicyContext, url: string): VerifyInput {
  const { schemas, tenantColumn } = ws.project.config;
  return {
    url,
    tenantColumn,
    relations: [...ctx.relations.values()].map((r) => ({ name: r.node, schema: r.schema, identifier: r.identifier, kind: r.kind })),
    practiceRoles: ctx.tenants.map((t) => ({ role: practiceRole(ctx.policies, t.id), practices: [t.id] })),
    groupRoles: ctx.policies.groups.map((g) => ({ role: g.role, practices: g.practices })),
    practicesRole: ctx.policies.roles.practices,
    groupsRole: ctx.policies.roles.practiceGroups,
    owner: ctx.policies.roles.owner,
    researchReader: ctx.policies.roles.researchReader,
    vaultSteward: ctx.policies.roles.vaultSteward,
    researchSchemas: ctx.policies.researchSchemas,
    restrictedSchemas: [...new Set([...ctx.policies.protectSchemas, schemas.vault])],
    vaultSchema: schemas.vault,
    securitySchema: ctx.policies.securitySchema,
    settingsToSpoof: [...new Set(['app.practice_id', 'app.tenant', 'tsform.tenant', `app.${tenantColumn}`])],
  };
}

/**
 * The catalog is readable by every role and row-level security does not reach it: a partition's
 * row count and size (`pg_class.reltuples`, `pg_stat_user_tables.n_live_tup`) are its practices'
 * figures, exact for a listed practice, whose id its bound names (red-team, 2026-12-07).
 */
function partitionFiguresNote(listed: number): string {
  return `partitioned by practice: every role can read each partition's row count and size in pg_class and pg_stat_user_tables, which row-level security does not filter; the ${listed} listed practice(s) are named in their partitions' bounds, so their row counts are public, and so is a hashed practice's when it is alone in its partition (README, "Partitioning by practice")`;
}
