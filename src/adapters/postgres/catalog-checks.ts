import { type Catalog, MEMBERS_TABLE, type PolicyRow } from './verify-catalog.ts';
import type { ProbedRole, VerifyCheck, VerifyInput } from './verify-types.ts';

// Mirrors security/templates.ts (adapters/ may not import security/): the policy names the
// templates create.
const ISOLATION_POLICY = 'tsform_practice_isolation';
const GROUP_POLICY = 'tsform_group_isolation';
const OWNER_POLICY = 'tsform_owner';
const CATALOG = '(catalog)';

/** What the catalog alone proves, one check per relation or role, before any role is impersonated. */
export function catalogChecks(input: VerifyInput, cat: Catalog, probed: readonly ProbedRole[]): VerifyCheck[] {
  return [...structureChecks(input, cat), ...roleChecks(input, cat, probed)];
}

function structureChecks(input: VerifyInput, cat: Catalog): VerifyCheck[] {
  const out: VerifyCheck[] = [];
  const add = (relation: string, check: string, passed: boolean, detail: string) => out.push({ relation, check, role: CATALOG, passed, detail });
  for (const r of cat.relations) {
    const expectedKinds = r.kind === 'view' ? ['v'] : ['r', 'p'];
    if (r.oid === undefined) {
      add(r.label, 'exists', false, 'not in the database (not built yet, or dropped)');
      continue;
    }
    add(r.label, 'exists', expectedKinds.includes(r.relkind), `relkind ${r.relkind}, expected ${expectedKinds.join('/')}`);
    if (!r.hasTenantColumn) add(r.label, 'tenant_column', false, `no column ${input.tenantColumn}`);
    add(r.label, 'owner', r.owner === input.owner || r.ownerSuper, `owned by ${r.owner}${r.ownerSuper ? ' (superuser)' : ''}`);
    if (r.kind === 'view') {
      const invoker = r.reloptions.some((o) => /^security_invoker=(true|on|yes|1)$/i.test(o));
      add(r.label, 'security_invoker', invoker, invoker ? 'security_invoker=true' : 'runs with its owner\'s rights (security_invoker not set)');
      continue;
    }
    add(r.label, 'rls', r.rowSecurity && r.forceRowSecurity, `${r.rowSecurity ? 'enabled' : 'NOT enabled'}, ${r.forceRowSecurity ? 'forced' : 'NOT forced'}`);
    // Each policy applies to its own group only: the other group's members get nothing from it.
    for (const [name, role] of [
      [ISOLATION_POLICY, input.practicesRole],
      [GROUP_POLICY, input.groupsRole],
    ] as const) {
      const p = r.policies.find((x) => x.name === name);
      const problems = p ? isolationProblems(p, role) : [`no policy ${name}`];
      add(r.label, name === ISOLATION_POLICY ? 'policy' : 'group_policy', problems.length === 0, problems.length === 0 ? `${name} to ${role}: current_user via ${input.securitySchema}.${MEMBERS_TABLE}` : problems.join('; '));
    }
    // Permissive policies are OR-ed: any other one widens what a practice sees.
    const extra = r.policies.filter((p) => p.permissive && p.name !== ISOLATION_POLICY && p.name !== GROUP_POLICY && !(p.name === OWNER_POLICY && p.roles.length === 1 && p.roles[0] === input.owner));
    add(r.label, 'other_policies', extra.length === 0, extra.length === 0 ? `${r.policies.length} policies` : `unexpected permissive: ${extra.map((p) => `${p.name} (to ${p.roles.join(', ')})`).join(', ')}`);
    add(r.label, 'tenant_index', r.tenantIndex, r.tenantIndex ? `an index leads with ${input.tenantColumn}` : `no index leads with ${input.tenantColumn}`);
  }
  return out;
}

function isolationProblems(p: PolicyRow, role: string): string[] {
  const problems: string[] = [];
  if (!p.permissive) problems.push('restrictive');
  if (p.cmd !== '*') problems.push(`FOR ${p.cmd}, not ALL`);
  if (p.roles.length !== 1 || p.roles[0] !== role) problems.push(`TO ${p.roles.join(', ')}, not ${role}`);
  for (const [what, expr] of [['USING', p.qual], ['WITH CHECK', p.with_check]] as const) {
    if (expr === null) problems.push(`no ${what}`);
    else if (!/\bcurrent_user\b/i.test(expr)) problems.push(`${what} does not key on current_user`);
    else if (/current_setting|set_config/i.test(expr)) problems.push(`${what} reads a session setting (spoofable)`);
  }
  if (!p.uses_members) problems.push(`does not read the membership table`);
  return problems;
}

