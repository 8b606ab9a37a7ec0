import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { Codes } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { withWarehouse } from '../support/research-fixture.ts';
import { asSuperuser, startRlsWarehouse, withEnv, type RlsWarehouse } from '../support/rls-fixture.ts';

/**
 * A model whose column changes type, run without `--full-refresh`: the slice went into the table
 * as it was and the engine cast the new values (`1.7` into an INTEGER column: 2 in every row, a
 * success with no note; red-team, 2026-12-07). Now the write is refused (TSF403, naming the column
 * and `--full-refresh`) and nothing is written; a global table is rebuilt with the new type, as
 * for a changed column list.
 */

const FILE = 'models/marts/zz_typed.sql';
const model = (config: string, value: string) => `{{config ${config}}}\nselect practice_id, patient_id, ${value} as v from {{ref "stg_patients"}}\n`;
const GLOBAL = 'models/marts/zz_typed_global.sql';
const globalModel = (value: string) => `{{config scope="global" materialized="table"}}\nselect count(*) as n, ${value} as v from {{ref "encounter_classes"}}\n`;

type Run = Awaited<ReturnType<typeof runWorkspace>>;
const codesOf = (run: Run, model: string) => [...new Set(run.results.filter((r) => r.model === model).map((r) => `${r.status} ${r.code ?? ''}`.trim()))];
const messageOf = (run: Run, model: string) => run.results.find((r) => r.model === model && r.status === 'error')?.message ?? '';

const CONFIGS = { table: 'materialized="table"', incremental: 'materialized="incremental" unique_key="patient_id"' };

describe('a column whose type changed, on DuckDB', () => {
  let demo: DemoCopy;
  const run = (select: string[], fullRefresh = false) => runWorkspace({ projectDir: demo.dir, command: 'run', select, fullRefresh });
  const values = (rel: string) => withWarehouse(demo.dir, (q) => q(`SELECT DISTINCT CAST(v AS VARCHAR) AS v FROM ${rel} ORDER BY 1`)).then((r) => r.map((x) => String(x.v)));

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
    expect((await runWorkspace({ projectDir: demo.dir, command: 'run' })).results.filter((r) => r.status !== 'success')).toEqual([]);
  }, 600_000);
  afterAll(() => demo?.remove());

  for (const [kind, config] of Object.entries(CONFIGS)) {
    it(`${kind}: refused with TSF403 naming the column, nothing written; --full-refresh takes the new type`, async () => {
      writeFileSync(join(demo.dir, FILE), model(config, '1'));
      expect(codesOf(await run(['zz_typed'], true), 'zz_typed')).toEqual(['success']);
      writeFileSync(join(demo.dir, FILE), model(config, '1.7'));
      const changed = await run(['zz_typed']);
      expect(codesOf(changed, 'zz_typed')).toEqual([`error ${Codes.schemaChanged}`]);
      expect(messageOf(changed, 'zz_typed')).toMatch(/column type changed \(v: integer → decimal\(2,1\)\); nothing was written.* --full-refresh/);
      expect(await values('marts.zz_typed')).toEqual(['1']);
      expect(codesOf(await run(['zz_typed'], true), 'zz_typed')).toEqual(['success']);
      expect(await values('marts.zz_typed')).toEqual(['1.7']);
    }, 300_000);
  }

  it('a global table is rebuilt with the new type', async () => {
    writeFileSync(join(demo.dir, GLOBAL), globalModel('1'));
    expect(codesOf(await run(['zz_typed_global']), 'zz_typed_global')).toEqual(['success']);
    writeFileSync(join(demo.dir, GLOBAL), globalModel('1.7'));
    expect(codesOf(await run(['zz_typed_global']), 'zz_typed_global')).toEqual(['success']);
    expect(await values('marts.zz_typed_global')).toEqual(['1.7']);
  }, 300_000);
});

describe('a column whose type changed, on PostgreSQL', () => {
  let w: RlsWarehouse;
  const run = (select: string[], fullRefresh = false) =>
    withEnv({ TSFORM_PG_URL: w.ownerUrl }, () => runWorkspace({ projectDir: w.demo.dir, command: 'run', target: 'postgres', select, fullRefresh }));
  const values = () => asSuperuser(w.superUrl, async (c) => (await c.query(`SELECT DISTINCT v::text AS v FROM marts.zz_typed ORDER BY 1`)).rows.map((r) => String(r.v)));

  beforeAll(async () => {
    w = await startRlsWarehouse({ tenants: 2, files: { [FILE]: model(CONFIGS.table, '1') } });
  }, 600_000);
  afterAll(async () => {
    await w?.stop();
  });

  it('table: refused with TSF403, nothing written; --full-refresh takes the new type', async () => {
    writeFileSync(join(w.demo.dir, FILE), model(CONFIGS.table, '1.7'));
    const changed = await run(['zz_typed']);
    expect(codesOf(changed, 'zz_typed')).toEqual([`error ${Codes.schemaChanged}`]);
    expect(messageOf(changed, 'zz_typed')).toMatch(/column type changed \(v: integer → numeric\); nothing was written/);
    expect(await values()).toEqual(['1']);
    expect(codesOf(await run(['zz_typed'], true), 'zz_typed')).toEqual(['success']);
    expect(await values()).toEqual(['1.7']);
  }, 600_000);
});
