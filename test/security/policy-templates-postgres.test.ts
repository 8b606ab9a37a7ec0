import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/sql/quote.ts';
import { DEFAULT_TEMPLATES } from '../../src/security/templates.ts';
import { asSuperuser, cli, startRlsWarehouse, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * The other side of policy-templates.test.ts on a real server: an override that only narrows is
 * what `tsform run` and `policies apply` put in place. Its restrictive policy hides every row from
 * the group roles, while each practice role still reads its own rows through the built-in policy.
 */

const OVERRIDE = `${DEFAULT_TEMPLATES.protect_table!}DROP POLICY IF EXISTS site_no_groups ON {{rel schema name}};
CREATE POLICY site_no_groups ON {{rel schema name}} AS RESTRICTIVE FOR SELECT TO {{ident practiceGroups}} USING (false);
CREATE INDEX IF NOT EXISTS {{ident (suffixed name "_brin")}} ON {{rel schema name}} USING brin ({{ident tenantColumn}});
COMMENT ON TABLE {{rel schema name}} IS 'protected by tsform, site additions';
`;
const TABLE = 'marts.practice_daily_activity';
const PRACTICE = 'p_79a06fd69f';

let wh: RlsWarehouse;
beforeAll(async () => {
  wh = await startRlsWarehouse({ tenants: 4, files: { 'policies/protect_table.hbs': OVERRIDE } });
}, 600_000);
afterAll(async () => {
  await wh?.stop();
});

const countAs = (role: string) =>
  asSuperuser(wh.superUrl, async (c) => {
    await c.query(`SET ROLE ${quoteIdent(role)}`);
    return Number((await c.query(`SELECT count(*) AS n FROM ${TABLE}`)).rows[0]?.n);
  });

describe('a narrowing policies/protect_table.hbs on PostgreSQL', () => {
  it('is in force on every protected table, beside the built-in policies', async () => {
    const rows = await asSuperuser(wh.superUrl, (c) =>
      c.query(`SELECT c.relname, p.polname, p.polpermissive, c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class') AS note
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_policy p ON p.polrelid = c.oid
                WHERE n.nspname = 'marts' AND c.relkind = 'r' ORDER BY 1, 2`),
    );
    const tables = new Set(rows.rows.map((r) => r.relname));
    expect(tables.size).toBeGreaterThan(0);
    for (const t of tables) {
      const mine = rows.rows.filter((r) => r.relname === t);
      if (!mine.some((r) => r.polname === 'tsform_practice_isolation')) continue; // a shared table
      expect(mine.map((r) => [r.polname, r.polpermissive])).toEqual(
        expect.arrayContaining([['site_no_groups', false], ['tsform_practice_isolation', true], ['tsform_group_isolation', true], ['tsform_owner', true]]),
      );
      expect(mine[0]).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true, note: 'protected by tsform, site additions' });
    }
    const brin = await asSuperuser(wh.superUrl, (c) => c.query(`SELECT count(*) AS n FROM pg_indexes WHERE schemaname = 'marts' AND tablename = 'practice_daily_activity' AND indexdef LIKE '%USING brin%'`));
    expect(Number(brin.rows[0]?.n)).toBe(1);
  });

  it("narrows: a practice reads its own rows, the group role that spans it reads none", async () => {
    const own = await countAs(`practice_${PRACTICE}`);
    const owner = await asSuperuser(wh.superUrl, async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${TABLE} WHERE practice_id = $1`, [PRACTICE])).rows[0]?.n));
    expect(own).toBeGreaterThan(0);
    expect(own).toBe(owner);
    expect(await countAs('northshore_group')).toBe(0);
  });

  it('policies apply again keeps one index and the policies (idempotent)', async () => {
    const applied = await cli(['policies', 'apply', '--project-dir', wh.demo.dir, '--target', 'postgres'], { TSFORM_PG_URL: wh.ownerUrl });
    expect(applied.code, applied.stderr).toBe(0);
    expect(await countAs('northshore_group')).toBe(0);
    expect(await countAs(`practice_${PRACTICE}`)).toBeGreaterThan(0);
  });
});
