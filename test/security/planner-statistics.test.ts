import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { verifyPolicies } from '../../src/adapters/postgres/policy-verifier.ts';
import type { VerifyInput } from '../../src/adapters/postgres/verify-types.ts';
import type { Diagnostic } from '../../src/errors.ts';
import { applyPolicies, type PolicyContext } from '../../src/execute/apply-policies.ts';
import { readPolicies } from '../../src/project/load-policies.ts';
import type { PolicyConfig, Tenant } from '../../src/project/types.ts';
import type { ProtectedRelation } from '../../src/security/protected-relations.ts';
import { createdPolicyNames, createPolicyRenderer, practiceRole } from '../../src/security/render-rls.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { asSuperuser, urlAs } from '../support/rls-fixture.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { parseYamlFile, YamlReader } from '../../src/project/yaml-file.ts';
import { TEST_SCHEMAS, testPolicyConfig } from '../support/policy-config.ts';

/**
 * Issue 12: what a practice role learns from the planner, and `planner_statistics: {
 * tenant_column: none }`. With the statistics ANALYZE keeps by default, EXPLAIN (no ANALYZE) of
 * `WHERE practice_id = 'other'` estimates the other practice's row count from the column's
 * most-common-values list; with the option, every practice id gets the same estimate.
 */

const SCHEMAS = TEST_SCHEMAS;
const OWNER = 'tsform_owner';

function policies(tenantColumn?: 'keep' | 'none'): PolicyConfig {
  return testPolicyConfig(tenantColumn ? { plannerStatistics: { tenantColumn } } : {});
}

const table = (identifier: string): ProtectedRelation => ({ node: `model.${identifier}`, schema: 'marts', identifier, kind: 'table' });
const VISITS = table('visits');
const VIEW: ProtectedRelation = { node: 'model.visit_list', schema: 'marts', identifier: 'visit_list', kind: 'view' };

describe('planner_statistics in policies.yml', () => {
  const read = (text: string) => {
    const diagnostics: Diagnostic[] = [];
    const y = parseYamlFile(text, 'policies/policies.yml', diagnostics)!;
    return { policies: readPolicies(new YamlReader(y, diagnostics), SCHEMAS, new Set([SCHEMAS.research]), {}), diagnostics };
  };

  it('defaults to keep, reads none, and refuses anything else with file and line', () => {
    expect(read('roles: { owner: tsform_owner }\n').policies?.plannerStatistics).toEqual({ tenantColumn: 'keep' });
    expect(read('planner_statistics:\n  tenant_column: none\n').policies?.plannerStatistics).toEqual({ tenantColumn: 'none' });
    const bad = read('roles: {}\nplanner_statistics:\n  tenant_column: hidden\n');
    expect(bad.diagnostics).toHaveLength(1);
    expect(bad.diagnostics[0]).toMatchObject({ file: 'policies/policies.yml', line: 3 });
    expect(bad.diagnostics[0]!.message).toContain('keep, none');
    expect(bad.policies?.plannerStatistics).toEqual({ tenantColumn: 'keep' });
  });
});

describe('planner_statistics rendering', () => {
  it('keeps today\'s DDL by default and sets the tenant column\'s statistics target to 0 with `none`', () => {
    const keep = createPolicyRenderer(policies(), 'practice_id', SCHEMAS).protect(VISITS);
    expect(createPolicyRenderer(policies('keep'), 'practice_id', SCHEMAS).protect(VISITS)).toBe(keep);
    expect(keep).not.toContain('STATISTICS');
    const none = createPolicyRenderer(policies('none'), 'practice_id', SCHEMAS);
    expect(none.protect(VISITS)).toBe(`${keep}ALTER TABLE "marts"."visits" ALTER COLUMN "practice_id" SET STATISTICS 0;\n`);
    // a view has no statistics of its own
    expect(none.protect(VIEW)).toBe(createPolicyRenderer(policies(), 'practice_id', SCHEMAS).protect(VIEW));
  });

  it('quotes every identifier', () => {
    const r = createPolicyRenderer(policies('none'), 'pr"actice', SCHEMAS);
    const odd: ProtectedRelation = { node: 'model.x', schema: 'ma rts', identifier: 'vi"sits', kind: 'table' };
    expect(r.protect(odd)).toContain('ALTER TABLE "ma rts"."vi""sits" ALTER COLUMN "pr""actice" SET STATISTICS 0;');
    expect(r.tenantStatisticsReset(odd, { columnType: 'character varying(64)', collation: { schema: 'pg_catalog', name: 'default' } }, ['tsform_owner', 'we"ird'])).toBe(
      [
        'DROP POLICY IF EXISTS "tsform_owner" ON "ma rts"."vi""sits";',
        'DROP POLICY IF EXISTS "we""ird" ON "ma rts"."vi""sits";',
        'ALTER TABLE "ma rts"."vi""sits" ALTER COLUMN "pr""actice" TYPE character varying(64) COLLATE "pg_catalog"."default";',
        '',
      ].join('\n'),
    );
  });

  it('names the policies protect() creates, so that only those are dropped and created again', () => {
    const r = createPolicyRenderer(policies('none'), 'practice_id', SCHEMAS);
    expect(createdPolicyNames(r.protect(VISITS)).sort()).toEqual(['tsform_group_isolation', 'tsform_owner', 'tsform_practice_isolation']);
    expect(createdPolicyNames('CREATE POLICY "Odd ""one""" ON t USING (true); create policy Lower ON t')).toEqual(['Odd "one"', 'lower']);
  });
});

