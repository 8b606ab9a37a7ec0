/**
 * Found by a red-team pass on 2026-12-07 (11e1519), run in DuckDB 1.5 with the refs wrapped as
 * tsform wraps them: in a sub-select DuckDB binds `p.practice_id` to a nested column `p` (STRUCT,
 * MAP or UNION; a VARCHAR `p` is passed over) of a relation the sub-select reads before it binds
 * the outer alias `p`. An upstream model that outputs `struct_pack(practice_id := …) AS p` made
 * `s.practice_id = p.practice_id` true for every row of the batch, so the sub-select read every
 * practice's rows into each practice's slice. The check now knows the column names of the models
 * a model reads (relation-columns.ts): a name that is also an outer alias hides it, and a
 * relation whose names are not known hides every outer alias (the correlation is then refused,
 * saying why). A second pass (on b23c265) found the names DuckDB gives otherwise than PostgreSQL:
 * VALUES columns `col0, …`; a repeated name renamed `p_1`; json_each's eight columns, whose JSON
 * `value` binds like a struct; a source column declared JSON.
 */
import { describe, expect, it } from 'vitest';
import type { Project } from '../../src/project/types.ts';
import { compileModel, shown, type ProbeModel } from '../support/model-probe.ts';

const SP = '{{ref "stg_patients"}}';
const SE = '{{ref "stg_encounters"}}';
const MART = 'models/marts/x_nested.sql';
const compile = (sql: string, extra: ProbeModel[], edit?: (project: Project) => void) => compileModel(MART, sql, { practice_id: 'none', g: 'none' }, extra, [], edit);

const upstream = (name: string, sql: string): ProbeModel => ({ file: `models/staging/${name}.sql`, sql, columns: undefined });
const STRUCT = upstream('stg_nested', `select e.practice_id, e.encounter_id, struct_pack(practice_id := e.practice_id) as p from ${SE} e`);
const MAP = upstream('stg_nested', `select e.practice_id, e.encounter_id, map(['practice_id'], [e.practice_id]) as p from ${SE} e`);
const UNION = upstream('stg_nested', `select e.practice_id, e.encounter_id, union_value(practice_id := e.practice_id) as p from ${SE} e`);
const THROUGH_STAR = upstream('stg_nested', `select n.* from (select e.practice_id, e.encounter_id, struct_pack(practice_id := e.practice_id) as p from ${SE} e) n`);
const UNKNOWN = upstream('stg_nested', `{{config materialized="view"}}\nselect e.practice_id, e.encounter_id, u.* from ${SE} e cross join unnest([struct_pack(practice_id := e.practice_id)]) as u`);
const PLAIN = upstream('stg_nested', `select e.practice_id, e.encounter_id, e.patient_id as pid from ${SE} e`);

const REPEATED = upstream('stg_nested', `select e.practice_id, e.encounter_id, 'z' as p, struct_pack(practice_id := e.practice_id) as p from ${SE} e`);
const VALUES_UP = upstream('stg_nested', `select e.practice_id, e.encounter_id, v.* from ${SE} e, (values (struct_pack(practice_id := e.practice_id))) v`);
const jsonCity = (project: Project) => {
  const table = project.sources.find((t) => t.source === 'ehr' && t.name === 'patients')!;
  table.columns.push({ ...table.columns[0]!, name: 'city_json', dataType: 'JSON' });
};

const readsEvery = (alias: string) => `select ${alias}.practice_id, (select string_agg(n.encounter_id, ',') from {{ref "stg_nested"}} n where n.practice_id = ${alias}.practice_id) as g from ${SP} ${alias}`;

