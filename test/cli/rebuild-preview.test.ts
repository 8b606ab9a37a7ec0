import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { cli } from '../support/cli.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/**
 * `tsform ls --rebuilds` says what the next run does with each incremental model's rows, from
 * the same decision the build takes (src/execute/strategies/rebuild-decisions.ts). Each case
 * compares the preview with the notes of the run that follows it, and checks that the preview
 * wrote nothing.
 */

const STG = 'models/staging/stg_encounters.sql';
const GLOBAL = 'models/marts/encounter_class_totals.sql';
const globalModel = (label: string) => `{{config materialized="incremental" unique_key="encounter_class" scope="global"}}
select encounter_class, description, '${label}' as label from {{ref "encounter_classes"}} c
{{#if is_incremental}}
where c.encounter_class not in (select t.encounter_class from {{this}} t)
{{/if}}
`;

interface Previewed {
  model: string;
  practices: number | null;
  built: boolean;
  merged: number;
  full: { deletedUpstream: number; changed: number; unrecorded: number; fresh: number };
}

describe('tsform ls --rebuilds', () => {
  let demo: DemoCopy;
  beforeEach(() => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 4) });
    writeFileSync(join(demo.dir, GLOBAL), globalModel('v1'));
  });
  afterEach(() => demo.remove());

  const run = (select: string[], tenant?: string[]): Promise<RunResults> => runWorkspace({ projectDir: demo.dir, command: 'run', select, ...(tenant ? { tenants: tenant } : {}) });
  const failures = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.code ?? x.status}`);
  const notes = (r: RunResults, model: string) => [...new Set(r.results.filter((x) => x.model === model).flatMap((x) => x.notes ?? []))].filter((n) => n.includes('rebuilt in full')).sort();
  const preview = async (...extra: string[]): Promise<Previewed[]> => {
    const r = await cli('ls', '--project-dir', demo.dir, '--select', 'stg_encounters', 'encounter_class_totals', '--rebuilds', '--output', 'json', ...extra);
    expect(r.code, r.err).toBe(0);
    return r.out.map((l) => JSON.parse(l) as Previewed);
  };
  const text = async () => (await cli('ls', '--project-dir', demo.dir, '--select', 'stg_encounters', 'encounter_class_totals', '--rebuilds')).out;
  const byModel = (p: Previewed[]) => Object.fromEntries(p.map((m) => [m.model, m]));
  const fingerprint = async () => {
    const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      const q = async (sql: string) => JSON.stringify((await db.query(sql)).rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      return [await q('SELECT * FROM tsform_meta.relation_versions ORDER BY ALL'), await q('SELECT count(*) AS n, max(updated_at)::VARCHAR AS m FROM staging.stg_encounters')];
    } finally {
      await db.close();
    }
  };

  it('a warehouse never built says so; a built one merges everything; a changed model is counted per practice, then merged again', async () => {
    expect(await text()).toEqual([expect.stringMatching(/^no version records in this warehouse/)]);
    // and it did not create one
    expect(existsSync(join(demo.dir, 'target/tsform.duckdb'))).toBe(false);
    expect(failures(await run(['+stg_encounters', '+encounter_class_totals']))).toEqual([]);

    const steady = byModel(await preview());
    expect(steady.stg_encounters).toEqual({ model: 'stg_encounters', practices: 4, built: true, merged: 4, full: { deletedUpstream: 0, changed: 0, unrecorded: 0, fresh: 0 } });
    expect(steady.encounter_class_totals).toEqual({ model: 'encounter_class_totals', practices: null, built: true, merged: 1, full: { deletedUpstream: 0, changed: 0, unrecorded: 0, fresh: 0 } });

    writeFileSync(join(demo.dir, STG), `${readFileSync(join(demo.dir, STG), 'utf8')}\n-- reviewed\n`);
    writeFileSync(join(demo.dir, GLOBAL), globalModel('v2'));
    const before = await fingerprint();
    const changed = byModel(await preview());
    expect(changed.stg_encounters!.full.changed).toBe(4);
    expect(changed.stg_encounters!.merged).toBe(0);
    expect(changed.encounter_class_totals!.full.changed).toBe(1);
    expect(await text()).toEqual([
      'encounter_class_totals\tbuilt whole: rebuilt in full (SQL changed here or upstream)',
      'stg_encounters\t4 practice(s): 0 merged, 4 rebuilt in full (4 SQL changed here or upstream), 0 new',
    ]);
    // a preview writes nothing: the records and the rows are as they were
    expect(await fingerprint()).toEqual(before);

    const next = await run(['stg_encounters', 'encounter_class_totals']);
    expect(failures(next)).toEqual([]);
    expect(notes(next, 'stg_encounters')).toEqual(["4 practice(s) rebuilt in full: the model's SQL, or SQL upstream of it, changed since their slice was built"]);
    expect(notes(next, 'encounter_class_totals')).toEqual(['rebuilt in full: its SQL, or SQL upstream of it, changed since it was built']);
    expect(byModel(await preview()).stg_encounters!.merged).toBe(4);
  });

  it('a practice selected but never built is counted as new, one whose record is lost as unrecorded; --tenant limits the count', async () => {
    const [a, b, c, d] = [...demo.tenantIds].sort();
    expect(failures(await run(['+stg_encounters'], [a!, b!, c!]))).toEqual([]);
    const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      await db.query(`DELETE FROM tsform_meta.relation_versions WHERE relation LIKE '%stg_encounters' AND tenant = $1`, [b!]);
    } finally {
      await db.close();
    }
    const all = byModel(await preview()).stg_encounters!;
    expect(all).toMatchObject({ practices: 4, merged: 2, full: { deletedUpstream: 0, changed: 0, unrecorded: 1, fresh: 1 } });
    expect(byModel(await preview('--tenant', b!)).stg_encounters).toMatchObject({ practices: 1, merged: 0, full: { unrecorded: 1, fresh: 0 } });
    expect(byModel(await preview('--tenant', d!)).stg_encounters).toMatchObject({ practices: 1, merged: 0, full: { unrecorded: 0, fresh: 1 } });

    const next = await run(['stg_encounters']);
    expect(failures(next)).toEqual([]);
    // the new practice is built without a note; the one with rows and no record is said
    expect(notes(next, 'stg_encounters')).toEqual(['1 practice(s) rebuilt in full: no record of the SQL their slice was built by (written by another materialization, or before tsform recorded versions)']);
  });

  it('rows already deleted upstream (a source reloaded after the model ran) are counted for their practice', async () => {
    const [, victim] = [...demo.tenantIds].sort();
    expect(failures(await run(['+stg_encounters']))).toEqual([]);
    const file = join(demo.dir, 'data/ehr/encounters.csv.gz');
    const lines = gunzipSync(readFileSync(file)).toString('utf8').split('\n');
    const gone = lines.findIndex((l) => l.startsWith(`${victim},`));
    writeFileSync(file, gzipSync(lines.filter((_, j) => j !== gone).join('\n')));
    expect(failures(await run(['source:ehr.encounters']))).toEqual([]);

    expect(byModel(await preview()).stg_encounters).toMatchObject({ merged: 3, full: { deletedUpstream: 1, changed: 0, unrecorded: 0, fresh: 0 } });
    const next = await run(['stg_encounters']);
    expect(failures(next)).toEqual([]);
    expect(notes(next, 'stg_encounters')).toEqual(['1 practice(s) rebuilt in full: rows were deleted upstream since their slice was built']);
  });

  it('a model not built yet is new for every practice; an unknown target is a coded error', async () => {
    expect(failures(await run(['+stg_patients']))).toEqual([]);
    expect(byModel(await preview()).stg_encounters).toMatchObject({ built: false, merged: 0, full: { fresh: 4 } });
    const bad = await cli('ls', '--project-dir', demo.dir, '--rebuilds', '--target', 'nowhere');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("unknown target 'nowhere'");
  });
});
