import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { Codes, TsformError } from '../../errors.ts';
import { quoteIdent, quoteRelation } from '../../sql/quote.ts';
import { safeDbMessage } from '../safe-message.ts';

/**
 * `tsform policies verify`: connects as a superuser, impersonates practice roles with
 * `SET SESSION AUTHORIZATION`, and probes every protected relation the way a practice's own
 * login would (DESIGN §5). Every probe runs in a transaction that is rolled back, so no write
 * attempt persists. Reports carry counts, relation names and role names only, never a row value.
 *
 * Checks, read once from the catalog: `exists`, `owner`, `rls` (enabled and forced), `policy`
 * (tsform_practice_isolation keyed on current_user through the membership table),
 * `other_policies` (no extra permissive policy), `security_invoker` (views), `tenant_index`;
 * per role: `attributes` (no SUPERUSER, BYPASSRLS, CREATEROLE, membership in the owner,
 * research_reader or vault_steward), `functions` (no executable SECURITY DEFINER function),
 * `schema_usage` (vault, research). Probed as each role: `own_rows` or `no_access`,
 * `other_rows`, `copy_out`, `spoof_setting`, `set_role`, `write_other`, `membership`, and
 * `no_access` to research and vault relations (research_reader: to raw, staging, marts, vault).
 */

export interface VerifyInput {
  /** Superuser URL: only a superuser may `SET SESSION AUTHORIZATION` to another role. */
  url: string;
  tenantColumn: string;
  relations: { name: string; schema: string; identifier: string; kind: 'table' | 'view' }[];
  /** Practice login roles to probe (a sample, capped by the caller). */
  practiceRoles: { role: string; practices: string[] }[];
  groupRoles: { role: string; practices: string[] }[];
  owner: string;
  researchReader: string;
  vaultSteward: string;
  researchSchemas: string[];
  /** Schemas research_reader must not read (protected ones and the vault). */
  restrictedSchemas: string[];
  vaultSchema: string;
  securitySchema: string;
  /** Session settings a practice could set to pose as another practice. */
  settingsToSpoof: string[];
}

export interface VerifyCheck {
  /** `schema.identifier`, or `(roles)`, `(session)`, `(database)`, `schema.*`. */
  relation: string;
  check: string;
  /** The probed role; `(catalog)` for checks read once as the superuser. */
  role: string;
  passed: boolean;
  /** Counts and names only. */
  detail: string;
}

export interface VerifyReport {
  checks: VerifyCheck[];
  failures: number;
  relations: number;
  /** Roles probed by impersonation. */
  roles: number;
  /** How many of them are practice roles, group roles, research_reader. */
  probed?: { practice: number; group: number; research: number };
  elapsedMs?: number;
}

// Mirrors security/render-rls.ts (adapters/ may not import security/): the policy names the
// templates create and the membership table apply fills.
const ISOLATION_POLICY = 'tsform_practice_isolation';
const OWNER_POLICY = 'tsform_owner';
const MEMBERS_TABLE = 'members';
/** `SECURITY DEFINER` functions (regprocedure text) practice and research roles may execute. */
const DEFINER_ALLOW_LIST: readonly string[] = [];
const POOL_SIZE = 4;
const DENIED = '42501';
const CATALOG = '(catalog)';

interface ProbedRole {
  role: string;
  practices: string[];
  kind: 'practice' | 'group' | 'research';
}