function roleChecks(input: VerifyInput, cat: Catalog, probed: readonly ProbedRole[]): VerifyCheck[] {
  const out: VerifyCheck[] = [];
  const owner = cat.roles.get(input.owner);
  // With FORCE the owner reads through its own policy; BYPASSRLS would be a second, unaudited path.
  out.push({
    relation: '(roles)',
    check: 'owner',
    role: input.owner,
    passed: owner?.present === true && (owner.rolsuper || !owner.rolbypassrls),
    detail: !owner?.present ? 'owner role does not exist' : owner.rolsuper ? 'superuser' : owner.rolbypassrls ? 'has BYPASSRLS' : 'no BYPASSRLS',
  });
  for (const name of [...probed.map((r) => r.role), input.vaultSteward]) {
    const r = cat.roles.get(name);
    if (!r?.present) {
      out.push({ relation: '(roles)', check: 'exists', role: name, passed: false, detail: 'role does not exist' });
      continue;
    }
    const bad = [
      ...(r.rolsuper ? ['SUPERUSER'] : []),
      ...(r.rolbypassrls ? ['BYPASSRLS'] : []),
      // PostgreSQL 15: CREATEROLE may grant itself any non-superuser role, the owner included.
      ...(r.rolcreaterole ? ['CREATEROLE'] : []),
      ...r.privileged_member.map((m) => `member of ${m}`),
    ];
    out.push({ relation: '(roles)', check: 'attributes', role: name, passed: bad.length === 0, detail: bad.length === 0 ? 'no superuser, bypassrls, createrole or privileged membership' : bad.join(', ') });
    if (name === input.vaultSteward) continue;
    const kind = probed.find((p) => p.role === name)?.kind;
    if (kind === 'practice' || kind === 'group') out.push(policyGroupCheck(input, cat, name, kind, r.policy_groups));
    out.push({ relation: `${input.vaultSchema}.*`, check: 'schema_usage', role: name, passed: r.vault_usage !== true, detail: r.vault_usage === null ? 'no vault schema' : r.vault_usage ? 'has USAGE on the vault' : 'no USAGE' });
    if (name !== input.researchReader && input.researchSchemas.length > 0) {
      const usage = r.research_usage.filter(Boolean).length;
      out.push({ relation: `${input.researchSchemas.join(',')}.*`, check: 'schema_usage', role: name, passed: usage === 0, detail: usage === 0 ? 'no USAGE' : `USAGE on ${usage} research schema(s)` });
    }
    // CVE-2018-1058: a function or operator a reader creates in a schema on the owner's search
    // path (public, on databases created before PostgreSQL 15) can be a better match for a call in
    // a model than pg_catalog's, and then runs as the owner, who reads every practice's rows.
    const creatable = r.creatable ?? [];
    out.push({
      relation: '(database)',
      check: 'schema_create',
      role: name,
      passed: creatable.length === 0,
      detail: creatable.length === 0 ? 'may CREATE in no schema' : `may CREATE in ${creatable.join(', ')}: a function planted there can be called by the owner's statements; REVOKE CREATE ON SCHEMA ${creatable[0]} FROM PUBLIC`,
    });
    const fns = cat.definers.get(name) ?? [];
    out.push({ relation: '(database)', check: 'functions', role: name, passed: fns.length === 0, detail: fns.length === 0 ? '0 SECURITY DEFINER functions executable' : `${fns.length} SECURITY DEFINER executable: ${fns.join(', ')}` });
  }
  return out;
}

/**
 * A one-practice role must be in the practices group only, with exactly one membership row (its
 * policy compares with a scalar); a group role in the groups group only. In both, or in neither,
 * the role would fail closed (an error, or no rows): a misconfiguration, not a leak.
 */
function policyGroupCheck(input: VerifyInput, cat: Catalog, role: string, kind: 'practice' | 'group', inGroups: readonly string[]): VerifyCheck {
  const want = kind === 'practice' ? input.practicesRole : input.groupsRole;
  const other = kind === 'practice' ? input.groupsRole : input.practicesRole;
  const rows = cat.memberships.get(role) ?? 0;
  const problems = [
    ...(inGroups.includes(want) ? [] : [`not a member of ${want}`]),
    ...(inGroups.includes(other) ? [`also a member of ${other}`] : []),
    ...(kind === 'practice' && rows > 1 ? [`${rows} membership rows: a role of several practices belongs in practice_roles.groups`] : []),
  ];
  return { relation: '(roles)', check: 'policy_group', role, passed: problems.length === 0, detail: problems.length === 0 ? `member of ${want}` : problems.join('; ') };
}
