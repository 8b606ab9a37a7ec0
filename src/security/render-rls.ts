import { createHash } from 'node:crypto';
import Handlebars from 'handlebars';
import { Codes, diagnostic, TsformError, type Diagnostic } from '../errors.ts';
import { reservedRoleName } from '../project/load-policies.ts';
import type { PolicyConfig, Schemas, Tenant } from '../project/types.ts';
import { quoteIdent, quoteRelation } from '../sql/quote.ts';
import type { ProtectedRelation } from './protected-relations.ts';
import { overrideWeakening, templateLine, type Weakening } from './template-guard.ts';
import { DEFAULT_TEMPLATES, type TemplateName } from './templates.ts';

export const MEMBERS_TABLE = 'members';

export interface RoleSpec {
  role: string;
  login: boolean;
  /** Roles this one is granted (membership), e.g. the practices group. */
  memberOf: string[];
}

export interface MembershipRow {
  role: string;
  practice: string;
}

/**
 * Renders the DDL of DESIGN §5 from templates: pure text, no database. A project's override of a
 * template is rendered beside the built-in and used only if it takes nothing away from it
 * (template-guard.ts); otherwise every call throws TSF232, so nothing is protected by it.
 */
export function createPolicyRenderer(policies: PolicyConfig, tenantColumn: string, schemas: Schemas) {
  const hb = Handlebars.create();
  hb.registerHelper('ident', (name: unknown) => quoteIdent(String(name)));
  hb.registerHelper('rel', (schema: unknown, name: unknown) => quoteRelation(String(schema), String(name)));
  // `{{ident (suffixed name "_brin")}}`: a name of an override's own index, one per table, that fits.
  hb.registerHelper('suffixed', (name: unknown, suffix: unknown) => fitName(`${String(name)}${String(suffix)}`));
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  const compile = (text: string) => {
    let t = compiled.get(text);
    if (!t) compiled.set(text, (t = hb.compile(text, { noEscape: true, strict: true })));
    return t;
  };
  const verdicts = new Map<string, Weakening | undefined>();
  const render = (name: TemplateName, ctx: object, relation?: { schema: string; name: string }): string => {
    const builtin = compile(DEFAULT_TEMPLATES[name]!)(ctx);
    const override = policies.templates[name];
    if (!override) return builtin;
    const at = { file: override.file, line: 1 };
    let text: string;
    try {
      text = compile(override.text)(ctx);
    } catch (e) {
      throw new TsformError(Codes.policyTemplate, `${override.file} does not render: ${(e as Error).message}`, at);
    }
    const key = `${builtin}\u0000${text}`;
    if (!verdicts.has(key)) verdicts.set(key, overrideWeakening(name, builtin, text, relation));
    const weakening = verdicts.get(key);
    if (weakening) {
      const where = relation ? ` (as rendered for ${relation.schema}.${relation.name})` : '';
      const line = weakening.statement === undefined ? 1 : (templateLine(override.text, (t) => compile(t)(ctx), weakening.statement) ?? 1);
      throw new TsformError(Codes.policyTemplate, `${override.file}${where} ${weakening.reason}`, { file: override.file, line });
    }
    return text;
  };
  const base = {
    tenantColumn,
    securitySchema: policies.securitySchema,
    membersTable: MEMBERS_TABLE,
    owner: policies.roles.owner,
    practices: policies.roles.practices,
    practiceGroups: policies.roles.practiceGroups,
    researchReader: policies.roles.researchReader,
    vaultSteward: policies.roles.vaultSteward,
    vaultSchema: schemas.vault,
    practiceSchemas: policies.practiceSchemas,
    researchSchemas: policies.researchSchemas,
  };
  return {
    bootstrap: (): string => render('security_bootstrap', base),
    schemaGrants: (): string => render('schema_grants', base),
    vaultReidentify: (): string => render('vault_reidentify', base),
    protect(rel: ProtectedRelation): string {
      const ctx = {
        ...base,
        schema: rel.schema,
        name: rel.identifier,
        indexName: indexName(rel.identifier, tenantColumn),
        readable: policies.practiceSchemas.includes(rel.schema),
      };
      const relation = { schema: rel.schema, name: rel.identifier };
      if (rel.kind === 'view') return render('protect_view', ctx, relation);
      return render('protect_table', ctx, relation) + (hidesTenantStatistics(policies) ? tenantStatisticsTarget(rel, tenantColumn) : '');
    },
    /**
     * Removes the statistics ANALYZE already keeps for the tenant column (`planner_statistics:
     * { tenant_column: none }`). PostgreSQL 15 lets the owner do that one way only: ALTER COLUMN
     * TYPE, even to the column's own type (no rewrite, the indexes keep their storage), drops the
     * column's pg_statistic rows; ANALYZE with a target of 0 skips the column and leaves the old
     * rows in place, and pg_statistic is writable by superusers only. ALTER TYPE is refused on a
     * column a policy uses, so `policies` (those `protect` creates again right after, in the same
     * transaction) are dropped first. `columnType` is `format_type()` of the column, SQL text
     * written by PostgreSQL itself (it quotes what needs quoting); the collation is kept.
     */
    tenantStatisticsReset(rel: ProtectedRelation, column: { columnType: string; collation?: { schema: string; name: string } }, policyNames: readonly string[]): string {
      const table = quoteRelation(rel.schema, rel.identifier);
      const collate = column.collation ? ` COLLATE ${quoteRelation(column.collation.schema, column.collation.name)}` : '';
      return [
        ...policyNames.map((p) => `DROP POLICY IF EXISTS ${quoteIdent(p)} ON ${table};`),
        `ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(tenantColumn)} TYPE ${column.columnType}${collate};`,
        '',
      ].join('\n');
    },
  };
}

