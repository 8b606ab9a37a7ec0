import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { cli } from '../support/cli.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * An incremental model merges only into slices its current SQL built
 * (src/warehouse/relation-versions.ts). The PHI gate exempts an `is_incremental` high-water test
 * because `{{this}}` holds what that SQL selected; a table left by an earlier version of the model
 * could hold a planted bound (a far-future `updated_at` loads nobody new, one just below a
 * person's last record loads that person alone). Each case below would merge over the old rows
 * without the check.
 */

const STG = 'models/staging/stg_encounters.sql';
const PLANTED = '2999-01-01 00:00:00+00';

describe('incremental models rebuild slices built by other SQL', () => {
  let demo: DemoCopy;
  let original: string;

  beforeEach(() => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3) });
    original = readFileSync(join(demo.dir, STG), 'utf8');
  });
  afterEach(() => demo.remove());

  const run = (select = ['+stg_encounters']): Promise<RunResults> => runWorkspace({ projectDir: demo.dir, command: 'run', select });
  const failures = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.code ?? x.status}`);
  const rebuildNotes = (r: RunResults, model = 'stg_encounters') =>
    [...new Set(r.results.filter((x) => x.model === model).flatMap((x) => x.notes ?? []))].filter((n) => n.includes('rebuilt in full')).sort();
  const warehouse = async <T,>(fn: (db: DuckDBAdapter) => Promise<T>): Promise<T> => {
    const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  const one = (db: DuckDBAdapter, sql: string) => db.query(sql).then((r) => r.rows[0]!);
  /** The model's rows against the source's, and how many hold the planted bound. */
  const state = () =>
    warehouse(async (db) => ({
      rows: Number((await one(db, 'SELECT count(*) AS n FROM staging.stg_encounters')).n),
      source: Number((await one(db, 'SELECT count(*) AS n FROM raw.encounters')).n),
      planted: Number((await one(db, `SELECT count(*) AS n FROM staging.stg_encounters WHERE updated_at >= TIMESTAMPTZ '${PLANTED}'`)).n),
    }));
  /** A row no source has, written into one practice's slice: a merge keeps it, a rebuild drops it. */
  const mark = (tenant: string) =>
    warehouse((db) =>
      db.query(`INSERT INTO staging.stg_encounters (practice_id, encounter_id, patient_id, updated_at) VALUES ($1, 'marker-enc', 'marker-pat', TIMESTAMPTZ '2000-01-01 00:00:00+00')`, [tenant]),
    );
  const marked = () => warehouse(async (db) => Number((await one(db, `SELECT count(*) AS n FROM staging.stg_encounters WHERE encounter_id = 'marker-enc'`)).n));

  it('a table left by an earlier version (here a table model planting its bound) is rebuilt, not merged into', async () => {
    writeFileSync(join(demo.dir, STG), original.replace('{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}', '').replace(/\{\{#if is_incremental\}\}[\s\S]*\{\{\/if\}\}/, '').replace('  e.updated_at\n', `  timestamptz '${PLANTED}' as updated_at\n`));
    expect(failures(await run())).toEqual([]);
    const planted = await state();
    expect(planted.planted).toBe(planted.source);

    writeFileSync(join(demo.dir, STG), original);
    const second = await run();
    expect(failures(second)).toEqual([]);
    expect(rebuildNotes(second)).toEqual(['3 practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)']);
    expect(await state()).toEqual({ rows: planted.source, source: planted.source, planted: 0 });
  });

  it('a change to the SQL rebuilds every slice once; an unchanged model merges and rebuilds nothing', async () => {
    const first = await run();
    expect(failures(first)).toEqual([]);
    // the first build of each practice is not a rebuild, whatever order the batches took
    expect(rebuildNotes(first)).toEqual([]);
    await mark(demo.tenantIds[0]!);
    const same = await run();
    expect(rebuildNotes(same)).toEqual([]);
    expect(await marked()).toBe(1);

    // v2 writes descriptions in capitals; v3 (the original again) must rewrite the old rows too
    const capitals = `SELECT count(*) AS n FROM staging.stg_encounters WHERE encounter_description <> upper(encounter_description)`;
    writeFileSync(join(demo.dir, STG), original.replace('e.description as encounter_description', 'upper(e.description) as encounter_description'));
    const v2 = await run();
    expect(failures(v2)).toEqual([]);
    expect(rebuildNotes(v2)).toEqual(["3 practice(s) rebuilt in full: the model's SQL, or SQL upstream of it, changed since their slice was built"]);
    expect(await marked()).toBe(0);
    expect(Number((await warehouse((db) => one(db, capitals))).n)).toBe(0);
    expect(rebuildNotes(await run())).toEqual([]);

    writeFileSync(join(demo.dir, STG), original);
    const v3 = await run();
    expect(rebuildNotes(v3)).toEqual(["3 practice(s) rebuilt in full: the model's SQL, or SQL upstream of it, changed since their slice was built"]);
    const after = await state();
    expect(after.rows).toBe(after.source);
    expect(Number((await warehouse((db) => one(db, capitals))).n)).toBeGreaterThan(0);
  });

  // The population attack through an upstream model: a staging table that kept one class of
  // encounters while nothing published read it, then all of them. An unchanged incremental model
  // merging on would hold the first population's old rows and everyone's new ones only.
  it('a change upstream (a table model the incremental model reads) rebuilds its slices too', async () => {
    const base = (filter: string) => `{{config materialized="table"}}
