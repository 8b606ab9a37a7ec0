/**
 * Which practice a batched row belongs to is read from the column named as the tenant column,
 * and the runner checks only that it is a practice of the batch. Found in the thirty-third
 * session: each of these compiled clean at d349ae8 and, run in a batch of 50 on DuckDB, put the
 * encounter ids of the batch's other practices into one practice's slice (716 rows for a
 * practice with one encounter), readable by that practice's users:
 *  - a UNION arm with another value in the tenant column's position (arms match by position, and
 *    the second arm's column had no name, so it was not checked);
 *  - a column-alias list renaming a literal to practice_id (`x(practice_id, g)`, `with t(practice_id, g)`);
 *  - `r.*` or `*` over a seed that has a practice_id column (`select *` put the seed's first).
 * The rest compiled clean too and follow from how the engines name columns (not run end to end):
 * an unqualified practice_id that resolves to a seed's column; DuckDB's select-list expansions
 * (`columns('practice_id|g')`, `unnest(struct)`, `s.*` and `t.s.*` of a struct column: the
 * names come from the data, checked in DuckDB); on PostgreSQL an output without an alias is
 * named after its column (`r.practice_id::varchar`, `(select r.practice_id …)`).
 * Compile now refuses them (TSF231); the batch-safe forms below still compile and give, run in
 * batches, exactly the rows of one statement per practice.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { compileModel, shown, type ProbeSeed } from '../support/model-probe.ts';

const SE = '{{ref "stg_encounters"}}';
const SP = '{{ref "stg_patients"}}';
const R = '{{ref "practice_regions"}}';
const MART = 'models/marts/x_labels.sql';
const REGIONS: ProbeSeed = { name: 'practice_regions', rows: [['practice_id', 'region'], ['p_2e1eaaf1eb', 'north']] };

const compile = (sql: string) => compileModel(MART, sql, { practice_id: 'none', g: 'none' }, [], [REGIONS]);

const relabelling: [string, string][] = [
  ['a literal in a UNION arm', `select e.practice_id, e.encounter_id as g from ${SE} e union all select 'p_2e1eaaf1eb', e.encounter_id from ${SE} e`],
  ['a UNION arm with its practice in another position', `select e.practice_id, e.encounter_id as g from ${SE} e union all select r.region as g, e.practice_id from ${SE} e cross join ${R} r`],
  ['a UNION inside a derived table', `select x.practice_id, x.g from (select e.practice_id, e.encounter_id as g from ${SE} e union all select 'p_2e1eaaf1eb', e.patient_id from ${SE} e) x`],
  ['an EXCEPT arm of another practice', `select e.practice_id, e.patient_id as g from ${SE} e except select 'p_2e1eaaf1eb', e.patient_id from ${SE} e`],
  ['a UNION with * in an arm', `select * from ${SE} e union all select * from ${SE} e2`],
  ['a derived table renamed by position', `select x.practice_id, x.g from (select 'p_2e1eaaf1eb', e.encounter_id from ${SE} e) as x(practice_id, g)`],
  ['a derived table whose columns are swapped by its alias list', `select x.practice_id, x.g from (select e.encounter_id, e.practice_id from ${SE} e) x(practice_id, g)`],
  ['a CTE renamed by position', `with t(practice_id, g) as (select 'p_2e1eaaf1eb', e.encounter_id from ${SE} e) select practice_id, g from t`],
  ['a relation renamed by position', `select e.practice_id, e.encounter_id as g from ${SE} as e(encounter_id, practice_id)`],
  ['a seed with a practice_id column, by alias.*', `select r.*, e.encounter_id as g from ${SE} e cross join ${R} r`],
  ['a seed with a practice_id column, first under *', `select * from ${R} r cross join ${SE} e`],
  ['an unqualified practice_id that is the seed\'s', `select practice_id, x.g from (select e.encounter_id as g from ${SE} e) x cross join ${R} r`],
  ['a seed\'s practice_id cast (named practice_id on PostgreSQL)', `select r.practice_id::varchar, e.encounter_id as g from ${SE} e cross join ${R} r`],
  ['a sub-select of a seed\'s practice_id (named practice_id on PostgreSQL)', `select (select r.practice_id from ${R} r), e.encounter_id as g from ${SE} e`],
  ['a practice_id over no input, beside a sub-select of every practice', `select 'p_2e1eaaf1eb' as practice_id, (select string_agg(e.encounter_id, ',') from ${SE} e) as g`],
  ['VALUES renamed to practice_id', `select v.practice_id, e.encounter_id as g from ${SE} e cross join (values ('p_2e1eaaf1eb')) v(practice_id)`],
  // DuckDB turns one select-list item into columns it names at run time.
  ['DuckDB COLUMNS(…) picking the seed\'s practice_id', `select columns('practice_id|g') from (select e.encounter_id as g from ${SE} e) x cross join ${R} r`],
  ['unnest of a struct in the select list (DuckDB names its fields)', `select unnest(struct_pack(practice_id := 'p_2e1eaaf1eb')) as y, e.encounter_id as g from ${SE} e`],
  ['a struct column expanded by s.*', `select s.*, e.encounter_id as g from ${SE} e cross join (select struct_pack(practice_id := 'p_2e1eaaf1eb') as s) t`],
  ['a struct column expanded by t.s.*', `select t.s.*, e.encounter_id as g from ${SE} e cross join (select struct_pack(practice_id := 'p_2e1eaaf1eb') as s) t`],
  ['a struct expanded by (t.s).*', `select (t.s).*, e.encounter_id as g from ${SE} e cross join (select struct_pack(practice_id := 'p_2e1eaaf1eb') as s) t`],
  ['an unqualified practice_id that is a table function\'s', `select practice_id, x.g from (select e.encounter_id as g from ${SE} e) x cross join unnest(array['p_2e1eaaf1eb']) as practice_id`],
];

/** Batch-safe, and run below against one statement per practice. */
const SAFE: Record<string, string> = {
  x_union_arms: `select e.practice_id, e.encounter_id as g from ${SE} e union all select e2.practice_id as pid, e2.patient_id from ${SE} e2`,
  x_using_bare: `select practice_id, e.encounter_id as g, r.region from ${SE} e join ${R} r using (practice_id)`,
  x_using_star: `select * from ${SE} e left join ${R} r using (practice_id)`,
  x_alias_list: `select x.practice_id, x.g from (select e.practice_id, e.encounter_id from ${SE} e) x(practice_id, g)`,
  x_cte_alias_list: `with t(practice_id, g) as (select e.practice_id, e.encounter_id from ${SE} e) select practice_id, g from t`,
  x_from_unnest: `select e.practice_id, u.x as g from ${SE} e cross join unnest(array[1, 2]) as u(x)`,
  x_star_two: `select e.*, p.birth_date from ${SE} e join ${SP} p on p.practice_id = e.practice_id and p.patient_id = e.patient_id`,
};