/** Names of the policies a rendered script creates (`protect(rel)`, whatever the project's templates call them). */
export function createdPolicyNames(ddl: string): string[] {
  const names: string[] = [];
  for (const m of ddl.matchAll(/\bCREATE\s+POLICY\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+ON\b/gi)) {
    const n = m[1]!;
    names.push(n.startsWith('"') ? n.slice(1, -1).replaceAll('""', '"') : n.toLowerCase());
  }
  return names;
}

/** `planner_statistics: { tenant_column: none }` in policies.yml. */
export function hidesTenantStatistics(policies: PolicyConfig): boolean {
  return policies.plannerStatistics?.tenantColumn === 'none';
}

/**
 * With a target of 0, ANALYZE (and autovacuum's) keeps no most-common-values list, histogram or
 * distinct count for the tenant column: every practice id gets the planner's default estimate,
 * so EXPLAIN as one practice no longer shows the size of another. Statistics ANALYZE kept before
 * stay until removed (`tenantStatisticsReset`, run by `policies apply`).
 */
function tenantStatisticsTarget(rel: ProtectedRelation, tenantColumn: string): string {
  return `ALTER TABLE ${quoteRelation(rel.schema, rel.identifier)} ALTER COLUMN ${quoteIdent(tenantColumn)} SET STATISTICS 0;\n`;
}

export type PolicyRenderer = ReturnType<typeof createPolicyRenderer>;

/** PostgreSQL keeps 63 bytes of a name (NAMEDATALEN - 1) and silently cuts the rest. */
export const PG_NAME_BYTES = 63;
const ROLE_HASH_HEX = 16;

/**
 * The one place a practice role's name is derived (apply, render, verify, purge, benches):
 * `practice_roles.name` with `{tenant}` replaced by the practice id, passed through `fitRoleName`.
 */
export function practiceRole(policies: PolicyConfig, tenantId: string): string {
  return fitRoleName(policies.practiceRolePattern.replace('{tenant}', tenantId));
}

