import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { withWarehouse } from '../support/research-fixture.ts';
import { asSuperuser, startRlsWarehouse, withEnv, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * A tenant-scoped model that was a view, or shared or global, and is now a table (or
 * incremental), run without `--full-refresh`. The slice writes went into the view, and PostgreSQL applies a DELETE and an
 * INSERT on a simple view to the relation it reads: every column of staging.stg_patients the view
 * left out became NULL for every practice, the run said success and the view stayed (red-team,
 * 2026-12-07). Now the view is replaced by a protected table, and a view over the view refuses the
 * change before anything is written. Counts and fingerprints only.
 */

const LITE = 'models/marts/zz_roster_lite.sql';
const OVER = 'models/marts/zz_over_lite.sql';
const lite = (materialized: string) =>
  `{{config schema="marts" scope="tenant" materialized="${materialized}"${materialized === 'incremental' ? ' unique_key="patient_id"' : ''}}}\nselect practice_id, patient_id, birth_date from {{ref "stg_patients"}}\n`;
const over = `{{config schema="marts" scope="tenant" materialized="view"}}\nselect practice_id, patient_id from {{ref "zz_roster_lite"}}\n`;
const STAGING = `SELECT count(*) AS n, count(first_name) AS named, md5(string_agg(practice_id || patient_id || coalesce(first_name, '') || coalesce(ssn, ''), ',' ORDER BY practice_id, patient_id)) AS f FROM staging.stg_patients`;

const failures = (run: Awaited<ReturnType<typeof runWorkspace>>) => run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.status} ${r.code ?? ''}`);

describe('a tenant-scoped view that becomes a table, on PostgreSQL', () => {
  let w: RlsWarehouse;
  const run = (select: string[], fullRefresh = false) =>
    withEnv({ TSFORM_PG_URL: w.ownerUrl }, () => runWorkspace({ projectDir: w.demo.dir, command: 'run', target: 'postgres', select, fullRefresh }));
  const staging = () => asSuperuser(w.superUrl, async (c) => JSON.stringify((await c.query(STAGING)).rows[0]));
  const relation = (name: string) =>
    asSuperuser(w.superUrl, async (c) => {
      const { rows } = await c.query(`SELECT c.relkind, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c WHERE c.oid = to_regclass($1)`, [name]);
      return rows[0] as { relkind: string; relrowsecurity: boolean; relforcerowsecurity: boolean } | undefined;
    });
  const count = (sql: string) => asSuperuser(w.superUrl, async (c) => Number((await c.query(sql)).rows[0]!.n));

  beforeAll(async () => {
    w = await startRlsWarehouse({ tenants: 2, files: { [LITE]: lite('view') } });
  }, 600_000);
  afterAll(async () => {
    await w?.stop();
  });

  for (const materialized of ['table', 'incremental']) {
    it(`${materialized}: replaces the view with a protected table of every practice's rows, and staging keeps every value`, async () => {
      writeFileSync(join(w.demo.dir, LITE), lite('view'));
      expect(failures(await run(['zz_roster_lite']))).toEqual([]);
      expect((await relation('marts.zz_roster_lite'))?.relkind).toBe('v');
      const before = await staging();
      writeFileSync(join(w.demo.dir, LITE), lite(materialized));
      expect(failures(await run(['zz_roster_lite']))).toEqual([]);
      expect(await staging()).toBe(before);
      expect(await relation('marts.zz_roster_lite')).toEqual({ relkind: 'r', relrowsecurity: true, relforcerowsecurity: true });
      expect(await count('SELECT count(*) AS n FROM marts.zz_roster_lite')).toBe(await count('SELECT count(*) AS n FROM staging.stg_patients'));
      // A second run writes into the table it created (and merges, for incremental).
      expect(failures(await run(['zz_roster_lite']))).toEqual([]);
      expect(await staging()).toBe(before);
      expect(await count('SELECT count(*) AS n FROM marts.zz_roster_lite')).toBe(await count('SELECT count(*) AS n FROM staging.stg_patients'));
    }, 600_000);
  }

  it('with --tenant: the one practice is built into the new table, and the note says the others read nothing yet', async () => {
    writeFileSync(join(w.demo.dir, LITE), lite('view'));
    expect(failures(await run(['zz_roster_lite']))).toEqual([]);
    writeFileSync(join(w.demo.dir, LITE), lite('table'));
    const one = w.demo.tenantIds[0]!;
    const r = await withEnv({ TSFORM_PG_URL: w.ownerUrl }, () => runWorkspace({ projectDir: w.demo.dir, command: 'run', target: 'postgres', select: ['zz_roster_lite'], tenants: [one] }));
    expect(failures(r)).toEqual([]);
    expect(r.results.filter((x) => x.model === 'zz_roster_lite').flatMap((x) => x.notes ?? [])).toContainEqual(
      'zz_roster_lite was a view until this run and is a table now: practices not built in this run read no rows of it until they are',
    );
    expect(await relation('marts.zz_roster_lite')).toEqual({ relkind: 'r', relrowsecurity: true, relforcerowsecurity: true });
    expect(await count(`SELECT count(DISTINCT practice_id) AS n FROM marts.zz_roster_lite`)).toBe(1);
  }, 600_000);

  it('a global model that becomes tenant-scoped: its existing table gets row-level security with the first slice written', async () => {
    const G = 'models/marts/zz_scope.sql';
    writeFileSync(join(w.demo.dir, G), `{{config scope="global"}}
select cast(encounter_class as varchar) as practice_id, cast(encounter_class as varchar) as patient_id from {{ref "encounter_classes"}} where 1 = 0
`);
    expect(failures(await run(['zz_scope']))).toEqual([]);
    expect(await relation('marts.zz_scope')).toEqual({ relkind: 'r', relrowsecurity: false, relforcerowsecurity: false });
    writeFileSync(join(w.demo.dir, G), `{{config scope="tenant"}}
select practice_id, patient_id from {{ref "stg_patients"}}
`);
    expect(failures(await run(['zz_scope']))).toEqual([]);
    expect(await relation('marts.zz_scope')).toEqual({ relkind: 'r', relrowsecurity: true, relforcerowsecurity: true });
    expect(await count('SELECT count(*) AS n FROM marts.zz_scope')).toBe(await count('SELECT count(*) AS n FROM staging.stg_patients'));
  }, 600_000);

  it('a view over the view: TSF403 naming it, nothing written, and --full-refresh then makes the change', async () => {
    writeFileSync(join(w.demo.dir, LITE), lite('view'));
    writeFileSync(join(w.demo.dir, OVER), over);
    expect(failures(await run(['zz_roster_lite+']))).toEqual([]);
    const before = await staging();
    writeFileSync(join(w.demo.dir, LITE), lite('table'));
    const refused = await run(['zz_roster_lite']);
    const mine = refused.results.filter((r) => r.node.startsWith('zz_roster_lite'));
    expect(mine.length).toBeGreaterThan(0);
    for (const r of mine) {
      expect(r.code).toBe('TSF403');
      expect(r.message).toMatch(/zz_roster_lite is a table now and was a view, which views read \(marts\.zz_over_lite\); nothing was written\. Run with --full-refresh/);
    }
    expect(await staging()).toBe(before);
    expect((await relation('marts.zz_roster_lite'))?.relkind).toBe('v');
    expect(failures(await run(['zz_roster_lite+'], true))).toEqual([]);
    expect(await staging()).toBe(before);
    expect((await relation('marts.zz_roster_lite'))?.relkind).toBe('r');
    expect((await relation('marts.zz_over_lite'))?.relkind).toBe('v');
  }, 600_000);
});

