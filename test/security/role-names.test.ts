import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPolicies } from '../../src/execute/apply-policies.ts';
import { PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { PolicyConfig, Tenant } from '../../src/project/types.ts';
import { TENANT_ID_PATTERN } from '../../src/project/types.ts';
import { createPolicyRenderer, fitRoleName, membershipRows, PG_NAME_BYTES, policyRoleDiagnostics, practiceRole, roleSpecs } from '../../src/security/render-rls.ts';
import { quoteIdent } from '../../src/sql/quote.ts';
import { asSuperuser, urlAs } from '../support/rls-fixture.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { TEST_SCHEMAS, testPolicyConfig } from '../support/policy-config.ts';

/**
 * Issue 12, item 9: a practice role's name is derived from the practice id, and PostgreSQL cuts
 * names at 63 bytes. Every derived name fits, is stable, and never merges two practices.
 */

const SCHEMAS = TEST_SCHEMAS;

function policies(pattern = 'practice_{tenant}'): PolicyConfig {
  return testPolicyConfig({ practiceRolePattern: pattern, protectSchemas: ['raw'] });
}

const tenant = (id: string): Tenant => ({ id }) as Tenant;

// The longest valid id, and a second one sharing its first 54 characters (which PostgreSQL's cut
// of `practice_<id>` at 63 bytes used to merge into one role).
const LONG = `${'a'.repeat(54)}${'b'.repeat(9)}`;
const LONG_TWIN = `${'a'.repeat(54)}${'c'.repeat(9)}`;

describe('practice role names', () => {
  it('keep a name that fits as it is (existing roles keep their names)', () => {
    expect(practiceRole(policies(), 'p_79a06fd69f')).toBe('practice_p_79a06fd69f');
    const fits = 'x'.repeat(63 - 'practice_'.length);
    expect(practiceRole(policies(), fits)).toBe(`practice_${fits}`);
  });

  it('fit 63 bytes for every valid id, with a readable prefix and a hash suffix', () => {
    expect(TENANT_ID_PATTERN.test(LONG) && TENANT_ID_PATTERN.test(LONG_TWIN)).toBe(true);
    const role = practiceRole(policies(), LONG);
    expect(Buffer.byteLength(role)).toBe(PG_NAME_BYTES);
    expect(role).toMatch(/^practice_a+_[0-9a-f]{16}$/);
    expect(role.startsWith(`practice_${'a'.repeat(37)}`)).toBe(true);
    // a long pattern too: whatever the pattern, the name fits
    const long = policies(`${'r'.repeat(50)}_{tenant}_reader`);
    expect(Buffer.byteLength(practiceRole(long, 'p1'))).toBeLessThanOrEqual(PG_NAME_BYTES);
  });

  it('are stable across runs (a pure function of pattern and id)', () => {
    expect(practiceRole(policies(), LONG)).toBe(practiceRole(policies(), LONG));
    // pinned: a change of the derivation would orphan every long-named role of a warehouse
    expect(fitRoleName(`practice_${LONG}`)).toBe(`practice_${'a'.repeat(37)}_${fitRoleName(`practice_${LONG}`).slice(-16)}`);
    expect(fitRoleName(`practice_${LONG}`).slice(-16)).toBe('eed3db49a8d6f9ac');
  });

  it('never merge two practices: ids sharing 54 (or 62) characters, and many long ids', () => {
    expect(practiceRole(policies(), LONG)).not.toBe(practiceRole(policies(), LONG_TWIN));
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) ids.add(`${'z'.repeat(50)}_${String(i).padStart(12, '0')}`.slice(0, 63));
    const roles = new Set([...ids].map((id) => practiceRole(policies(), id)));
    expect(roles.size).toBe(ids.size);
    for (const r of roles) expect(Buffer.byteLength(r)).toBeLessThanOrEqual(PG_NAME_BYTES);
  });

  it('are the names apply creates and writes to the membership table', () => {
    const tenants = [tenant(LONG), tenant(LONG_TWIN), tenant('p_short')];
    const specs = roleSpecs(policies(), tenants).map((s) => s.role);
    const members = membershipRows(policies(), tenants);
    for (const t of tenants) {
      expect(specs).toContain(practiceRole(policies(), t.id));
      expect(members).toContainEqual({ role: practiceRole(policies(), t.id), practice: t.id });
    }
    for (const r of specs) expect(Buffer.byteLength(r)).toBeLessThanOrEqual(PG_NAME_BYTES);
  });

  it('a pattern that maps two practices (or a practice and a fixed role) to one name is TSF116', () => {
    // A 63-byte id whose tail is the hash suffix of a longer one: only a deliberate choice does this.
    const crafted = practiceRole(policies(), LONG).slice('practice_'.length);
    expect(crafted.length).toBe(54);
    const clash = policyRoleDiagnostics(policies(), [tenant(LONG), tenant(crafted)]);
    expect(clash.map((d) => `${d.code} ${d.message}`)).toEqual([`TSF116 practices '${LONG}' and '${crafted}' map to one role '${practiceRole(policies(), LONG)}'; change practice_roles.name`]);
    const fixed = policyRoleDiagnostics(policies('tsform_{tenant}'), [tenant('owner')]);
    expect(fixed.map((d) => d.code)).toEqual(['TSF116']);
    expect(policyRoleDiagnostics(policies(), [tenant(LONG), tenant(LONG_TWIN)])).toEqual([]);
  });
});