/**
 * A derived role name that fits PostgreSQL's 63 bytes. A name that fits is kept as it is (so
 * existing roles keep their names); a longer one keeps its first 46 bytes, readable, and ends
 * with `_` and 16 hex digits of the SHA-256 of the whole name: stable across runs, and two long
 * names sharing their first 46 (or 63) bytes still differ. PostgreSQL would cut the name to 63
 * bytes by itself, so that the role looked up under the full name was never found (42710 on
 * the next run) and two ids sharing 54 characters became one role. A name that fits and happens
 * to end like a hashed one is caught by `policyRoleDiagnostics` (TSF116), never merged.
 */
export function fitRoleName(name: string): string {
  if (Buffer.byteLength(name, 'utf8') <= PG_NAME_BYTES) return name;
  const keep = PG_NAME_BYTES - 1 - ROLE_HASH_HEX;
  let prefix = name.slice(0, keep);
  // role names are ASCII (load-policies.ts, tenant ids), but never cut a character in two
  while (Buffer.byteLength(prefix, 'utf8') > keep) prefix = prefix.slice(0, -1);
  return `${prefix}_${createHash('sha256').update(name, 'utf8').digest('hex').slice(0, ROLE_HASH_HEX)}`;
}

/**
 * Roles tsform manages: the fixed ones, one login role per practice (in `practices`), and the
 * group roles (in `practiceGroups`, never in `practices`: the one-practice policy would fail
 * for them with "more than one row returned by a subquery").
 */
export function roleSpecs(policies: PolicyConfig, tenants: readonly Tenant[]): RoleSpec[] {
  const r = policies.roles;
  return [
    { role: r.practices, login: false, memberOf: [] },
    { role: r.practiceGroups, login: false, memberOf: [] },
    { role: r.researchReader, login: true, memberOf: [] },
    { role: r.vaultSteward, login: true, memberOf: [] },
    ...tenants.map((t) => ({ role: practiceRole(policies, t.id), login: true, memberOf: [r.practices] })),
    ...policies.groups.map((g) => ({ role: g.role, login: true, memberOf: [r.practiceGroups] })),
  ];
}

/** The group roles tsform places its roles in; a role in one of them must be in no other. */
export function policyGroupRoles(policies: PolicyConfig): string[] {
  return [policies.roles.practices, policies.roles.practiceGroups];
}

/**
 * Role mistakes of policies.yml that only show with tenants.yml: a group role that is also a
 * practice or fixed role would sit in both policy groups; a group naming a practice that is not
 * in tenants.yml (removed, or a typo) is a warning, and that practice is left out of it.
 */