describe('a tenant-scoped view that becomes a table, on DuckDB', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(2), files: {} });
    writeFileSync(join(demo.dir, LITE), lite('view'));
  });
  afterAll(() => demo?.remove());

  it('replaces the view with a table (DuckDB refused to write into the view, run after run)', async () => {
    expect(failures(await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+zz_roster_lite'] }))).toEqual([]);
    const staged = (q: (sql: string) => Promise<Record<string, unknown>[]>) => q(STAGING).then((r) => JSON.stringify(r[0]));
    const before = await withWarehouse(demo.dir, staged);
    writeFileSync(join(demo.dir, LITE), lite('table'));
    expect(failures(await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['zz_roster_lite'] }))).toEqual([]);
    const after = await withWarehouse(demo.dir, async (q) => ({
      staging: await staged(q),
      kind: (await q(`SELECT table_type AS t FROM information_schema.tables WHERE table_schema = 'marts' AND table_name = 'zz_roster_lite'`))[0]?.t,
      rows: Number((await q('SELECT count(*) AS n FROM marts.zz_roster_lite'))[0]!.n),
      expected: Number((await q('SELECT count(*) AS n FROM staging.stg_patients'))[0]!.n),
    }));
    expect(after).toEqual({ staging: before, kind: 'BASE TABLE', rows: after.expected, expected: after.expected });
  }, 600_000);
});
