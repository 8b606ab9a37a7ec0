import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { Project } from '../../src/project/types.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * Practices share a statement in batches (DESIGN §6), and the runner checks only that each row
 * it writes carries a practice of the batch. Found in the eighteenth session: `min(p.practice_id)
 * over () as practice_id` in a mart compiled clean and, run over a batch, put every patient of
 * the batch under one practice, readable by that practice's users. Compile now refuses (TSF231)
 * every way a model can mix the practices of a batch, and accepts the batch-safe forms the demo
 * uses.
 */
const base = loadProject(REPO_ROOT);
const MART = 'models/marts/x_mix.sql';

function compileWith(sql: string, edit?: (p: Project) => void): Diagnostic[] {
  const project = structuredClone(base);
  project.models.push({ name: 'x_mix', file: MART, sql: `${sql}\n`, line: 1 });
  edit?.(project);
  return compileErrors(project);
}

const P = '{{ref "stg_patients"}}';
const E = '{{ref "stg_encounters"}}';

const mixing: [string, string][] = [
  ['a window relabelling every row', `select min(p.practice_id) over () as practice_id, p.first_name, p.ssn from ${P} p`],
  ['a sub-select choosing the practice', `select (select max(x.practice_id) from ${P} x) as practice_id, p.first_name from ${P} p`],
  ['a computed practice', `select coalesce(p.practice_id, 'x') as practice_id from ${P} p`],
  ['a CASE on the practice', `select case when p.practice_id < 'p_5' then 'p_0' else p.practice_id end as practice_id, p.ssn from ${P} p`],
  ['an aggregate of the practice', `select min(p.practice_id) as practice_id, p.last_name, count(*) as n from ${P} p group by p.last_name`],
  ['a join on patient_id alone', `select p.practice_id, e.reason_description from ${P} p join ${E} e on e.patient_id = p.patient_id`],
  ['a comma join without the practice', `select p.practice_id, e.reason_description from ${P} p, ${E} e where e.patient_id = p.patient_id`],
  ['an OR that only sometimes matches the practice', `select p.practice_id, e.reason_description from ${P} p join ${E} e on e.patient_id = p.patient_id and (e.practice_id = p.practice_id or true)`],
  ['a scalar sub-select not matched to its row', `select p.practice_id, (select count(*) from ${E} e where e.patient_id = p.patient_id) as n from ${P} p`],
  ['EXISTS not matched to its row', `select p.practice_id, p.first_name from ${P} p where exists (select 1 from ${E} e where e.patient_id = p.patient_id)`],
  ['IN on patient_id alone', `select p.practice_id, p.first_name from ${P} p where p.patient_id in (select e.patient_id from ${E} e)`],
  ['a LATERAL item not matched to its row', `select p.practice_id, l.n from ${P} p, lateral (select count(*) as n from ${E} e where e.patient_id = p.patient_id) l`],
  ['a window partitioned by a name', `select p.practice_id, count(*) over (partition by p.last_name) as n from ${P} p`],
  ['a named window without the practice', `select p.practice_id, rank() over w as r from ${P} p window w as (order by p.birth_date)`],
  ['a CTE grouped without the practice', `with t as (select last_name, count(*) as n from ${P} group by last_name) select p.practice_id, t.n from ${P} p join t on t.last_name = p.last_name`],
  ['a derived table without the practice', `select p.practice_id, t.n from ${P} p cross join (select count(*) as n from ${E}) t`],
  ['a self-join on a name', `select a.practice_id, b.ssn from ${P} a join ${P} b on b.last_name = a.last_name`],
  ['the practice of the other side of a join', `select e.practice_id, p.ssn from ${P} p join ${E} e on e.patient_id = p.patient_id`],
  // Whole-result clauses: which of a practice's rows survive would depend on the batch's other practices.
  ['LIMIT', `select p.practice_id, p.first_name from ${P} p order by p.birth_date limit 10`],
  ['OFFSET', `select p.practice_id, p.first_name from ${P} p order by p.birth_date offset 5`],
  ['FETCH FIRST', `select p.practice_id, p.first_name from ${P} p order by p.birth_date fetch first 3 rows only`],
  ['LIMIT in a CTE', `with t as (select p.practice_id, p.ssn from ${P} p order by p.birth_date limit 5) select t.practice_id, t.ssn from t`],
  ['LIMIT on a UNION', `select practice_id, first_name from ${P} union all select practice_id, last_name from ${P} limit 5`],
  ['DISTINCT ON a name', `select distinct on (p.last_name) p.practice_id, p.ssn from ${P} p`],
  // red-team 2026-12-07: DuckDB takes a window inside DISTINCT ON; which rows a practice keeps then hangs on other practices' SSNs
  ['a window inside DISTINCT ON', `select distinct on (p.practice_id, p.ssn = max(p.ssn) over ()) p.practice_id, p.patient_id, 1 as x from ${P} p order by p.practice_id`],
  ['a window in WHERE or GROUP BY (refused by the engines, refused here too)', `select p.practice_id, count(*) as n from ${P} p group by p.practice_id, rank() over (order by p.ssn)`],
  ['ROLLUP of the practice', `select p.practice_id, count(*) as n from ${P} p group by rollup (p.practice_id)`],
  ['CUBE with the practice inside', `select p.practice_id, p.sex, count(*) as n from ${P} p group by cube (p.practice_id, p.sex)`],
  ['GROUPING SETS with a set lacking the practice', `select p.practice_id, p.sex, count(*) as n from ${P} p group by grouping sets ((p.practice_id, p.sex), (p.sex))`],
  ['GROUPING SETS with the empty set', `select p.practice_id, count(*) as n from ${P} p group by grouping sets ((p.practice_id), ())`],
];

