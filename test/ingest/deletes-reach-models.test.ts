import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace, type RunRequest } from '../../src/cli/api.ts';
import type { OltpFixture, OltpTemplate } from './support/capture-fixture.ts';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, templateOfFirstPractices, startSmallOltp, withWarehouse, type SmallOltp } from './support/capture-project.ts';

/**
 * Issue 14: a row the OLTP no longer has for a practice (soft or hard deleted, or moved to another
 * practice) leaves raw AND every model built from it, incremental ones included, without the
 * analyst writing any delete logic (src/warehouse/deletion-epochs.ts).
 */

const INCREMENTAL = (from: string) => `{{config materialized="incremental" unique_key="encounter_id" batch_incremental=true}}
select practice_id, encounter_id, patient_id, updated_at
from ${from} e
{{#if is_incremental}}
where e.updated_at > coalesce((select max(t.updated_at) from {{this}} t where t.practice_id = e.practice_id), timestamptz '-infinity')
{{/if}}
`;

const MODELS: Record<string, string> = {
  // the shape: an incremental staging model straight from the captured source
  'inc_encounters.sql': INCREMENTAL('{{source "ehr" "encounters"}}'),
  // read through a view: the view is not stored, its upstream is
  'enc_view.sql': `{{config materialized="view"}}\nselect * from {{ref "inc_encounters"}}\n`,
  'inc_downstream.sql': INCREMENTAL('{{ref "enc_view"}}'),
  'enc_table.sql': `select practice_id, count(*) as n from {{ref "inc_encounters"}} group by practice_id\n`,
};

const MODEL_NAMES = ['inc_encounters', 'inc_downstream'] as const;

describe('deletes reach incremental models (watermark capture into DuckDB)', () => {
  let template: OltpTemplate;
  let oltp: OltpFixture;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];

  beforeAll(async () => {
    ({ template, tenants } = await templateOfFirstPractices(4));
  });
  afterAll(async () => {
    await template?.stop();
  });
  beforeEach(async () => {
    oltp = await template.fresh();
    project = copyCaptureProject(tenants);
    // the fixture's sources.yml lists four columns; the incremental filter needs updated_at
    for (const [file, sql] of Object.entries(MODELS)) writeFileSync(join(project.dir, 'models', file), sql);
    const sources = join(project.dir, 'models', 'sources.yml');
    writeFileSync(
      sources,
      readFileSync(sources, 'utf8').replace('          - { name: encounter_class, phi: none }', '          - { name: encounter_class, phi: none }\n          - { name: updated_at, phi: none }'),
    );
  });
  afterEach(async () => {
    project?.remove();
    await oltp?.stop();
  });

  const run = (extra: Partial<RunRequest> = {}): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', openOltp: openOltpAt(oltp.url), ...extra });
  const notOk = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.status} ${x.code ?? ''}`);

  /** Per model, the practices whose set of encounter ids differs from the OLTP's live rows. */
  async function modelsDiffer(models: readonly string[] = MODEL_NAMES): Promise<string[]> {
    const live = await oltp.admin.query(`SELECT practice_id, encounter_id FROM oltp.encounters WHERE deleted_at IS NULL`);
    const want = new Set(live.rows.map((r) => `${String(r.practice_id)}|${String(r.encounter_id)}`));
    return withWarehouse(project.dir, async (wh) => {
      const out: string[] = [];
      for (const m of models) {
        const { rows } = await wh.query(`SELECT practice_id, encounter_id FROM marts.${m}`);
        const have = new Set(rows.map((r) => `${String(r.practice_id)}|${String(r.encounter_id)}`));
        const extra = [...have].filter((k) => !want.has(k)).length;
        const missing = [...want].filter((k) => !have.has(k)).length;
        if (extra + missing > 0) out.push(`${m}: ${extra} extra, ${missing} missing`);
      }
      const counts = await wh.query(`SELECT sum(n) AS n FROM marts.enc_table`);
      if (models === MODEL_NAMES && Number(counts.rows[0]!.n) !== want.size) out.push(`enc_table: ${String(counts.rows[0]!.n)} rows counted, ${want.size} live`);
      return out;
    });
  }

  const someEncounter = async (tenant: string): Promise<string> =>
    String((await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 1`, [tenant])).rows[0]!.encounter_id);

  it.each([
    ['a soft delete', `UPDATE oltp.encounters SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND encounter_id = $2`],
    // the demo OLTP turns a DELETE into a soft delete (its trigger), as many EHRs do
    ['a DELETE the OLTP keeps as a soft delete', `DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id = $2`],
  ])('%s leaves raw and every incremental model; the other practices still merge', async (_, sql) => {
    expect(notOk(await run())).toEqual([]);
    expect(await modelsDiffer()).toEqual([]);
    const [a] = tenants;
    await oltp.admin.query(sql, [a!, await someEncounter(a!)]);
    const second = await run();
    expect(notOk(second)).toEqual([]);
    expect(await withWarehouse(project.dir, (wh) => rawDiffers(oltp.admin, wh, 'encounters', tenants))).toEqual([]);
    expect(await modelsDiffer()).toEqual([]);
    const notes = new Set(second.results.filter((r) => r.model === 'inc_encounters').flatMap((r) => r.notes ?? []));
    expect([...notes].filter((n) => n.includes('rebuilt in full'))).toEqual([expect.stringContaining('1 practice(s) rebuilt in full')]);
    // a third run with nothing deleted merges everywhere
    const third = await run();
    expect(third.results.filter((r) => r.model === 'inc_encounters').flatMap((r) => r.notes ?? []).filter((n) => n.includes('rebuilt'))).toEqual([]);
  });

  it('a model built from a stale intermediate does not claim the deletion: it loses the row once the intermediate has', async () => {
    expect(notOk(await run())).toEqual([]);
    const [a] = tenants;
    const gone = await someEncounter(a!);
    await oltp.admin.query(`UPDATE oltp.encounters SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND encounter_id = $2`, [a!, gone]);
    expect(notOk(await run({ select: ['source:ehr.encounters'] }))).toEqual([]);
    // inc_encounters still holds the row, so inc_downstream rightly keeps it
    expect(notOk(await run({ select: ['inc_downstream'] }))).toEqual([]);
    expect(await modelsDiffer(['inc_downstream'])).toEqual(['inc_downstream: 1 extra, 0 missing']);
    expect(notOk(await run())).toEqual([]);
    expect(await modelsDiffer()).toEqual([]);
  });

  it('a row moved to another practice leaves the old practice: raw and models hold it once, in the new one', async () => {
    expect(notOk(await run())).toEqual([]);
    const [a, b] = tenants;
    const moved = await someEncounter(a!);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = $3`, [a!, b!, moved]);
    const second = await run();
    expect(notOk(second)).toEqual([]);
    expect(await withWarehouse(project.dir, (wh) => rawDiffers(oltp.admin, wh, 'encounters', tenants))).toEqual([]);
    expect(await modelsDiffer()).toEqual([]);
    const holders = await withWarehouse(project.dir, async (wh) => (await wh.query(`SELECT practice_id FROM raw.encounters WHERE encounter_id = $1`, [moved])).rows.map((r) => String(r.practice_id)));
    expect(holders).toEqual([b]);
  });

  it('the same id in two practices (the OLTP key is (practice_id, id)) is two rows, not a move', async () => {
    expect(notOk(await run())).toEqual([]);
    const [a, b] = tenants;
    const shared = await someEncounter(a!);
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
       VALUES ($1, $2, 'pat-x', 'wellness', 'same id', now(), 1, now())`,
      [b!, shared],
    );
    expect(notOk(await run())).toEqual([]);
    expect(await withWarehouse(project.dir, (wh) => rawDiffers(oltp.admin, wh, 'encounters', tenants))).toEqual([]);
    expect(await modelsDiffer()).toEqual([]);
  });
});

