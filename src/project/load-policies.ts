import { Codes } from '../errors.ts';
import { SIMPLE_NAME } from '../sql/quote.ts';
import type { PolicyConfig, PolicyTemplate, Schemas } from './types.ts';
import { isRecord, YamlReader } from './yaml-file.ts';
import { checkKeys, POLICIES_SCHEMA } from './yml-schema.ts';

export const POLICIES_FILE = 'policies/policies.yml';
export const DEFAULT_SECURITY_SCHEMA = 'tsform_security';

const TENANT_STATISTICS: readonly string[] = ['keep', 'none'];

const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * Why PostgreSQL would not take `name` as a role of tsform's, or undefined. `public` (even quoted)
 * is every role: `owner: public` put the owner's USING (true) policy on every role; `pg_*` are
 * the server's predefined roles (on PostgreSQL 15 a CREATEROLE owner may grant pg_read_all_data,
 * so `practices: pg_read_all_data` made every practice role a reader of the vault); `none` is
 * reserved. Exported for derived practice role names (render-rls.ts).
 */
export function reservedRoleName(name: string): string | undefined {
  if (name === 'public') return 'is PUBLIC, every role';
  if (name === 'none') return 'is reserved by PostgreSQL';
  if (name.startsWith('pg_')) return "is in PostgreSQL's predefined-role namespace (pg_*)";
  return undefined;
}

/**
 * Reads policies/policies.yml. Role names are identifiers (quoted when rendered); names that
 * would not survive unquoted use everywhere (quotes, semicolons, unicode) are rejected here.
 */