interface PolicyRow {
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
interface Relation {
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
  vault_usage: boolean | null;
  research_usage: boolean[];
}

interface Catalog {
  relations: Relation[];
  /** Relations in the research and restricted schemas and the vault, beyond the protected ones. */
  others: OtherRelation[];
  roles: Map<string, RoleRow>;
  definers: Map<string, string[]>;
  memberships: Map<string, number>;
  /** Every practice id with rows anywhere, most rows first: victims for spoofing. */
  practicesByRows: string[];
}

export async function verifyPolicies(given: VerifyInput): Promise<VerifyReport> {
  const started = Date.now();
  const input = { ...given, settingsToSpoof: [...new Set(given.settingsToSpoof)] };
  const pool = new pg.Pool({ connectionString: input.url, max: POOL_SIZE, application_name: 'tsform policies verify' });
  pool.on('error', () => undefined);
  try {
    await requireSuperuser(pool);
    const probed = probedRoles(input);
    const catalog = await readCatalog(pool, input, probed);
    const checks = [...structureChecks(input, catalog), ...roleChecks(input, catalog, probed)];
    const present = probed.filter((r) => catalog.roles.get(r.role)?.present);
    const perRole = await mapLimit(present, POOL_SIZE, (role) => probeRole(pool, input, catalog, role, probed));
    checks.push(...perRole.flat());
    const kinds = (k: ProbedRole['kind']) => present.filter((r) => r.kind === k).length;
    return {
      checks,
      failures: checks.filter((c) => !c.passed).length,
      relations: input.relations.length,
      roles: present.length,
      probed: { practice: kinds('practice'), group: kinds('group'), research: kinds('research') },
      elapsedMs: Date.now() - started,
    };
  } finally {
    await pool.end();
  }
}

async function requireSuperuser(pool: pg.Pool): Promise<void> {
  let rows: { rolsuper: boolean }[];
  try {
    ({ rows } = await pool.query('SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user'));
  } catch (err) {
    throw new TsformError(Codes.connection, `policies verify cannot connect to PostgreSQL: ${safeDbMessage(err)}`);
  }
  if (rows[0]?.rolsuper !== true) {
    throw new TsformError(Codes.connection, 'policies verify needs a superuser connection ($TSFORM_PG_ADMIN_URL): only a superuser can impersonate practice roles');
  }
}

function probedRoles(input: VerifyInput): ProbedRole[] {
  const seen = new Set<string>();
  const out: ProbedRole[] = [];
  const add = (r: { role: string; practices: string[] }, kind: ProbedRole['kind']) => {
    if (seen.has(r.role)) return;
    seen.add(r.role);
    out.push({ role: r.role, practices: [...r.practices], kind });
  };
  for (const r of input.practiceRoles) add(r, 'practice');
  for (const r of input.groupRoles) add(r, 'group');
  add({ role: input.researchReader, practices: [] }, 'research');
  return out;
}

// ---- the catalog, read once as the superuser ----------------------------------------------

async function readCatalog(pool: pg.Pool, input: VerifyInput, probed: readonly ProbedRole[]): Promise<Catalog> {
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
    POOL_SIZE,
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
            (SELECT pg_catalog.has_schema_privilege(a.oid, n.oid, 'USAGE') FROM pg_catalog.pg_namespace n WHERE n.nspname = $3 AND a.oid IS NOT NULL) AS vault_usage,
            ARRAY(SELECT pg_catalog.has_schema_privilege(a.oid, n.oid, 'USAGE') FROM pg_catalog.pg_namespace n
                   WHERE n.nspname = ANY($4::text[]) AND a.oid IS NOT NULL) AS research_usage
       FROM unnest($1::text[]) AS r(name) LEFT JOIN pg_catalog.pg_roles a ON a.rolname = r.name`,
    [roleNames, privileged, input.vaultSchema, input.researchSchemas],
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

// ---- checks read from the catalog ---------------------------------------------------------

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
    const iso = r.policies.find((p) => p.name === ISOLATION_POLICY);
    const problems = iso ? isolationProblems(iso) : [`no policy ${ISOLATION_POLICY}`];
    add(r.label, 'policy', problems.length === 0, problems.length === 0 ? `${ISOLATION_POLICY}: current_user via ${input.securitySchema}.${MEMBERS_TABLE}` : problems.join('; '));
    // Permissive policies are OR-ed: any other one widens what a practice sees.
    const extra = r.policies.filter((p) => p.permissive && p.name !== ISOLATION_POLICY && !(p.name === OWNER_POLICY && p.roles.length === 1 && p.roles[0] === input.owner));
    add(r.label, 'other_policies', extra.length === 0, extra.length === 0 ? `${r.policies.length} policies` : `unexpected permissive: ${extra.map((p) => `${p.name} (to ${p.roles.join(', ')})`).join(', ')}`);
    add(r.label, 'tenant_index', r.tenantIndex, r.tenantIndex ? `an index leads with ${input.tenantColumn}` : `no index leads with ${input.tenantColumn}`);
  }
  return out;
}

function isolationProblems(p: PolicyRow): string[] {
  const problems: string[] = [];
  if (!p.permissive) problems.push('restrictive');
  if (p.cmd !== '*') problems.push(`FOR ${p.cmd}, not ALL`);
  if (p.roles.length !== 1 || p.roles[0] !== 'public') problems.push(`TO ${p.roles.join(', ')}, not PUBLIC`);
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
    out.push({ relation: `${input.vaultSchema}.*`, check: 'schema_usage', role: name, passed: r.vault_usage !== true, detail: r.vault_usage === null ? 'no vault schema' : r.vault_usage ? 'has USAGE on the vault' : 'no USAGE' });
    if (name !== input.researchReader && input.researchSchemas.length > 0) {
      const usage = r.research_usage.filter(Boolean).length;
      out.push({ relation: `${input.researchSchemas.join(',')}.*`, check: 'schema_usage', role: name, passed: usage === 0, detail: usage === 0 ? 'no USAGE' : `USAGE on ${usage} research schema(s)` });
    }
    const fns = cat.definers.get(name) ?? [];
    out.push({ relation: '(database)', check: 'functions', role: name, passed: fns.length === 0, detail: fns.length === 0 ? '0 SECURITY DEFINER functions executable' : `${fns.length} SECURITY DEFINER executable: ${fns.join(', ')}` });
  }
  return out;
}

// ---- probes as each role ------------------------------------------------------------------

type Outcome = { ok: true; rows: Record<string, unknown>[]; rowCount: number } | { ok: false; code: string; message: string };

/**
 * One impersonated session inside one transaction. A savepoint taken right after
 * `SET SESSION AUTHORIZATION` is where every failed or state-changing probe returns to.
 */
class Impersonation {
  constructor(private readonly client: pg.PoolClient) {}

  async run(text: string, values: unknown[] = []): Promise<Outcome> {
    try {
      const r = await this.client.query(text, values);
      return { ok: true, rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount ?? 0 };
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) throw err;
      await this.undo();
      return { ok: false, code: err.code ?? '', message: safeDbMessage(err, 1) };
    }
  }

  /** Lines of a COPY TO STDOUT (text format: one line per row); the content is dropped. */
  async copyLines(text: string): Promise<Outcome & { lines?: number }> {
    let lines = 0;
    try {
      const stream = this.client.query(copyTo(text));
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      }
      return { ok: true, rows: [], rowCount: lines, lines };
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) throw err;
      await this.undo();
      return { ok: false, code: err.code ?? '', message: safeDbMessage(err, 1) };
    }
  }

  async undo(): Promise<void> {
    await this.client.query('ROLLBACK TO SAVEPOINT tsform_probe');
  }
}

async function probeRole(pool: pg.Pool, input: VerifyInput, cat: Catalog, role: ProbedRole, all: readonly ProbedRole[]): Promise<VerifyCheck[]> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    // pg_catalog first and nothing a role could plant functions in; a stuck lock fails the probe
    await client.query("SELECT set_config('search_path', 'pg_catalog, pg_temp', true), set_config('lock_timeout', '10s', true), set_config('statement_timeout', '120s', true)");
    await client.query(`SET SESSION AUTHORIZATION ${quoteIdent(role.role)}`);
    await client.query('SAVEPOINT tsform_probe');
    const s = new Impersonation(client);
    return role.kind === 'research' ? await sessionChecks(s, input, cat, role, all) : await probePracticeRole(s, input, cat, role, all);
  } catch (err) {
    broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    await client.query('ROLLBACK').catch((e: Error) => (broken ??= e));
    await client.query('RESET SESSION AUTHORIZATION').catch((e: Error) => (broken ??= e));
    client.off('error', onError);
    client.release(broken);
  }
}

const count = (o: Outcome, key = 'total'): number => (o.ok ? Number(o.rows[0]?.[key] ?? 0) : 0);

async function privileges(s: Impersonation, oids: number[]): Promise<Map<number, { read: boolean; insert: boolean; update: boolean; del: boolean }>> {
  const o = await s.run(
    `SELECT o::int8 AS oid, has_schema_privilege(c.relnamespace, 'USAGE') AS usage, has_table_privilege(o, 'SELECT') AS sel,
            has_table_privilege(o, 'INSERT') AS ins, has_table_privilege(o, 'UPDATE') AS upd, has_table_privilege(o, 'DELETE') AS del
       FROM unnest($1::oid[]) AS o JOIN pg_class c ON c.oid = o`,
    [oids.map(String)],
  );
  if (!o.ok) throw new Error(`reading privileges failed: ${o.code} ${o.message}`);
  return new Map(o.rows.map((r) => [Number(r.oid), { read: r.usage === true && r.sel === true, insert: r.ins === true, update: r.upd === true, del: r.del === true }]));
}

async function probePracticeRole(s: Impersonation, input: VerifyInput, cat: Catalog, role: ProbedRole, all: readonly ProbedRole[]): Promise<VerifyCheck[]> {
  const out: VerifyCheck[] = [];
  const add = (relation: string, check: string, passed: boolean, detail: string) => out.push({ relation, check, role: role.role, passed, detail });
  const own = role.practices;
  const rels = cat.relations.filter((r) => r.oid !== undefined && r.hasTenantColumn);
  const privs = await privileges(s, rels.map((r) => r.oid!));
  const expected = (r: Relation) => own.reduce((n, p) => n + (r.rowsByPractice.get(p) ?? 0), 0);
  const victim = (r: Relation) =>
    [...r.rowsByPractice.entries()].filter(([p]) => !own.includes(p)).sort((a, b) => b[1] - a[1])[0]?.[0] ?? cat.practicesByRows.find((p) => !own.includes(p)) ?? 'p_nobody';
  const readable: Relation[] = [];

  for (const r of rels) {
    const priv = privs.get(r.oid!)!;
    const want = expected(r);
    const got = await s.run(r.sql.counts, [own]);
    if (!priv.read) {
      const denied = !got.ok && got.code === DENIED;
      add(r.label, 'no_access', denied, denied ? 'SELECT refused (42501)' : got.ok ? `read ${count(got)} rows without a SELECT grant` : `refused with ${got.code}, not 42501`);
    } else if (!got.ok) {
      add(r.label, 'own_rows', false, `SELECT is granted but fails: ${got.code} ${got.message}`);
    } else {
      readable.push(r);
      const total = count(got);
      const mine = count(got, 'own');
      add(r.label, 'own_rows', mine === want && total === want, `saw ${mine} own rows of ${want}`);
      add(r.label, 'other_rows', total - mine === 0, `${total - mine} rows of other practices`);
      const q = await s.copyLines(r.sql.copyQuery);
      const t = r.kind === 'table' ? await s.copyLines(r.sql.copyTable) : undefined;
      const copyOk = q.ok && q.lines === want && (t === undefined || (t.ok && t.lines === want));
      add(r.label, 'copy_out', copyOk, `COPY (SELECT …) ${q.ok ? `${q.lines} lines` : q.code}${t ? `, COPY table ${t.ok ? `${t.lines} lines` : t.code}` : ''}, expected ${want}`);
    }
    out.push(await writeOther(s, r, role.role, own, victim(r), priv));
  }

  // Spoofing: session settings set to another practice's id, and row_security off.
  for (const r of readable) {
    const want = expected(r);
    const v = victim(r);
    const spoofed = await spoofCounts(s, input.settingsToSpoof, v, r, own);
    const same = (o: Outcome) => o.ok && count(o) === want && count(o, 'own') === want;
    let detail = `${input.settingsToSpoof.length} settings set to another practice: ${spoofed.ok ? `${count(spoofed, 'own')} own, ${count(spoofed) - count(spoofed, 'own')} other rows` : spoofed.code}`;
    let passed = same(spoofed);
    if (!passed) {
      const culprits: string[] = [];
      for (const name of input.settingsToSpoof) if (!same(await spoofCounts(s, [name], v, r, own))) culprits.push(name);
      detail += `; leaks through ${culprits.join(', ') || 'their combination'}`;
    }
    const off = await s.run("SELECT set_config('row_security', 'off', false)");
    const offCounts = off.ok ? await s.run(r.sql.counts, [own]) : off;
    const offOk = !offCounts.ok ? offCounts.code === DENIED : same(offCounts);
    if (offCounts.ok) await s.undo();
    passed &&= offOk;
    add(r.label, 'spoof_setting', passed, `${detail}; row_security=off ${offCounts.ok ? `${count(offCounts)} rows` : `refused (${offCounts.code})`}`);
  }

  // SET ROLE to the groups this role belongs to, then RESET ROLE.
  const groups = cat.roles.get(role.role)?.member_of ?? [];
  const setRole = new Map<string, string[]>();
  const setRoleFail = new Set<string>();
  for (const g of groups) {
    const set = await s.run(`SET ROLE ${quoteIdent(g)}`);
    for (const r of rels) {
      if (!set.ok) {
        setRole.set(r.label, [...(setRole.get(r.label) ?? []), `SET ROLE ${g} refused`]);
        continue;
      }
      const o = await s.run(r.sql.counts, [own]);
      const other = o.ok ? count(o) - count(o, 'own') : 0;
      if (other !== 0) setRoleFail.add(r.label);
      setRole.set(r.label, [...(setRole.get(r.label) ?? []), `as ${g}: ${o.ok ? `${count(o)} rows, ${other} of other practices` : `refused (${o.code})`}`]);
      if (!o.ok) await s.run(`SET ROLE ${quoteIdent(g)}`);
    }
    if (set.ok) {
      await s.run('RESET ROLE');
      for (const r of readable) {
        const o = await s.run(r.sql.counts, [own]);
        if (!(o.ok && count(o) === expected(r) && count(o, 'own') === expected(r))) setRoleFail.add(r.label);
      }
      await s.undo();
    }
  }
  for (const r of rels) add(r.label, 'set_role', !setRoleFail.has(r.label), groups.length === 0 ? 'member of no group' : (setRole.get(r.label) ?? []).join('; '));

  out.push(...(await sessionChecks(s, input, cat, role, all)));
  return out;
}

async function spoofCounts(s: Impersonation, names: readonly string[], victim: string, r: Relation, own: string[]): Promise<Outcome> {
  const set = await s.run(`SELECT ${names.map((_, i) => `set_config($${i + 2}, $1, false)`).join(', ')}`, [victim, ...names]);
  if (!set.ok) return set;
  const o = await s.run(r.sql.counts, [own]);
  if (o.ok) await s.undo();
  return o;
}

/**
 * INSERT a row of another practice, move own rows to it, touch other practices' rows. Passes
 * when nothing is written; an error other than 42501 passes only without the privilege, since
 * with it the row-level check may not have been reached (a NOT NULL column, say).
 */
async function writeOther(s: Impersonation, r: Relation, role: string, own: string[], victim: string, priv: { insert: boolean; update: boolean; del: boolean }): Promise<VerifyCheck> {
  const notes: string[] = [];
  const verdicts: boolean[] = [];
  let wrote = false;
  // every probe runs, also after a failed one, so the detail names each outcome
  const judge = (what: string, o: Outcome, allowed: boolean): void => {
    if (o.ok) {
      wrote ||= o.rowCount > 0;
      notes.push(`${what}: ${o.rowCount} rows`);
      verdicts.push(o.rowCount === 0);
    } else {
      notes.push(`${what}: ${o.code}`);
      verdicts.push(o.code === DENIED || !allowed);
    }
  };
  const ins = await s.run(r.sql.insertValues, [victim]);
  if (!ins.ok && ins.code !== DENIED && priv.insert) {
    // The one-column row failed on another constraint: copy an own row with the id replaced.
    notes.push(`insert one column: ${ins.code}`);
    judge('insert copied row', await s.run(r.sql.insertFromOwn, [victim]), true);
  } else {
    judge('insert', ins, priv.insert);
  }
  judge('update to other', await s.run(r.sql.updateMove, [victim]), priv.update);
  judge('update others', await s.run(r.sql.updateOthers, [own]), priv.update);
  judge('delete others', await s.run(r.sql.deleteOthers, [own]), priv.del);
  const passed = verdicts.every(Boolean);
  if (wrote) await s.undo();
  return { relation: r.label, check: 'write_other', role, passed, detail: notes.join(', ') };
}

/** Checks of the session rather than a relation: SET ROLE, membership map, research and vault. */
async function sessionChecks(s: Impersonation, input: VerifyInput, cat: Catalog, role: ProbedRole, all: readonly ProbedRole[]): Promise<VerifyCheck[]> {
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

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---- the report -----------------------------------------------------------------------------

const CHECK_ORDER = [
  'exists', 'owner', 'attributes', 'functions', 'schema_usage', 'membership', 'tenant_column', 'rls', 'policy', 'other_policies', 'security_invoker',
  'tenant_index', 'own_rows', 'no_access', 'other_rows', 'copy_out', 'spoof_setting', 'set_role', 'write_other',
];
/** Failed roles shown per relation × check; the table counts all of them. */
const FAILURES_SHOWN = 3;

/** relation × check with passed/failed counts over roles, then the failures, then a summary. */
export function formatVerifyReport(r: VerifyReport): string {
  const rows = new Map<string, { relation: string; check: string; passed: number; failed: VerifyCheck[] }>();
  for (const c of r.checks) {
    const key = `${c.relation}\u0000${c.check}`;
    const row = rows.get(key) ?? { relation: c.relation, check: c.check, passed: 0, failed: [] };
    if (c.passed) row.passed++;
    else row.failed.push(c);
    rows.set(key, row);
  }
  const rank = (check: string) => {
    const i = CHECK_ORDER.indexOf(check);
    return i === -1 ? CHECK_ORDER.length : i;
  };
  const sorted = [...rows.values()].sort((a, b) => {
    const special = Number(!a.relation.startsWith('(')) - Number(!b.relation.startsWith('('));
    return special || a.relation.localeCompare(b.relation) || rank(a.check) - rank(b.check) || a.check.localeCompare(b.check);
  });
  const header = ['relation', 'check', 'passed', 'failed'];
  const table = sorted.map((x) => [x.relation, x.check, String(x.passed), String(x.failed.length)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...table.map((t, i) => `${line(t)}${sorted[i]!.failed.length > 0 ? '  FAILED' : ''}`)];
  const failed = sorted.filter((x) => x.failed.length > 0);
  if (failed.length > 0) {
    out.push('', `failures (${r.failures}):`);
    for (const x of failed) {
      for (const f of x.failed.slice(0, FAILURES_SHOWN)) out.push(`  ${f.relation} ${f.check} as ${f.role}: ${f.detail}`);
      if (x.failed.length > FAILURES_SHOWN) out.push(`  ${x.relation} ${x.check}: … and ${x.failed.length - FAILURES_SHOWN} more roles`);
    }
  }
  const seconds = r.elapsedMs === undefined ? '' : ` in ${(r.elapsedMs / 1000).toFixed(1)}s`;
  const kinds = r.probed ? ` (${r.probed.practice} practice, ${r.probed.group} group, ${r.probed.research} research)` : '';
  out.push('', `policies verify: ${r.relations} protected relations, ${r.roles} roles probed${kinds}, ${r.checks.length} checks, ${r.failures} failed${seconds}`);
  return out.join('\n');
}