describe('deletes and moves reach incremental models (PostgreSQL OLTP → PostgreSQL warehouse)', () => {
  let oltp: SmallOltp;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures']);
    tenants = (await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 4`)).rows.map((r) => String(r.practice_id));
    project = copyCaptureProject(tenants);
    for (const [file, sql] of Object.entries(MODELS)) writeFileSync(join(project.dir, 'models', file), sql);
    process.env.TSFORM_PG_URL = oltp.server.url;
  });
  afterAll(async () => {
    delete process.env.TSFORM_PG_URL;
    project?.remove();
    await oltp?.stop();
  });

  const run = (): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', target: 'postgres', openOltp: openOltpAt(oltp.server.url) });
  const notOk = (r: RunResults) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.status} ${x.code ?? ''}`);

  async function differs(wh: Adapter): Promise<string[]> {
    const live = await oltp.admin.query(`SELECT practice_id, encounter_id FROM oltp.encounters WHERE deleted_at IS NULL AND practice_id = ANY($1::text[])`, [tenants]);
    const want = new Set(live.rows.map((r) => `${String(r.practice_id)}|${String(r.encounter_id)}`));
    const out = await rawDiffers(oltp.admin, wh, 'encounters', tenants);
    for (const m of MODEL_NAMES) {
      const have = new Set((await wh.query(`SELECT practice_id, encounter_id FROM marts.${m}`)).rows.map((r) => `${String(r.practice_id)}|${String(r.encounter_id)}`));
      const extra = [...have].filter((k) => !want.has(k)).length;
      const missing = [...want].filter((k) => !have.has(k)).length;
      if (extra + missing > 0) out.push(`${m}: ${extra} extra, ${missing} missing`);
    }
    return out;
  }

  it('a soft delete, a move and an id two practices share: raw and every model equal the OLTP', async () => {
    expect(notOk(await run())).toEqual([]);
    expect(await differs(oltp.admin)).toEqual([]);
    const [a, b, c] = tenants;
    const ids = (await oltp.admin.query(`SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 3`, [a!])).rows.map((r) => String(r.encounter_id));
    await oltp.admin.query(`UPDATE oltp.encounters SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND encounter_id = $2`, [a!, ids[0]!]);
    await oltp.admin.query(`UPDATE oltp.encounters SET practice_id = $2, updated_at = now() WHERE practice_id = $1 AND encounter_id = $3`, [a!, b!, ids[1]!]);
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
       VALUES ($1, $2, 'pat-x', 'wellness', 'same id', now(), 1, now())`,
      [c!, ids[2]!],
    );
    expect(notOk(await run())).toEqual([]);
    expect(await differs(oltp.admin)).toEqual([]);
  });
});