describe('a batched row carries its own practice, whatever names the column (TSF231)', () => {
  it.each(relabelling)('%s is refused at its line', (_what, sql) => {
    const errors = compile(sql);
    const found = errors.filter((e) => e.code === 'TSF231');
    expect(found.length, shown(errors)).toBeGreaterThan(0);
    expect(found.every((e) => e.file === MART && typeof e.line === 'number')).toBe(true);
  });

  it.each(Object.entries(SAFE))('%s compiles', (_name, sql) => {
    const errors = compile(sql);
    expect(errors.filter((e) => e.code === 'TSF231'), shown(errors)).toEqual([]);
  });

  const copies: DemoCopy[] = [];
  afterAll(() => copies.forEach((c) => c.remove()));

  it('the accepted forms give, in batches, exactly the rows of one statement per practice (DuckDB)', async () => {
    const make = (batchSize: number) => {
      const copy = copyDemoProject({ tenants: sampleTenants(20) });
      copies.push(copy);
      const regions = copy.tenantIds.filter((_, i) => i % 3 === 0).map((id, i) => `${id},r${i % 2}`);
      writeFileSync(join(copy.dir, 'seeds/practice_regions.csv'), `practice_id,region\n${regions.join('\n')}\n`);
      mkdirSync(join(copy.dir, 'models/marts/labels'), { recursive: true });
      for (const [name, sql] of Object.entries(SAFE)) writeFileSync(join(copy.dir, `models/marts/labels/${name}.sql`), `${sql}\n`);
      const yml = join(copy.dir, 'tsform.yml');
      writeFileSync(yml, readFileSync(yml, 'utf8').replace(/batch:\n\s+size: \d+/, `batch:\n  size: ${batchSize}`));
      return copy;
    };
    const batched = make(50);
    const single = make(1);
    const select = ['+path:models/marts/labels'];
    const a = await runWorkspace({ projectDir: batched.dir, command: 'run', select });
    const b = await runWorkspace({ projectDir: single.dir, command: 'run', select });
    const failed = (r: typeof a) => r.results.filter((x) => x.status !== 'success').map((x) => `${x.node}: ${x.message}`);
    expect(failed(a)).toEqual([]);
    expect(failed(b)).toEqual([]);
    expect(Math.max(...a.results.map((r) => r.batch_size ?? 1))).toBeGreaterThan(1);
    expect(await slices(batched.dir)).toEqual(await slices(single.dir));
  });
});

/** Rows per practice of each accepted model: count and a hash of the rows (no values). */
async function slices(dir: string): Promise<Record<string, unknown[]>> {
  const db = await DuckDBAdapter.open({ path: join(dir, 'target/tsform.duckdb'), connections: 1 });
  try {
    const out: Record<string, unknown[]> = {};
    for (const name of Object.keys(SAFE)) {
      out[name] = (await db.query(`SELECT practice_id, count(*) AS n, sum(hash(t)) AS h FROM marts.${name} t GROUP BY 1 ORDER BY 1`)).rows;
    }
    return out;
  } finally {
    await db.close();
  }
}