describe('long practice ids on PostgreSQL', () => {
  let server: ThrowawayPostgres;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('apply creates one role per practice, runs again without 42710, and isolates ids sharing 54 characters', async () => {
    const pol = policies();
    const tenants = [tenant(LONG), tenant(LONG_TWIN)];
    const renderer = createPolicyRenderer(pol, 'practice_id', SCHEMAS);
    await asSuperuser(server.url, async (c) => {
      await c.query(`CREATE ROLE tsform_owner NOLOGIN NOSUPERUSER`);
      await c.query(`CREATE SCHEMA marts`);
      await c.query(`CREATE TABLE marts.visits (practice_id varchar NOT NULL, n int)`);
      await c.query(`INSERT INTO marts.visits VALUES ($1, 1), ($2, 2)`, [LONG, LONG_TWIN]);
      await c.query(`ALTER TABLE marts.visits OWNER TO tsform_owner`);
    });
    const adapter = await PostgresAdapter.open({ url: server.url, poolSize: 1 });
    try {
      // twice: the second run finds the roles under the names the first one created
      const relations = new Map([['model.visits', { node: 'model.visits', schema: 'marts', identifier: 'visits', kind: 'table' as const }]]);
      for (let run = 0; run < 2; run++) {
        expect(await applyPolicies(adapter, { policies: pol, renderer, tenants, tenantColumn: 'practice_id', relations })).toEqual({ protectedCount: 1, missing: [] });
      }
    } finally {
      await adapter.close();
    }
    const roles = tenants.map((t) => practiceRole(pol, t.id));
    expect(new Set(roles).size).toBe(2);
    await asSuperuser(server.url, async (c) => {
      const { rows } = await c.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE 'practice\\_%' ORDER BY 1`);
      expect(rows.map((r) => r.rolname)).toEqual([...roles].sort());
      for (const [i, role] of roles.entries()) {
        await c.query(`ALTER ROLE ${quoteIdent(role)} PASSWORD 'pw-of-test'`);
        const own = tenants[i]!.id;
        const seen = await asSuperuser(urlAs(server.url, role, 'pw-of-test'), (r) => r.query('SELECT practice_id, n FROM marts.visits'));
        expect(seen.rows, role).toEqual([{ practice_id: own, n: i + 1 }]);
      }
    });
  });
});
