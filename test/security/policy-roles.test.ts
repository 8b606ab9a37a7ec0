import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { demoCopyErrors } from '../support/compile-errors.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { asSuperuser, cli, urlAs } from '../support/rls-fixture.ts';

/**
 * Every policy is keyed on a role of policies.yml `roles:`, so those roles are the security
 * boundary. Before these checks `owner: tsform_practices` compiled and gave every practice the
 * owner's policy (USING (true)) on every protected table; `owner: public` gave it to every role;
 * `practices: pg_read_all_data` made each practice role a member of PostgreSQL's reader of all
 * data (a CREATEROLE owner may grant it on PostgreSQL 15), the vault included.
 */

const YML = readFileSync(join(REPO_ROOT, 'policies/policies.yml'), 'utf8');
const edit = (from: string, to: string) => {
  expect(YML).toContain(from);
  return YML.replace(from, to);
};

let demo: DemoCopy | undefined;
afterEach(() => demo?.remove());

const errorsOf = (yml: string, tenants?: (ids: string[]) => string[]) => demoCopyErrors({ 'policies/policies.yml': yml }, tenants);

const codes = (ds: Diagnostic[]) => ds.map((d) => ({ code: d.code, file: d.file }));

describe('the roles of policies.yml are five roles of their own', () => {
  const shared: [string, string, string][] = [
    ['owner', 'owner: tsform_owner', 'owner: tsform_practices'],
    ['owner', 'owner: tsform_owner', 'owner: tsform_practice_groups'],
    ['owner', 'owner: tsform_owner', 'owner: research_reader'],
    ['owner', 'owner: tsform_owner', 'owner: vault_steward'],
    ['practices', 'practices: tsform_practices', 'practices: tsform_practice_groups'],
    ['research_reader', 'research_reader: research_reader', 'research_reader: vault_steward'],
  ];
  for (const [key, from, to] of shared) {
    it(`${to} (${key} shares a role with another duty) is TSF116`, () => {
      expect(codes(errorsOf(edit(from, to)))).toEqual([{ code: Codes.roleNameConflict, file: 'policies/policies.yml' }]);
    });
  }

  const reserved: [string, string][] = [
    ['owner: tsform_owner', 'owner: public'],
    ['owner: tsform_owner', 'owner: pg_read_all_data'],
    ['practices: tsform_practices', 'practices: pg_read_all_data'],
    ['practice_groups: tsform_practice_groups', 'practice_groups: pg_monitor'],
    ['research_reader: research_reader', 'research_reader: public'],
    ['vault_steward: vault_steward', 'vault_steward: none'],
    ['role: northshore_group', 'role: public'],
    ['role: northshore_group', 'role: pg_write_all_data'],
  ];
  for (const [from, to] of reserved) {
    it(`${to} (a name PostgreSQL reserves) is TSF112 at its line`, () => {
      const errors = errorsOf(edit(from, to));
      expect(codes(errors)).toEqual([{ code: Codes.invalidIdentifier, file: 'policies/policies.yml' }]);
      expect(errors[0]!.line).toBe(YML.split('\n').findIndex((l) => l.includes(from)) + 1);
    });
  }

  it('a practice role pattern that derives a predefined role (pg_{tenant}) is TSF116', () => {
    const errors = errorsOf(edit('name: "practice_{tenant}"', 'name: "pg_{tenant}"'), sampleTenants(2));
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors.map((d) => d.code))).toEqual(new Set([Codes.roleNameConflict]));
  });

  it('the names PostgreSQL reserves are case-sensitive once quoted, as tsform quotes them', () => {
    expect(errorsOf(edit('owner: tsform_owner', 'owner: Public_Owner'))).toEqual([]);
  });
});

describe('the role that builds must be roles.owner (or a member, or a superuser)', () => {
  let server: ThrowawayPostgres;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
    await asSuperuser(server.url, async (c) => {
      const db = String((await c.query('SELECT current_database() AS d')).rows[0]?.d);
      for (const role of ['stranger', 'member_of_owner']) {
        await c.query(`CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD 'pw_for_test' CREATEROLE NOSUPERUSER NOBYPASSRLS`);
        await c.query(`GRANT CREATE ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(role)}`);
      }
      await c.query('CREATE ROLE tsform_owner NOLOGIN');
      await c.query('GRANT tsform_owner TO member_of_owner');
    });
  }, 600_000);
  afterAll(async () => {
    await server?.stop();
  });

  const apply = async (role: string) => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
    return cli(['policies', 'apply', '--project-dir', demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: urlAs(server.url, role, 'pw_for_test') });
  };

  it('another role is refused with TSF418 before any role or policy is made', async () => {
    const run = await apply('stranger');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('TSF418');
    expect(run.stderr).toContain("connected as 'stranger'");
    const made = await asSuperuser(server.url, (c) => c.query(`SELECT count(*) AS n FROM pg_roles WHERE rolname IN ('tsform_practices', 'research_reader')`));
    expect(Number(made.rows[0]?.n)).toBe(0);
  });

  it('a member of roles.owner gets past the check', async () => {
    const run = await apply('member_of_owner');
    expect(run.stderr).not.toContain('TSF418');
  });
});