describe('planner statistics of the tenant column on PostgreSQL', () => {
  let server: ThrowawayPostgres;
  let ownerUrl: string;
  // practice a (the one looking), b (large), c (absent from the table), 40 small ones
  const tenants = ['a', 'b', 'c', ...Array.from({ length: 40 }, (_, i) => `s${i}`)].map((id) => ({ id }) as Tenant);
  const sql = (text: string, values: unknown[] = []) => asSuperuser(server.url, (c) => c.query(text, values));

  beforeAll(async () => {
    server = await startThrowawayPostgres();
    const password = randomBytes(12).toString('hex');
    await asSuperuser(server.url, async (c) => {
      await c.query(`CREATE ROLE ${quoteIdent(OWNER)} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS`);
      const { rows } = await c.query('SELECT format($3::text, $1::text, $2::text) AS sql', [OWNER, password, 'ALTER ROLE %I PASSWORD %L']);
      await c.query(String(rows[0]?.sql));
      const db = await c.query('SELECT current_database() AS name');
      await c.query(`GRANT CREATE ON DATABASE ${quoteIdent(String(db.rows[0]?.name))} TO ${quoteIdent(OWNER)}`);
      await c.query(`CREATE SCHEMA marts AUTHORIZATION ${quoteIdent(OWNER)}`);
    });
    ownerUrl = urlAs(server.url, OWNER, password);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  /** A table with practice a 300 rows, b 20,000, s0..s39 200 each; ANALYZEd by its owner. */
  async function createVisits(identifier: string): Promise<void> {
    await asSuperuser(ownerUrl, async (c) => {
      await c.query(`DROP TABLE IF EXISTS marts.${quoteIdent(identifier)} CASCADE`);
      await c.query(`CREATE TABLE marts.${quoteIdent(identifier)} (practice_id varchar NOT NULL, visit_id int NOT NULL)`);
      await c.query(`INSERT INTO marts.${quoteIdent(identifier)} SELECT 'a', g FROM generate_series(1, 300) g`);
      await c.query(`INSERT INTO marts.${quoteIdent(identifier)} SELECT 'b', g FROM generate_series(1, 20000) g`);
      await c.query(`INSERT INTO marts.${quoteIdent(identifier)} SELECT 's' || (g % 40), g FROM generate_series(1, 8000) g`);
      await c.query(`ANALYZE marts.${quoteIdent(identifier)}`);
    });
  }

  async function apply(pol: PolicyConfig, rels: ProtectedRelation[]) {
    const adapter = await PostgresAdapter.open({ url: ownerUrl, poolSize: 1 });
    try {
      const ctx: PolicyContext = {
        policies: pol,
        renderer: createPolicyRenderer(pol, 'practice_id', SCHEMAS),
        tenants,
        tenantColumn: 'practice_id',
        relations: new Map(rels.map((r) => [r.node, r])),
      };
      return await applyPolicies(adapter, ctx);
    } finally {
      await adapter.close();
    }
  }

  /** EXPLAIN (no ANALYZE) as practice a: the planner's row estimate for each practice id. */
  async function estimatesOfA(identifier: string, ids: string[]): Promise<Record<string, number>> {
    return asSuperuser(server.url, async (c: pg.Client) => {
      await c.query(`SET SESSION AUTHORIZATION ${quoteIdent(practiceRole(policies(), 'a'))}`);
      const out: Record<string, number> = {};
      for (const id of ids) {
        const { rows } = await c.query(`EXPLAIN (FORMAT JSON) SELECT * FROM marts.${quoteIdent(identifier)} WHERE practice_id = $1`, [id]);
        out[id] = Number((rows[0]['QUERY PLAN'] as { Plan: { 'Plan Rows': number } }[])[0]!.Plan['Plan Rows']);
      }
      // the policy still isolates: a reads its own 300 rows only
      const seen = await c.query(`SELECT count(*)::int AS n, count(DISTINCT practice_id)::int AS p FROM marts.${quoteIdent(identifier)}`);
      expect(seen.rows[0]).toEqual({ n: 300, p: 1 });
      return out;
    });
  }

  const statsRows = async (identifier: string) =>
    Number(
      (
        await sql(
          `SELECT count(*)::int AS n FROM pg_statistic s JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum WHERE s.starelid = $1::regclass AND a.attname = 'practice_id'`,
          [`marts.${identifier}`],
        )
      ).rows[0].n,
    );

  it('by default, a practice role\'s EXPLAIN estimates another practice\'s row count', async () => {
    await createVisits('visits');
    expect(await apply(policies(), [VISITS])).toEqual({ protectedCount: 1, missing: [] });
    const est = await estimatesOfA('visits', ['b', 'c', 's7']);
    expect(est.b).toBeGreaterThan(15_000); // b has 20,000 rows
    expect(est.b).not.toBe(est.c); // c has none
    expect(await statsRows('visits')).toBe(1);
  });

  it('with tenant_column: none, apply removes the statistics as the (non-superuser) owner and every id gets one estimate', async () => {
    const result = await apply(policies('none'), [VISITS]);
    expect(result).toEqual({ protectedCount: 1, missing: [], tenantStatistics: { cleared: ['marts.visits'], kept: [] } });
    expect(await statsRows('visits')).toBe(0);
    const target = await sql(`SELECT attstattarget FROM pg_attribute WHERE attrelid = 'marts.visits'::regclass AND attname = 'practice_id'`);
    expect(target.rows[0].attstattarget).toBe(0);
    // ANALYZE (by hand, or autovacuum's) keeps none for the column, and still for the others
    await asSuperuser(ownerUrl, (c) => c.query('ANALYZE marts.visits'));
    expect(await statsRows('visits')).toBe(0);
    expect(Number((await sql(`SELECT count(*)::int AS n FROM pg_statistic WHERE starelid = 'marts.visits'::regclass`)).rows[0].n)).toBe(1);
    const est = await estimatesOfA('visits', ['a', 'b', 'c', 's7']);
    expect(new Set(Object.values(est)).size, JSON.stringify(est)).toBe(1);
    // the policies, FORCE and the index are back, and a second apply has nothing left to clear
    const flags = await sql(`SELECT relforcerowsecurity AS forced, (SELECT count(*)::int FROM pg_policy WHERE polrelid = c.oid) AS policies FROM pg_class c WHERE oid = 'marts.visits'::regclass`);
    expect(flags.rows[0]).toEqual({ forced: true, policies: 3 });
    expect(await apply(policies('none'), [VISITS])).toEqual({ protectedCount: 1, missing: [], tenantStatistics: { cleared: [], kept: [] } });
  });

  it('reports a table whose column a view uses: PostgreSQL 15 cannot remove its statistics', async () => {
    const rooms = table('rooms');
    await createVisits('rooms');
    await asSuperuser(ownerUrl, (c) => c.query('CREATE VIEW marts.visit_list WITH (security_invoker = true) AS SELECT practice_id, visit_id FROM marts.rooms'));
    const result = await apply(policies('none'), [rooms, VIEW]);
    expect(result.tenantStatistics?.cleared).toEqual([]);
    expect(result.tenantStatistics?.kept).toEqual([{ relation: 'marts.rooms', reason: 'PostgreSQL cannot alter a column that view or rule marts.visit_list uses' }]);
    expect(await statsRows('rooms')).toBe(1);
    // the rest of the apply went through: forced, policies in place, target 0 for the next ANALYZE
    const flags = await sql(
      `SELECT c.relforcerowsecurity AS forced, a.attstattarget AS target FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'practice_id' WHERE c.oid = 'marts.rooms'::regclass`,
    );
    expect(flags.rows[0]).toEqual({ forced: true, target: 0 });
    await sql('DROP VIEW marts.visit_list');
    expect((await apply(policies('none'), [rooms])).tenantStatistics).toEqual({ cleared: ['marts.rooms'], kept: [] });
  });

  it('policies verify passes with the option', async () => {
    const pol = policies('none');
    const input: VerifyInput = {
      url: server.url,
      tenantColumn: 'practice_id',
      relations: [VISITS, table('rooms')].map((r) => ({ name: r.node, schema: r.schema, identifier: r.identifier, kind: r.kind })),
      practiceRoles: tenants.slice(0, 5).map((t) => ({ role: practiceRole(pol, t.id), practices: [t.id] })),
      groupRoles: [],
      practicesRole: pol.roles.practices,
      groupsRole: pol.roles.practiceGroups,
      owner: OWNER,
      researchReader: pol.roles.researchReader,
      vaultSteward: pol.roles.vaultSteward,
      researchSchemas: pol.researchSchemas,
      restrictedSchemas: ['marts', 'vault'],
      vaultSchema: 'vault',
      securitySchema: pol.securitySchema,
      settingsToSpoof: ['app.practice_id'],
    };
    const report = await verifyPolicies(input);
    expect(report.checks.filter((c) => !c.passed)).toEqual([]);
    expect(report.failures).toBe(0);
    expect(report.relations).toBe(2);
    expect(report.checks.filter((c) => c.check === 'other_rows' && c.passed).length).toBeGreaterThanOrEqual(2 * 5);
  });
});