const refused: [string, string, ProbeModel[], RegExp][] = [
  ['a struct column of an upstream model named like the outer alias', readsEvery('p'), [STRUCT], /TSF231[^\n]*not matched/],
  ['a map column of an upstream model named like the outer alias', readsEvery('p'), [MAP], /TSF231[^\n]*not matched/],
  ['a struct column passed on by select *', readsEvery('p'), [THROUGH_STAR], /TSF231[^\n]*not matched/],
  ['a union column of an upstream model named like the outer alias', readsEvery('p'), [UNION], /TSF231[^\n]*not matched/],
  ['the same in a join condition of the sub-select', `select p.practice_id, (select string_agg(x.ssn, ',') from {{ref "stg_nested"}} n join ${SP} x on x.practice_id = n.practice_id and x.practice_id = p.practice_id) as g from ${SP} p`, [STRUCT], /TSF231[^\n]*not matched/],
  ['an upstream model whose column names are not known', readsEvery('q'), [UNKNOWN], /TSF231[^\n]*columns of n are not known/],
  ['a quoted outer alias that is not a plain name', `select "CAST(p)".practice_id, (select string_agg(n.encounter_id, ',') from {{ref "stg_nested"}} n where n.practice_id = "CAST(p)".practice_id) as g from ${SP} "CAST(p)"`, [PLAIN], /TSF231[^\n]*not matched/],
  ['a VALUES column DuckDB names col0', `select col0.practice_id, (select string_agg(x.encounter_id, ',') from ${SE} x, (values (struct_pack(practice_id := x.practice_id))) v where x.practice_id = col0.practice_id) as g from ${SP} col0`, [], /TSF231[^\n]*not matched/],
  ['an upstream model\'s VALUES column named col0', readsEvery('col0'), [VALUES_UP], /TSF231[^\n]*not matched/],
  ['a repeated column name DuckDB renames p_1', readsEvery('p_1'), [REPEATED], /TSF231[^\n]*not matched/],
  ['a repeated name in a derived table', `select p_1.practice_id, (select string_agg(n.encounter_id, ',') from (select e.practice_id, e.encounter_id, 'z' as p, struct_pack(practice_id := e.practice_id) as "P" from ${SE} e) n where n.practice_id = p_1.practice_id) as g from ${SP} p_1`, [], /TSF231[^\n]*not matched/],
  ['json_each in FROM, whose JSON column is value', `select value.practice_id, (select string_agg(x.encounter_id, ',') from ${SE} x, json_each(json_object('k', json_object('practice_id', x.practice_id))) j where x.practice_id = value.practice_id) as g from ${SP} value`, [], /TSF231[^\n]*not matched/],
  ['a source column declared JSON', `select city_json.practice_id, (select string_agg(s.patient_id, ',') from {{source "ehr" "patients"}} s where s.practice_id = city_json.practice_id) as g from ${SP} city_json`, [], /TSF231[^\n]*not matched/],
  ['an outer alias named as DuckDB names an unaliased subquery', `select unnamed_subquery.practice_id, (select string_agg(x.encounter_id, ',') from ${SE} x, (select 'p_2e1eaaf1eb' as practice_id) where x.practice_id = unnamed_subquery.practice_id) as g from ${SP} unnamed_subquery`, [], /TSF222[^\n]*unnamed_subquery/],
  ['the same in a join\'s ON', `select unnamed_subquery2.practice_id, (select string_agg(x.encounter_id, ',') from (select 1 as a), ${SE} x join (select 'p_2e1eaaf1eb' as practice_id) on x.practice_id = unnamed_subquery2.practice_id) as g from ${SP} unnamed_subquery2`, [], /TSF222[^\n]*unnamed_subquery2/],
  ['a CTE named as DuckDB names an unaliased subquery', `with unnamed_subquery as (select * from ${SP}) select unnamed_subquery.practice_id, (select string_agg(x.encounter_id, ',') from ${SE} x, (select x.practice_id) where x.practice_id = unnamed_subquery.practice_id) as g from unnamed_subquery`, [], /TSF222[^\n]*unnamed_subquery/],
];

const accepted: [string, string, ProbeModel[]][] = [
  ['a correlated sub-select over a model whose columns are known', readsEvery('p'), [PLAIN]],
  ['an outer alias other than the nested column\'s name', readsEvery('q'), [STRUCT]],
  ['a LATERAL item naming an item beside it (DuckDB binds the item before a column of that name)', `select p.practice_id, l.g from ${SP} p join {{ref "stg_nested"}} n on n.practice_id = p.practice_id cross join lateral (select string_agg(x.ssn, ',') as g from ${SP} x where x.practice_id = p.practice_id) l`, [STRUCT]],
  ['a sub-select over the own practice\'s encounters', `select p.practice_id, (select count(*) from ${SE} e where e.practice_id = p.practice_id) as g from ${SP} p`, []],
];

describe('one name in models\' SQL for two sources', () => {
  it('refuses source a\'s table b__c beside source a__b\'s table c (both __tsf_src_a__b__c)', () => {
    const twins = (project: Project) => {
      const base = project.sources.find((t) => t.source === 'ehr' && t.name === 'patients')!;
      project.sources.push({ ...base, source: 'a', name: 'b__c', identifier: 't1' }, { ...base, source: 'a__b', name: 'c', identifier: 't2' });
    };
    expect(shown(compile(`select p.practice_id, p.patient_id as g from ${SP} p`, [], twins))).toMatch(/TSF\d+: source a__b\.c and source a\.b__c [^\n]*have one name in models' SQL/);
  });
});

describe('qualified names a nested column can take', () => {
  it.each(refused)('refuses %s', (what, sql, extra, code) => {
    expect(shown(compile(sql, extra, what.includes('declared JSON') ? jsonCity : undefined))).toMatch(code);
  });

  it.each(accepted)('accepts %s', (_what, sql, extra) => {
    expect(shown(compile(sql, extra))).toBe('(compiles)');
  });
});