export function policyRoleDiagnostics(policies: PolicyConfig, tenants: readonly Tenant[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const known = new Set(tenants.map((t) => t.id));
  const practiceRoles = new Set<string>();
  const fixed = new Set(Object.values(policies.roles));
  // Two practices must never share a role (each would see the other's rows), nor a practice a
  // fixed role: fitRoleName makes that unlikely, this makes it impossible.
  const byRole = new Map<string, string>();
  for (const t of tenants) {
    const role = practiceRole(policies, t.id);
    practiceRoles.add(role);
    const reserved = reservedRoleName(role);
    if (reserved) out.push(diagnostic(Codes.roleNameConflict, `practice '${t.id}' maps to role '${role}', which ${reserved}; change practice_roles.name`, { file: policies.file, line: policies.line }));
    const first = byRole.get(role);
    if (first !== undefined) {
      out.push(diagnostic(Codes.roleNameConflict, `practices '${first}' and '${t.id}' map to one role '${role}'; change practice_roles.name`, { file: policies.file, line: policies.line }));
    } else {
      byRole.set(role, t.id);
      if (fixed.has(role)) out.push(diagnostic(Codes.roleNameConflict, `practice '${t.id}' maps to role '${role}', which is also one of roles:; change practice_roles.name`, { file: policies.file, line: policies.line }));
    }
  }
  const seen = new Set<string>();
  for (const g of policies.groups) {
    const at = { file: policies.file, line: g.line };
    if (fixed.has(g.role) || practiceRoles.has(g.role)) {
      out.push(diagnostic(Codes.roleNameConflict, `group role '${g.role}' is also ${fixed.has(g.role) ? 'one of roles:' : 'a practice role'}; give the group a name of its own`, at));
    }
    if (seen.has(g.role)) out.push(diagnostic(Codes.roleNameConflict, `group role '${g.role}' is declared twice`, at));
    seen.add(g.role);
    const unknown = g.practices.filter((p) => !known.has(p));
    if (unknown.length > 0) {
      out.push(diagnostic(Codes.unknownTenant, `group role '${g.role}' names ${unknown.length} practice(s) not in tenants.yml (left out of the group): ${unknown.join(', ')}`, at, 'warning'));
    }
    if (g.practices.length - unknown.length === 0) out.push(diagnostic(Codes.unknownTenant, `group role '${g.role}' has no practice of tenants.yml: it will see no rows`, at, 'warning'));
  }
  return out;
}

/** Rows of the membership table: which practices each role may see. */
export function membershipRows(policies: PolicyConfig, tenants: readonly Tenant[]): MembershipRow[] {
  const known = new Set(tenants.map((t) => t.id));
  return [
    ...tenants.map((t) => ({ role: practiceRole(policies, t.id), practice: t.id })),
    ...policies.groups.flatMap((g) => g.practices.filter((p) => known.has(p)).map((practice) => ({ role: g.role, practice }))),
  ];
}

/** Display form of role creation; apply creates only the missing ones. */
export function renderRoles(specs: readonly RoleSpec[]): string {
  return specs
    .map((s) => `CREATE ROLE ${quoteIdent(s.role)} ${s.login ? 'LOGIN' : 'NOLOGIN'} NOSUPERUSER NOBYPASSRLS;${s.memberOf.map((m) => `\nGRANT ${quoteIdent(m)} TO ${quoteIdent(s.role)};`).join('')}`)
    .join('\n');
}

function indexName(table: string, tenantColumn: string): string {
  return fitName(`${table}__${tenantColumn}_idx`);
}

/** A relation or index name that fits PostgreSQL's 63 characters: cut, with a hash of the whole so it stays unique. */
function fitName(name: string): string {
  return name.length <= 63 ? name : `${name.slice(0, 50)}_${createHash('sha256').update(name).digest('hex').slice(0, 12)}`;
}

/**
 * Compile's check of policies/*.hbs: each override rendered for every protected relation (the
 * only contexts `protect` is called with) and for the project-wide templates, so that a weakening
 * override fails the pull request at its file, not the first run that protects a relation.
 * A file that is not a template's name would be silently ignored: a typo of an intended fix.
 */
export function policyTemplateDiagnostics(policies: PolicyConfig, tenantColumn: string, schemas: Schemas, relations: readonly ProtectedRelation[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const names = Object.keys(DEFAULT_TEMPLATES);
  for (const [name, t] of Object.entries(policies.templates)) {
    if (!names.includes(name)) out.push(diagnostic(Codes.policyTemplate, `${t.file} overrides no template: the templates are ${names.join(', ')}`, { file: t.file, line: 1 }));
  }
  if (!Object.keys(policies.templates).some((n) => names.includes(n))) return out;
  const renderer = createPolicyRenderer(policies, tenantColumn, schemas);
  const seen = new Set<string>();
  const attempt = (render: () => string) => {
    try {
      render();
    } catch (e) {
      if (!(e instanceof TsformError) || e.code !== Codes.policyTemplate) throw e;
      // one finding per file: the same weakening repeats for every relation
      if (seen.has(e.where.file ?? '')) return;
      seen.add(e.where.file ?? '');
      out.push(diagnostic(e.code, e.message, e.where));
    }
  };
  attempt(renderer.bootstrap);
  attempt(renderer.schemaGrants);
  attempt(renderer.vaultReidentify);
  for (const rel of relations) attempt(() => renderer.protect(rel));
  return out;
}