export function readPolicies(r: YamlReader, schemas: Schemas, research: ReadonlySet<string>, templates: Record<string, PolicyTemplate>): PolicyConfig | undefined {
  const root = r.y.value;
  if (!isRecord(root)) {
    r.fail(undefined, undefined, 'policies.yml must be a mapping');
    return undefined;
  }
  checkKeys(r, root, POLICIES_SCHEMA, 'policies.yml');
  const role = (obj: Record<string, unknown>, key: string, fallback: string): string => {
    const v = r.string(obj, key) ?? fallback;
    if (!ROLE_NAME.test(v)) {
      r.fail(obj, key, `role name ${JSON.stringify(v)} must match ${ROLE_NAME.source}`, Codes.invalidIdentifier);
      return fallback;
    }
    const reserved = reservedRoleName(v);
    if (reserved) {
      r.fail(obj, key, `role name ${JSON.stringify(v)} ${reserved}; name a role of tsform's own`, Codes.invalidIdentifier);
      return fallback;
    }
    return v;
  };
  const roles = r.record(root, 'roles') ?? {};
  const practiceRoles = r.record(root, 'practice_roles') ?? {};
  const pattern = r.string(practiceRoles, 'name') ?? 'practice_{tenant}';
  if (!pattern.includes('{tenant}') || !ROLE_NAME.test(pattern.replace('{tenant}', 'x'))) {
    r.fail(practiceRoles, 'name', `practice role pattern ${JSON.stringify(pattern)} must contain {tenant} and otherwise be a simple name`, Codes.invalidIdentifier);
  }
  const groups: PolicyConfig['groups'] = [];
  for (const g of r.list(practiceRoles, 'groups')) {
    if (!isRecord(g)) continue;
    const name = role(g, 'role', '');
    if (!name) continue;
    groups.push({ role: name, practices: r.stringList(g, 'practices'), line: r.y.lineOf(g) });
  }
  const protect = r.record(root, 'protect') ?? {};
  const grants = r.record(root, 'grants') ?? {};
  const schemaList = (obj: Record<string, unknown>, key: string, fallback: string[]): string[] => {
    const list = obj[key] === undefined ? fallback : r.stringList(obj, key).map((s) => (s in schemas ? schemas[s as keyof Schemas] : s));
    for (const s of list) if (!SIMPLE_NAME.test(s)) r.fail(obj, key, `schema ${JSON.stringify(s)} is not a simple identifier`, Codes.invalidIdentifier);
    return list;
  };
  const practiceSchemas = schemaList(grants, 'practice_roles', [schemas.marts]);
  const researchSchemas = schemaList(grants, 'research_reader', [schemas.research]);
  // Tokens and identities meet only in the vault: a practice that read its patients' tokens could
  // find them in research, and researchers read only what passed the publication gate.
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  for (const s of practiceSchemas) {
    const why = same(s, schemas.vault) ? 'the vault' : same(s, schemas.meta) ? "tsform's metadata" : [...research].some((x) => same(x, s)) ? 'it holds person tokens' : undefined;
    if (why) r.fail(grants, 'practice_roles', `practice roles may not read schema '${s}' (${why}); grant them reporting schemas such as '${schemas.marts}'`, Codes.invalidConfig);
  }
  for (const s of researchSchemas) {
    if (s !== schemas.research) {
      r.fail(grants, 'research_reader', `the research reader may read only the published research schema '${schemas.research}', not '${s}' (nothing else passes the publication gate)`, Codes.invalidConfig);
    }
  }
  const planner = r.record(root, 'planner_statistics') ?? {};
  const tenantStatistics = r.string(planner, 'tenant_column') ?? 'keep';
  if (!TENANT_STATISTICS.includes(tenantStatistics)) {
    r.fail(planner, 'tenant_column', `planner_statistics.tenant_column must be one of ${TENANT_STATISTICS.join(', ')}, got ${JSON.stringify(tenantStatistics)}`);
  }
  const securitySchema = r.string(root, 'security_schema') ?? DEFAULT_SECURITY_SCHEMA;
  if (!SIMPLE_NAME.test(securitySchema)) r.fail(root, 'security_schema', 'security_schema must be a simple identifier', Codes.invalidIdentifier);
  else if ([...Object.values(schemas), ...research].some((s) => same(s, securitySchema))) {
    r.fail(root, 'security_schema', `security_schema '${securitySchema}' is one of the project's schemas; the membership table needs a schema of its own`, Codes.invalidConfig);
  } else if (same(securitySchema, 'public') || same(securitySchema, 'information_schema') || securitySchema.toLowerCase().startsWith('pg_')) {
    // `public` is writable by every role on databases created before PostgreSQL 15: a role that
    // made `public.members` first would own the table every policy trusts (the bootstrap's
    // CREATE TABLE IF NOT EXISTS keeps it), and revoking `public` from PUBLIC breaks the rest.
    r.fail(root, 'security_schema', `security_schema '${securitySchema}' is a schema every database has; the membership table needs a schema of tsform's own`, Codes.invalidConfig);
  }
  const fixed = {
    owner: role(roles, 'owner', 'tsform_owner'),
    researchReader: role(roles, 'research_reader', 'research_reader'),
    vaultSteward: role(roles, 'vault_steward', 'vault_steward'),
    practices: role(roles, 'practices', 'tsform_practices'),
    practiceGroups: role(roles, 'practice_groups', 'tsform_practice_groups'),
  };
  // Each policy is keyed on its role: `owner: tsform_practices` gave every practice the owner's
  // policy, USING (true), on every protected table; `practices: tsform_practice_groups` put both
  // policies on one group. Five duties, five roles.
  const keys = { owner: 'owner', researchReader: 'research_reader', vaultSteward: 'vault_steward', practices: 'practices', practiceGroups: 'practice_groups' } as const;
  const seen = new Map<string, string>();
  for (const [duty, name] of Object.entries(fixed) as [keyof typeof fixed, string][]) {
    const first = seen.get(name);
    if (first) r.fail(roles, keys[duty], `roles.${keys[duty]} and roles.${first} are both '${name}': each role of roles: must be a role of its own`, Codes.roleNameConflict);
    else seen.set(name, keys[duty]);
  }
  return {
    roles: fixed,
    practiceRolePattern: pattern,
    groups,
    securitySchema,
    protectSchemas: schemaList(protect, 'schemas', [schemas.raw, schemas.staging, schemas.marts]),
    protectRelations: r.stringList(protect, 'relations').map((name) => ({ name, line: r.y.lineOfKey(protect, 'relations') })),
    practiceSchemas,
    researchSchemas,
    plannerStatistics: { tenantColumn: tenantStatistics === 'none' ? 'none' : 'keep' },
    templates,
    file: r.y.file,
    line: 1,
  };
}
