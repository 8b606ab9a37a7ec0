import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { count, DENIED, type Impersonation } from './impersonation.ts';
import { type Catalog, MEMBERS_TABLE } from './verify-catalog.ts';
import type { ProbedRole, VerifyCheck, VerifyInput } from './verify-types.ts';

/** Checks of the session rather than a relation: SET ROLE, membership map, research and vault. */
export async function sessionChecks(s: Impersonation, input: VerifyInput, cat: Catalog, role: ProbedRole, all: readonly ProbedRole[]): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  const add = (relation: string, check: string, passed: boolean, detail: string) => out.push({ relation, check, role: role.role, passed, detail });
  const memberOf = new Set(cat.roles.get(role.role)?.member_of ?? []);
  const anotherPractice = all.find((r) => r.kind === 'practice' && r.role !== role.role && !memberOf.has(r.role))?.role;
  // privileged roles are tried even when granted: being allowed is then exactly the finding
  const targets = [...new Set([anotherPractice, input.owner, input.researchReader, input.vaultSteward])].filter((t): t is string => t !== undefined && t !== role.role);
  const allowed: string[] = [];
  for (const t of targets) {
    const o = await s.run(`SET ROLE ${quoteIdent(t)}`);
    const viaConfig = o.ok ? o : await s.run("SELECT set_config('role', $1, false)", [t]);
    if (o.ok || viaConfig.ok) {
      allowed.push(t);
      await s.undo();
    } else if (o.code !== DENIED && o.code !== '22023') allowed.push(`${t} (${o.code})`);
  }
  // (SET SESSION AUTHORIZATION is not probed: the verifier's own superuser login would allow it.)
  add('(session)', 'set_role', allowed.length === 0, allowed.length === 0 ? `refused for ${targets.length} roles` : `allowed: ${allowed.join(', ')}`);

  if (role.kind !== 'research') {
    const m = await s.run(`SELECT count(*) AS total, count(*) FILTER (WHERE role_name = current_user) AS own FROM ${quoteRelation(input.securitySchema, MEMBERS_TABLE)}`);
    const want = cat.memberships.get(role.role) ?? 0;
    const ok = m.ok && count(m) === want && count(m, 'own') === want && want > 0;
    add(`${input.securitySchema}.${MEMBERS_TABLE}`, 'membership', ok, m.ok ? `sees ${count(m)} membership rows, ${want} are its own` : `refused (${m.code})`);
  }
  const targetsOf = role.kind === 'research' ? researchTargets(input, cat) : practiceDenied(input, cat);
  for (const t of targetsOf) {
    const o = await s.run(`SELECT count(*) AS total FROM ${t.sql}`);
    const passed = o.ok ? t.zeroRowsOk && count(o) === 0 : o.code === DENIED;
    add(t.label, 'no_access', passed, o.ok ? `${count(o)} rows readable` : `refused (${o.code})`);
  }
  if (targetsOf.length === 0) add(role.kind === 'research' ? '(restricted)' : `${input.researchSchemas.join(',')}.*`, 'no_access', true, 'no relations yet');
  return out;
}

interface DeniedTarget {
  label: string;
  sql: string;
  /** Row-level security may answer with 0 rows instead of a privilege error. */
  zeroRowsOk: boolean;
}

function relationSql(label: string): string {
  const dot = label.indexOf('.');
  return quoteRelation(label.slice(0, dot), label.slice(dot + 1));
}

/** research_reader: nothing in raw, staging, marts or the vault. */
function researchTargets(input: VerifyInput, cat: Catalog): DeniedTarget[] {
  const vault = (schema: string) => schema === input.vaultSchema;
  return [
    ...cat.relations.filter((r) => r.oid !== undefined).map((r) => ({ label: r.label, sql: relationSql(r.label), zeroRowsOk: !vault(r.label.split('.')[0]!) })),
    ...cat.others
      .filter((o) => input.restrictedSchemas.includes(o.schema) || vault(o.schema))
      .map((o) => ({ label: o.label, sql: relationSql(o.label), zeroRowsOk: o.rowSecurity && !vault(o.schema) })),
  ];
}

/** Practice roles: nothing in research or the vault. */
function practiceDenied(input: VerifyInput, cat: Catalog): DeniedTarget[] {
  return cat.others.filter((o) => input.researchSchemas.includes(o.schema) || o.schema === input.vaultSchema).map((o) => ({ label: o.label, sql: relationSql(o.label), zeroRowsOk: false }));
}
