import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatVerifyReport, verifyPolicies } from '../../src/adapters/postgres/policy-verifier.ts';
import { compileWorkspace } from '../../src/cli/api.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { REPO_ROOT } from '../support/demo-project.ts';
import { asSuperuser, cli, failedPairs, OWNER, parseVerifyTable, startRlsWarehouse, verifyInputFor, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * DESIGN §5 on a real server: the demo project built by a non-superuser owner, `policies apply`,
 * then `policies verify` impersonating every sampled practice role. Each negative case breaks
 * one thing as the superuser, shows that verify names it, and restores the warehouse.
 */

const PRACTICES = 57;

// The roster view (marts) reads staging with security_invoker, so practices need SELECT on
// staging (row-level security still applies there); the repo's policies.yml grants both. This
// keeps the fixture right even for a policies.yml that grants marts only.
const grantStaging = (yml: string) => yml.replace('practice_roles: [marts]', 'practice_roles: [staging, marts]');

let wh: RlsWarehouse;
beforeAll(async () => {
  wh = await startRlsWarehouse({ tenants: PRACTICES, policies: grantStaging });
}, 600_000);
afterAll(async () => {
  await wh?.stop();
});

/**
 * Each negative case breaks a relation, or one of the first practice roles (in tenants.yml
 * order, which `--max-roles` keeps): probing a sample of roles finds it at a fraction of the
 * cost. The first case and the escalation case (roles picked by sorted id) probe every role.
 */
const SAMPLE = 8;
const EVERY = { maxRoles: PRACTICES };
const verify = ({ maxRoles = SAMPLE } = {}) =>
  cli(['policies', 'verify', '--project-dir', wh.demo.dir, '--target', 'postgres', '--max-roles', String(maxRoles)], { TSFORM_PG_ADMIN_URL: wh.superUrl, TSFORM_PG_URL: undefined });
const apply = () => cli(['policies', 'apply', '--project-dir', wh.demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: wh.ownerUrl });
const sql = (text: string, values: unknown[] = []) => asSuperuser(wh.superUrl, (c) => c.query(text, values));

async function expectVerifyPasses(options: { maxRoles?: number } = {}): Promise<string> {
  const run = await verify(options);
  expect(failedPairs(run.stdout), run.stdout).toEqual([]);
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

/** Policies by relation with their oids: apply drops and recreates them, so oids show a rewrite. */
const policySnapshot = async () =>
  (await sql(`SELECT polrelid::regclass::text AS rel, polname, oid::int8 AS oid, pg_get_expr(polqual, polrelid) AS qual FROM pg_policy ORDER BY 1, 2`)).rows;

describe('policies verify on PostgreSQL (demo project, ~60 practices)', () => {
  it('passes every check for every protected relation and every sampled practice role', async () => {
    const started = performance.now();
    const stdout = await expectVerifyPasses(EVERY);
    const elapsed = Math.round(performance.now() - started);
    console.log(`${stdout}\n(verify took ${elapsed} ms including compile)`);
    const table = parseVerifyTable(stdout);
    const ws = compileWorkspace(wh.demo.dir, { write: false });
    expect(ws.protectedRelations.length).toBe(22); // 7 raw, 7 staging, 5 marts, 3 pseudo
    for (const r of ws.protectedRelations) {
      const label = `${r.schema}.${r.identifier}`;
      expect(table.get(`${label} exists`), label).toEqual({ passed: 1, failed: 0 });
      // practices read staging and marts (row-level security applies); raw is out of reach
      const probes = r.schema === 'raw' || r.schema === 'pseudo' ? ['no_access', 'set_role', 'write_other'] : ['own_rows', 'other_rows', 'copy_out', 'spoof_setting', 'set_role', 'write_other'];
      for (const check of probes) {
        expect(table.get(`${label} ${check}`)?.passed, `${label} ${check}`).toBeGreaterThanOrEqual(PRACTICES);
      }
      for (const check of r.kind === 'table' ? ['rls', 'policy', 'group_policy', 'other_policies', 'tenant_index', 'owner'] : ['security_invoker', 'owner']) {
        expect(table.get(`${label} ${check}`), `${label} ${check}`).toEqual({ passed: 1, failed: 0 });
      }
    }
    // every practice role in the one-practice group, the group role in the groups' group
    expect(table.get('(roles) policy_group')?.failed).toBe(0);
    expect(table.get('(roles) policy_group')?.passed).toBeGreaterThanOrEqual(PRACTICES + 1);
    const summary = /(\d+) roles probed \((\d+) practice, (\d+) group, (\d+) research\)/.exec(stdout);
    expect(summary).not.toBeNull();
    expect(Number(summary![2])).toBeGreaterThanOrEqual(50);
    expect(Number(summary![3])).toBe(1);
    expect(Number(summary![4])).toBe(1);
    // counts, relation and role names only: no practice id outside a role name, no row value
    expect(stdout.replace(/practice_p_[0-9a-f]{10}/g, '')).not.toMatch(/p_[0-9a-f]{10}/);
  });

  it('fails, naming the relation, when a policy is dropped; apply restores it', async () => {
    await sql('DROP POLICY tsform_practice_isolation ON marts.provider_panel');
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      // no permissive policy left for practices: they see no rows, so every read probe fails too
      const failed = failedPairs(run.stdout);
      expect(failed).toEqual(expect.arrayContaining(['marts.provider_panel policy', 'marts.provider_panel own_rows']));
      expect(failed.filter((p) => !p.startsWith('marts.provider_panel '))).toEqual([]);
      expect(run.stdout).toMatch(/marts\.provider_panel policy as \(catalog\): no policy tsform_practice_isolation/);
    } finally {
      expect((await apply()).code).toBe(0);
    }
    await expectVerifyPasses();
  });

  it('a group role put in the one-practice group fails closed, verify names it, apply moves it back', async () => {
    await sql('GRANT tsform_practices TO northshore_group');
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/\(roles\) policy_group as northshore_group: also a member of tsform_practices/);
      // The scalar policy errors for a role of two practices (21000): no rows, never other rows.
      const failed = failedPairs(run.stdout);
      expect(failed).toContain('(roles) policy_group');
      expect(failed.filter((p) => / (other_rows|spoof_setting|write_other|copy_out)$/.test(p))).toEqual([]);
      expect((await apply()).code).toBe(0);
      const member = await sql(`SELECT pg_has_role('northshore_group', 'tsform_practices', 'MEMBER') AS m`);
      expect(member.rows[0]?.m).toBe(false);
    } finally {
      await sql('REVOKE tsform_practices FROM northshore_group');
    }
    await expectVerifyPasses();
  });

  it('a practice role given a second practice by hand is flagged and sees nothing; apply restores the membership map', async () => {
    const [a, b] = verifyInputFor(wh.demo.dir, wh.superUrl).practiceRoles;
    await sql('INSERT INTO tsform_security.members (role_name, practice_id) VALUES ($1, $2)', [a!.role, b!.practices[0]]);
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`(roles) policy_group as ${a!.role}: 2 membership rows: a role of several practices belongs in practice_roles.groups`);
      // only that role's probes fail, and none of them shows another practice's rows
      const report = await verifyPolicies({ ...verifyInputFor(wh.demo.dir, wh.superUrl), practiceRoles: [a!, b!], groupRoles: [] });
      const failedRoles = new Set(report.checks.filter((c) => !c.passed).map((c) => c.role));
      expect([...failedRoles]).toEqual([a!.role]);
      const mine = report.checks.filter((c) => c.role === a!.role);
      expect(mine.filter((c) => c.check === 'own_rows' && !c.passed).length).toBeGreaterThan(0);
      expect(mine.filter((c) => /\b[1-9]\d* (other )?rows of other/.test(c.detail)).map((c) => `${c.relation} ${c.check}`)).toEqual([]);
      expect((await apply()).code).toBe(0);
    } finally {
      await sql('DELETE FROM tsform_security.members WHERE role_name = $1 AND practice_id = $2', [a!.role, b!.practices[0]]);
    }
    await expectVerifyPasses();
  });

  it('fails when row-level security is not forced; apply restores it', async () => {
    await sql('ALTER TABLE marts.practice_daily_activity NO FORCE ROW LEVEL SECURITY');
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      expect(failedPairs(run.stdout)).toEqual(['marts.practice_daily_activity rls']);
      expect(run.stdout).toContain('marts.practice_daily_activity rls as (catalog): enabled, NOT forced');
    } finally {
      expect((await apply()).code).toBe(0);
    }
    await expectVerifyPasses();
  });

  it('catches a spoofable extra policy on a session setting, which apply leaves in place', async () => {
    await sql(`CREATE POLICY leak ON marts.practice_daily_activity FOR SELECT TO PUBLIC USING (practice_id = current_setting('app.practice_id', true))`);
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      // Unset, the setting matches nothing: own and other counts are right until a role sets it.
      expect(failedPairs(run.stdout)).toEqual(['marts.practice_daily_activity other_policies', 'marts.practice_daily_activity spoof_setting']);
      expect(parseVerifyTable(run.stdout).get('marts.practice_daily_activity spoof_setting')!.failed).toBeGreaterThanOrEqual(SAMPLE);
      expect(run.stdout).toMatch(/spoof_setting as \S+: .*leaks through app\.practice_id/);
      expect(run.stdout).toContain('unexpected permissive: leak (to public)');
      // apply rewrites tsform's own policies only: the foreign one survives it, and verify says so
      expect((await apply()).code).toBe(0);
      expect(failedPairs((await verify()).stdout)).toEqual(['marts.practice_daily_activity other_policies', 'marts.practice_daily_activity spoof_setting']);
    } finally {
      await sql('DROP POLICY IF EXISTS leak ON marts.practice_daily_activity');
    }
    await expectVerifyPasses();
  });

  it('catches a view that runs with its owner\'s rights', async () => {
    await sql('ALTER VIEW marts.practice_patient_roster SET (security_invoker = false)');
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      const failed = failedPairs(run.stdout);
      // through the owner's policy every practice reads every practice's rows
      expect(failed).toEqual(expect.arrayContaining(['marts.practice_patient_roster security_invoker', 'marts.practice_patient_roster other_rows']));
      expect(failed.filter((p) => !p.startsWith('marts.practice_patient_roster '))).toEqual([]);
    } finally {
      expect((await apply()).code).toBe(0);
    }
    await expectVerifyPasses();
  });

  it('catches escalation paths: membership in the owner, BYPASSRLS, a SECURITY DEFINER function', async () => {
    const [a, b] = [...wh.demo.tenantIds].sort().map((id) => `practice_${id}`);
    await sql(`GRANT ${quoteIdent(OWNER)} TO ${quoteIdent(a!)}`);
    await sql(`ALTER ROLE ${quoteIdent(b!)} BYPASSRLS`);
    await sql(`CREATE FUNCTION marts.peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM marts.provider_panel'`);
    try {
      const run = await verify(EVERY);
      expect(run.code).toBe(1);
      const table = parseVerifyTable(run.stdout);
      expect(table.get('(roles) attributes')!.failed).toBe(2);
      expect(run.stdout).toContain(`(roles) attributes as ${a}: member of ${OWNER}`);
      expect(run.stdout).toContain(`(roles) attributes as ${b}: BYPASSRLS`);
      expect(run.stdout).toContain(`(session) set_role as ${a}: allowed: ${OWNER}`);
      // EXECUTE goes to PUBLIC by default: every probed role can call it
      expect(table.get('(database) functions')).toEqual({ passed: 0, failed: table.get('(database) functions')!.failed });
      expect(run.stdout).toContain('1 SECURITY DEFINER executable: marts.peek()');
      // both roles read other practices' rows: the owner's policy applies to its members
      expect(table.get('marts.provider_panel other_rows')!.failed).toBe(2);
    } finally {
      await sql(`REVOKE ${quoteIdent(OWNER)} FROM ${quoteIdent(a!)}`);
      await sql(`ALTER ROLE ${quoteIdent(b!)} NOBYPASSRLS`);
      await sql('DROP FUNCTION marts.peek()');
    }
    await expectVerifyPasses(EVERY);
  });

  it('catches a schema where readers may CREATE (public before PostgreSQL 15: a planted function is called as the owner)', async () => {
    await sql('GRANT CREATE ON SCHEMA public TO PUBLIC');
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      const table = parseVerifyTable(run.stdout);
      // every probed reader: the sampled practices, the group and the research reader
      expect(table.get('(database) schema_create')).toEqual({ passed: 0, failed: SAMPLE + 2 });
      expect(run.stdout).toContain('may CREATE in public');
    } finally {
      await sql('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    }
    const stdout = await expectVerifyPasses();
    expect(parseVerifyTable(stdout).get('(database) schema_create')).toEqual({ passed: SAMPLE + 2, failed: 0 });
  });

  it('write probes reach the WITH CHECK when practices may write, and catch a policy that opens it', async () => {
    await sql('GRANT INSERT, UPDATE, DELETE ON marts.provider_panel TO tsform_practices');
    try {
      await expectVerifyPasses();
      const input = verifyInputFor(wh.demo.dir, wh.superUrl);
      const report = await verifyPolicies({ ...input, practiceRoles: input.practiceRoles.slice(0, 3), groupRoles: [] });
      const writes = report.checks.filter((c) => c.relation === 'marts.provider_panel' && c.check === 'write_other');
      // "new row violates row-level security policy": privilege granted, the policy said no
      expect(writes.map((c) => c.detail)).toEqual(writes.map(() => expect.stringMatching(/^insert: 42501, update to other: (42501|0 rows), update others: 0 rows, delete others: 0 rows$/)));
      await sql('CREATE POLICY open_insert ON marts.provider_panel FOR INSERT TO PUBLIC WITH CHECK (true)');
      const run = await verify();
      expect(run.code).toBe(1);
      expect(failedPairs(run.stdout)).toEqual(['marts.provider_panel other_policies', 'marts.provider_panel write_other']);
      expect(run.stdout).toMatch(/marts\.provider_panel write_other as \S+: insert: 1 rows/);
    } finally {
      await sql('DROP POLICY IF EXISTS open_insert ON marts.provider_panel');
      await sql('REVOKE INSERT, UPDATE, DELETE ON marts.provider_panel FROM tsform_practices');
    }
    // every probe was rolled back: the superuser sees no row written by a practice role
    await expectVerifyPasses();
  });

  it('refuses to verify without a superuser connection', async () => {
    const run = await cli(['policies', 'verify', '--project-dir', wh.demo.dir, '--target', 'postgres'], { TSFORM_PG_ADMIN_URL: wh.ownerUrl });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('needs a superuser connection');
  });

  it('apply is idempotent: twice gives the same policies, memberships and a passing verify', async () => {
    const first = await apply();
    const afterFirst = await policySnapshot();
    const members = (await sql('SELECT role_name::text, practice_id FROM tsform_security.members ORDER BY 1, 2')).rows;
    const second = await apply();
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(second.stdout).toBe(first.stdout);
    expect((await policySnapshot()).map(({ rel, polname, qual }) => ({ rel, polname, qual }))).toEqual(afterFirst.map(({ rel, polname, qual }) => ({ rel, polname, qual })));
    expect((await sql('SELECT role_name::text, practice_id FROM tsform_security.members ORDER BY 1, 2')).rows).toEqual(members);
    await expectVerifyPasses();
  });

  it('the roster view is unreadable without staging grants', async () => {
    await sql('REVOKE SELECT ON ALL TABLES IN SCHEMA staging FROM tsform_practices');
    await sql('REVOKE USAGE ON SCHEMA staging FROM tsform_practices');
    try {
      const run = await verify();
      expect(run.code).toBe(1);
      expect(failedPairs(run.stdout)).toEqual(['marts.practice_patient_roster own_rows']);
      expect(run.stdout).toContain('SELECT is granted but fails: 42501 permission denied for table stg_patients');
      // the staging tables themselves are then simply out of reach, which passes
      expect(parseVerifyTable(run.stdout).get('staging.stg_patients no_access')!.passed).toBeGreaterThanOrEqual(SAMPLE);
    } finally {
      expect((await apply()).code).toBe(0);
    }
    await expectVerifyPasses();
  });

  it('probes role names that need quoting without breaking out of the identifier', async () => {
    const hostile = ['we"ird', 'x"; DROP TABLE marts.provider_panel; --'];
    const practice = 'p_79a06fd69f';
    for (const role of hostile) {
      await sql(`CREATE ROLE ${quoteIdent(role)} LOGIN`);
      await sql(`GRANT tsform_practice_groups TO ${quoteIdent(role)}`);
      await sql('INSERT INTO tsform_security.members (role_name, practice_id) VALUES ($1, $2)', [role, practice]);
    }
    try {
      const input = verifyInputFor(wh.demo.dir, wh.superUrl);
      const readable = input.relations.filter((r) => r.schema === 'staging' || r.schema === 'marts').length;
      const report = await verifyPolicies({ ...input, practiceRoles: input.practiceRoles.slice(0, 2), groupRoles: hostile.map((role) => ({ role, practices: [practice] })) });
      expect(report.checks.filter((c) => !c.passed), formatVerifyReport(report)).toEqual([]);
      for (const role of hostile) {
        const own = report.checks.filter((c) => c.role === role && c.check === 'own_rows');
        expect(own.length, role).toBe(readable);
        expect(own.every((c) => c.passed)).toBe(true);
      }
      expect((await sql(`SELECT to_regclass('marts.provider_panel') IS NOT NULL AS present`)).rows[0]?.present).toBe(true);
    } finally {
      await sql('DELETE FROM tsform_security.members WHERE role_name = ANY($1::text[])', [hostile]);
      for (const role of hostile) await sql(`DROP ROLE ${quoteIdent(role)}`);
    }
  });

  it('a failed apply leaves the previous policies, roles and memberships in force', async () => {
    const tenantsFile = join(wh.demo.dir, 'tenants.yml');
    const before = readFileSync(tenantsFile, 'utf8');
    const doc = parse(before) as { tenants: { id: string }[] };
    const all = (parse(readFileSync(join(REPO_ROOT, 'tenants.yml'), 'utf8')) as { tenants: { id: string }[] }).tenants;
    const newcomer = all.find((t) => !doc.tenants.some((k) => k.id === t.id))!;
    const newRole = `practice_${newcomer.id}`;
    const policies = await policySnapshot();
    const members = (await sql('SELECT role_name::text, practice_id FROM tsform_security.members ORDER BY 1, 2')).rows;
    const superuser = String((await sql('SELECT current_user AS u')).rows[0]?.u);

    // A new practice (apply would create its role and memberships), and a relation apply cannot
    // alter part-way through: it now belongs to someone else, so ALTER TABLE fails.
    writeFileSync(tenantsFile, stringify({ ...doc, tenants: [...doc.tenants, newcomer] }));
    await sql(`ALTER TABLE marts.provider_panel OWNER TO ${quoteIdent(superuser)}`);
    try {
      const failed = await apply();
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toContain('must be owner of table provider_panel');
      expect((await sql('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [newRole])).rows[0]?.n).toBe(0);
      expect((await sql('SELECT role_name::text, practice_id FROM tsform_security.members ORDER BY 1, 2')).rows).toEqual(members);
      // same policies with the same oids: the relations apply had rewritten before failing were rolled back
      expect(await policySnapshot()).toEqual(policies);
      writeFileSync(tenantsFile, before);
      await expectVerifyPasses();
    } finally {
      writeFileSync(tenantsFile, before);
      await sql(`ALTER TABLE marts.provider_panel OWNER TO ${quoteIdent(OWNER)}`);
    }
    expect((await apply()).code).toBe(0);
    await expectVerifyPasses();
  });
});