select practice_id, encounter_id, patient_id, encounter_class, updated_at from {{source "ehr" "encounters"}} e ${filter}
`;
    const inc = `{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}
select b.practice_id, b.encounter_id, b.patient_id, b.encounter_class, b.updated_at from {{ref "enc_base"}} b
{{#if is_incremental}}
left join (select t.practice_id, max(t.updated_at) as high_water from {{this}} t group by t.practice_id) hw on hw.practice_id = b.practice_id
where b.updated_at > coalesce(hw.high_water, timestamptz '-infinity')
{{/if}}
`;
    writeFileSync(join(demo.dir, 'models/staging/enc_base.sql'), base("where e.encounter_class = 'wellness'"));
    writeFileSync(join(demo.dir, 'models/staging/enc_inc.sql'), inc);
    const select = ['+enc_inc'];
    expect(failures(await run(select))).toEqual([]);
    const classes = () => warehouse(async (db) => Number((await one(db, 'SELECT count(DISTINCT encounter_class) AS n FROM staging.enc_inc')).n));
    expect(await classes()).toBe(1);
    writeFileSync(join(demo.dir, 'models/staging/enc_base.sql'), base(''));
    const second = await run(select);
    expect(failures(second)).toEqual([]);
    expect(rebuildNotes(second, 'enc_inc')).toEqual(["3 practice(s) rebuilt in full: the model's SQL, or SQL upstream of it, changed since their slice was built"]);
    const all = await warehouse(async (db) => ({
      inc: Number((await one(db, 'SELECT count(*) AS n FROM staging.enc_inc')).n),
      source: Number((await one(db, 'SELECT count(*) AS n FROM raw.encounters')).n),
    }));
    expect(all.inc).toBe(all.source);
    expect(await classes()).toBeGreaterThan(1);
  });

  it('incremental, then a table model planting its bound, then incremental with the first SQL again: rebuilt, not merged into', async () => {
    expect(failures(await run())).toEqual([]);
    writeFileSync(join(demo.dir, STG), original.replace('{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}', '').replace(/\{\{#if is_incremental\}\}[\s\S]*\{\{\/if\}\}/, '').replace('  e.updated_at\n', `  timestamptz '${PLANTED}' as updated_at\n`));
    expect(failures(await run())).toEqual([]);
    expect((await state()).planted).toBeGreaterThan(0);
    writeFileSync(join(demo.dir, STG), original);
    const back = await run();
    expect(failures(back)).toEqual([]);
    expect(rebuildNotes(back)).toEqual(['3 practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)']);
    const after = await state();
    expect(after).toEqual({ rows: after.source, source: after.source, planted: 0 });
  });

  it('--full-refresh records the current SQL: the next run merges, with no rebuild', async () => {
    expect(failures(await run())).toEqual([]);
    const refreshed = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters'], fullRefresh: true });
    expect(failures(refreshed)).toEqual([]);
    expect(rebuildNotes(refreshed)).toEqual([]);
    await mark(demo.tenantIds[0]!);
    expect(rebuildNotes(await run())).toEqual([]);
    expect(await marked()).toBe(1);
  });

  it('a practice whose record is lost is rebuilt; the others still merge', async () => {
    expect(failures(await run())).toEqual([]);
    const [lost, kept] = demo.tenantIds as [string, string];
    await mark(lost);
    await mark(kept);
    await warehouse((db) => db.query(`DELETE FROM tsform_meta.relation_versions WHERE tenant = $1`, [lost]));
    const second = await run();
    expect(rebuildNotes(second)).toEqual(['1 practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)']);
    const markers = await warehouse((db) => db.query(`SELECT practice_id FROM staging.stg_encounters WHERE encounter_id = 'marker-enc'`));
    expect(markers.rows.map((r) => r.practice_id)).toEqual([kept]);
  });

  it('a global incremental model: rebuilt whole when its SQL changed, merged when not', async () => {
    const model = (label: string) => `{{config materialized="incremental" unique_key="encounter_class" scope="global"}}
select encounter_class, description, '${label}' as label from {{ref "encounter_classes"}} c
{{#if is_incremental}}
where c.encounter_class not in (select t.encounter_class from {{this}} t)
{{/if}}
`;
    const file = join(demo.dir, 'models/marts/encounter_class_totals.sql');
    const run = () => runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+encounter_class_totals'] });
    writeFileSync(file, model('v1'));
    expect(failures(await run())).toEqual([]);
    const labels = () => warehouse(async (db) => (await db.query('SELECT DISTINCT label FROM marts.encounter_class_totals ORDER BY 1')).rows.map((r) => r.label));
    expect(await labels()).toEqual(['v1']);
    const same = await run();
    expect(rebuildNotes(same, 'encounter_class_totals')).toEqual([]);
    writeFileSync(file, model('v2'));
    const changed = await run();
    expect(failures(changed)).toEqual([]);
    expect(rebuildNotes(changed, 'encounter_class_totals')).toEqual(['rebuilt in full: its SQL, or SQL upstream of it, changed since it was built']);
    // merged, the old rows would have kept their label: no class is new
    expect(await labels()).toEqual(['v2']);
  });
});

describe('on PostgreSQL: a planted bound and a changed model', () => {
  let server: ThrowawayPostgres;
  let demo: DemoCopy;
  let url: string;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
    url = (await server.createDatabase()).url;
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 2) });
  }, 300_000);
  afterAll(async () => {
    demo?.remove();
    await server?.stop();
  });

  const run = () => runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: { ...process.env, TSFORM_PG_URL: url }, select: ['+stg_encounters'] });
  const counts = async () => {
    const a = await createPostgresAdapter({ url, poolSize: 1 });
    try {
      const n = async (sql: string) => Number((await a.query(sql)).rows[0]!.n);
      return {
        rows: await n('SELECT count(*) AS n FROM staging.stg_encounters'),
        source: await n('SELECT count(*) AS n FROM raw.encounters'),
        planted: await n(`SELECT count(*) AS n FROM staging.stg_encounters WHERE updated_at >= TIMESTAMPTZ '${PLANTED}'`),
      };
    } finally {
      await a.close();
    }
  };

  it('rebuilds the planted slices, then merges once the record is current', async () => {
    const original = readFileSync(join(demo.dir, STG), 'utf8');
    writeFileSync(join(demo.dir, STG), original.replace('{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}', '').replace(/\{\{#if is_incremental\}\}[\s\S]*\{\{\/if\}\}/, '').replace('  e.updated_at\n', `  timestamptz '${PLANTED}' as updated_at\n`));
    const first = await run();
    expect(first.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    expect((await counts()).planted).toBeGreaterThan(0);
    writeFileSync(join(demo.dir, STG), original);
    // `tsform ls --rebuilds` (test/cli/rebuild-preview.test.ts) reads the same on PostgreSQL
    const preview = async () => {
      const saved = process.env.TSFORM_PG_URL;
      process.env.TSFORM_PG_URL = url;
      try {
        const r = await cli('ls', '--project-dir', demo.dir, '--select', 'stg_encounters', '--rebuilds', '--target', 'postgres');
        expect(r.code, r.err).toBe(0);
        return r.out;
      } finally {
        if (saved === undefined) delete process.env.TSFORM_PG_URL;
        else process.env.TSFORM_PG_URL = saved;
      }
    };
    expect(await preview()).toEqual(['stg_encounters\t2 practice(s): 0 merged, 2 rebuilt in full (2 no record of the SQL that built them), 0 new']);
    const notes = async () => [...new Set((await run()).results.filter((r) => r.model === 'stg_encounters').flatMap((r) => r.notes ?? []))].filter((n) => n.includes('rebuilt in full'));
    expect(await notes()).toEqual(['2 practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)']);
    const after = await counts();
    expect(after).toEqual({ rows: after.source, source: after.source, planted: 0 });
    expect(await preview()).toEqual(['stg_encounters\t2 practice(s): 2 merged, 0 rebuilt in full, 0 new']);
    expect(await notes()).toEqual([]);
  }, 300_000);
});