const batchSafe: [string, string][] = [
  ['a join on the practice and the patient', `select p.practice_id, e.reason_description from ${P} p join ${E} e on e.practice_id = p.practice_id and e.patient_id = p.patient_id`],
  ['USING the practice', `select p.practice_id, e.reason_description from ${P} p join ${E} e using (practice_id, patient_id)`],
  ['a comma join matched in WHERE', `select p.practice_id, e.reason_description from ${P} p, ${E} e where e.patient_id = p.patient_id and e.practice_id = p.practice_id`],
  ['a sub-select matched to its row', `select p.practice_id, (select count(*) from ${E} e where e.patient_id = p.patient_id and e.practice_id = p.practice_id) as n from ${P} p`],
  ['IN on the practice and the patient', `select p.practice_id, p.first_name from ${P} p where (p.practice_id, p.patient_id) in (select e.practice_id, e.patient_id from ${E} e)`],
  ['a LATERAL item matched to its row', `select p.practice_id, l.n from ${P} p, lateral (select count(*) as n from ${E} e where e.patient_id = p.patient_id and e.practice_id = p.practice_id) l`],
  ['a derived table grouped by the practice', `select x.practice_id, x.n from (select practice_id, count(*) as n from ${P} group by 1) x`],
  ['a window partitioned by the practice', `select p.practice_id, row_number() over (partition by p.practice_id order by p.birth_date) as r from ${P} p`],
  ['UNION ALL of two labelled arms', `select practice_id, first_name from ${P} union all select practice_id, last_name from ${P}`],
  ['a seed joined without the practice', `select e.practice_id, c.description from ${E} e left join {{ref "encounter_classes"}} c on c.encounter_class = e.encounter_class`],
  ['DISTINCT ON the practice first', `select distinct on (p.practice_id, p.last_name) p.practice_id, p.ssn from ${P} p order by p.practice_id, p.last_name, p.birth_date`],
  ['plain DISTINCT with the practice', `select distinct p.practice_id, p.last_name from ${P} p`],
  ['ROLLUP beside the practice', `select p.practice_id, p.sex, count(*) as n from ${P} p group by p.practice_id, rollup (p.sex)`],
  ['GROUPING SETS that all hold the practice', `select p.practice_id, p.sex, count(*) as n from ${P} p group by grouping sets ((p.practice_id, p.sex), (p.practice_id))`],
  ['LIMIT in a LATERAL item matched to its row', `select x.practice_id, l.first_name from (select distinct q.practice_id from ${P} q) x, lateral (select p.first_name from ${P} p where p.practice_id = x.practice_id order by p.birth_date limit 1) l`],
];

describe('a tenant-scoped model cannot mix the practices of a batch (TSF231)', () => {
  it('the demo project is batch-safe', () => {
    expect(compileWith('select p.practice_id from {{ref "stg_patients"}} p').map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });

  it.each(mixing)('%s is refused at its line', (_what, sql) => {
    const diags = compileWith(sql);
    expect(diags.map((d) => d.code)).toContain('TSF231');
    expect(diags.filter((d) => d.code === 'TSF231').every((d) => d.file === MART && typeof d.line === 'number')).toBe(true);
  });

  it.each(batchSafe)('%s compiles', (_what, sql) => {
    expect(compileWith(sql).map((d) => `${d.code} ${d.message}`)).toEqual([]);
  });

  it('applies to ephemeral models (inlined into batches), views (a batch reading one reads every practice) and batch_incremental models, not to one-practice incrementals', () => {
    const window = `select min(p.practice_id) over () as practice_id, p.patient_id from ${P} p`;
    expect(compileWith(`{{config materialized="ephemeral"}}\n${window}`).map((d) => d.code)).toContain('TSF231');
    expect(compileWith(`{{config materialized="incremental" unique_key="patient_id" batch_incremental=true}}\n${window}`).map((d) => d.code)).toContain('TSF231');
    expect(compileWith(`{{config materialized="view"}}\n${window}`).map((d) => d.code)).toContain('TSF231');
    expect(compileWith(`{{config materialized="incremental" unique_key="patient_id"}}\n${window}`).map((d) => d.code)).not.toContain('TSF231');
  });

  it('checks the is_incremental rendering too', () => {
    const sql = `{{config materialized="incremental" unique_key="patient_id" batch_incremental=true}}
select p.practice_id, p.patient_id from ${P} p
{{#if is_incremental}}where p.patient_id not in (select t.patient_id from {{this}} t){{/if}}`;
    expect(compileWith(sql).map((d) => d.code)).toContain('TSF231');
  });
});
