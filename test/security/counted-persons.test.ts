import { beforeAll, describe, expect, it } from 'vitest';
import { countedPersonsProblem, type RelationLookup } from '../../src/compile/counted-persons.ts';
import { checkModelSql } from '../../src/compile/model-sql.ts';
import { personRowsProblem } from '../../src/compile/person-rows.ts';
import type { Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * The publication gate withholds a published aggregate's cells below k of its count column, so
 * that count must count persons: `count(*)` of encounters (or `count(DISTINCT encounter_id)`)
 * reaches k with one person's rows. Compile follows `count(DISTINCT x)` through CTEs, derived
 * tables and upstream models' SQL to the vault's person token, and refuses anything else.
 */
const base = loadProject(REPO_ROOT);
const FILE = 'models/research/published/x_counts.sql';
const E = '{{ref "pseudo_encounters"}}';
const C = '{{ref "pseudo_conditions"}}';
const P = '{{ref "pseudo_persons"}}';

function compileWith(select: string, config = '{{config k_anonymity_count="n"}}\n'): Diagnostic[] {
  const project = structuredClone(base);
  project.models.push({ name: 'x_counts', file: FILE, sql: `${config}${select}\n`, line: 1 });
  return compileErrors(project);
}

describe('a published aggregate whose count is not a count of persons', () => {
  it.each([
    ['count(*) of encounters', `select e.practice_token, count(*) as n from ${E} e group by 1`, /counts rows rather than persons/],
    ['count(x) of encounters', `select e.practice_token, count(e.person_token) as n from ${E} e group by 1`, /counts rows rather than persons/],
    ['distinct encounters', `select e.practice_token, count(distinct e.encounter_id) as n from ${E} e group by 1`, /counts e\.encounter_id, which is not the vault's person token/],
    ['distinct conditions', `select c.condition_code, count(distinct c.condition_code) as n from ${C} c group by 1`, /not the vault's person token/],
    ['an encounter id renamed person_token in a CTE', `with x as (select e.encounter_id as person_token, e.practice_token from ${E} e) select x.practice_token, count(distinct x.person_token) as n from x group by 1`, /not the vault's person token/],
    ['a renamed column in a derived table', `select t.practice_token, count(distinct t.person_token) as n from (select e.practice_token, e.encounter_id as person_token from ${E} e) t group by 1`, /not the vault's person token/],
    ['a token computed on', `select e.practice_token, count(distinct substr(e.person_token, 1, 2)) as n from ${E} e group by 1`, /counts rows rather than persons/],
    ['a token computed on in a CTE', `with x as (select substr(e.person_token, 1, 2) as person_token, e.practice_token from ${E} e) select x.practice_token, count(distinct x.person_token) as n from x group by 1`, /person_token is computed, not passed on/],
    ['an unqualified column among two inputs', `select e.practice_token, count(distinct person_token) as n from ${E} e join ${C} c on c.person_token = e.person_token group by 1`, /unqualified among 2 inputs/],
    ['a second UNION arm counting codes', `select e.practice_token, count(distinct e.person_token) as n from ${E} e group by 1 union all select x.practice_token, count(distinct x.encounter_id) from ${E} x group by 1`, /not the vault's person token/],
    ['a UNION in a CTE with one arm not tokens', `with x as (select e.person_token from ${E} e union all select c.condition_code from ${C} c) select count(distinct x.person_token) as n from x`, /not the vault's person token/],
    ['a column renamed by the alias list', `select count(distinct t.person_token) as n from (select e.encounter_id, e.person_token from ${E} e) as t(person_token, other)`, /renames its columns/],
    ['a recursive CTE', `with recursive x as (select e.person_token from ${E} e) select count(distinct x.person_token) as n from x`, /x is a recursive CTE/],
  ])('%s is refused at compile', (_what, select, message) => {
    const errors = compileWith(select);
    const d = errors.find((x) => x.code === 'TSF215' && x.file === FILE);
    expect(d?.message, JSON.stringify(errors.map((x) => x.message))).toMatch(message);
    expect(d).toMatchObject({ file: FILE, line: 1 });
  });
});

describe('counts of persons are accepted', () => {
  it.each([
    ['distinct person tokens', `select e.practice_token, count(distinct e.person_token) as n from ${E} e group by 1`],
    ['through a CTE and a star', `with x as (select * from ${E}) select x.practice_token, count(distinct x.person_token) as n from x group by 1`],
    ['through a derived table', `select t.practice_token, count(distinct t.person_token) as n from (select e.person_token, e.practice_token from ${E} e) t group by 1`],
    ['one table, unqualified', `select practice_token, count(distinct person_token) as n from ${E} group by 1`],
    ['through a CTE grouped by person', `with per_person as (select c.person_token, count(*) as k from ${C} c group by 1) select count(distinct person_token) as n from per_person`],
    ['each UNION arm', `select e.practice_token, count(distinct e.person_token) as n from ${E} e group by 1 union all select x.encounter_class, count(distinct x.person_token) from ${E} x group by 1`],
  ])('%s', (_what, select) => {
    expect(compileWith(select).filter((d) => d.file === FILE)).toEqual([]);
  });
});

describe('a published aggregate whose keys may be other persons\' values', () => {
  // Counted with unrelated persons, a key of one rare person's value makes a cell of everyone.
  it.each([
    ['a cross join', `select o.age_band, count(distinct p.person_token) as n from ${P} p cross join ${P} o group by 1`, /joins p and o without equating their person tokens/],
    ['a join on a quasi-identifier', `select c.condition_code, count(distinct p.person_token) as n from ${P} p join ${P} o on o.zip3 = p.zip3 join ${C} c on c.person_token = o.person_token group by 1`, /without equating their person tokens/],
    ['a token equality inside OR', `select c.condition_code, count(distinct p.person_token) as n from ${P} p join ${C} c on c.person_token = p.person_token or p.sex = 'F' group by 1`, /without equating their person tokens/],
    ['a comma join without the equality', `select c.condition_code, count(distinct p.person_token) as n from ${P} p, ${C} c where p.sex = 'F' group by 1`, /without equating their person tokens/],
    ['a scalar sub-select as key', `select (select c.condition_code from ${C} c where c.condition_code like '4%' limit 1) as code, count(distinct e.person_token) as n from ${E} e group by 1`, /has a sub-select over other persons' rows/],
    ['an aggregating sub-select as key', `select (select max(c.condition_code) from ${C} c where c.condition_code like '4%') as code, count(distinct e.person_token) as n from ${E} e group by 1`, /aggregates rows of several persons/],
    ['a semi-join on another column', `select e.encounter_class, count(distinct e.person_token) as n from ${E} e where e.encounter_class in (select c.condition_code from ${C} c where c.condition_code = '44054006') group by 1`, /has a sub-select over other persons' rows/],
    ['an EXISTS on someone else', `select e.encounter_class, count(distinct e.person_token) as n from ${E} e where exists (select 1 from ${C} c where c.condition_code = '44054006') group by 1`, /has a sub-select/],
    ['a sub-select in a CTE', `with x as (select p.person_token, (select c.condition_code from ${C} c limit 1) as code from ${P} p) select x.code, count(distinct x.person_token) as n from x group by 1`, /has a sub-select over other persons' rows/],
    ['a window in a CTE', `with w as (select p.person_token, max(p.zip3) over () as z from ${P} p) select w.z, count(distinct w.person_token) as n from w group by 1`, /has a window/],
    ['a CTE aggregated across persons', `with z as (select p.zip3, count(*) as k from ${P} p group by 1) select z.k, count(distinct p.person_token) as n from ${P} p join z on z.zip3 = p.zip3 group by 1`, /aggregates rows of several persons/],
    ['an aggregate without GROUP BY in a CTE', `with t as (select max(c.condition_code) as code from ${C} c) select t.code, count(distinct e.person_token) as n from ${E} e cross join t group by 1`, /aggregates rows of several persons/],
    ['a ROLLUP in a CTE', `with t as (select c.person_token, count(*) as k from ${C} c group by rollup (c.person_token)) select t.k, count(distinct t.person_token) as n from t group by 1`, /aggregates rows of several persons/],
    ['a LATERAL sub-select', `select l.code, count(distinct p.person_token) as n from ${P} p cross join lateral (select c.condition_code as code from ${C} c limit 1) l group by 1`, /LATERAL/],
  ])('%s is refused at compile', (_what, select, message) => {
    const errors = compileWith(select);
    const d = errors.find((x) => x.code === 'TSF215' && x.file === FILE);
    expect(d?.message, JSON.stringify(errors.map((x) => x.message))).toMatch(message);
    expect(d?.message).toMatch(/its cells may not be persons' own values/);
  });

  it.each([
    ['a join on tokens in WHERE', `select c.condition_code, count(distinct p.person_token) as n from ${P} p, ${C} c where c.person_token = p.person_token and c.condition_code <> '44054006' group by 1`],
    ['a join USING the token', `select c.condition_code, count(distinct p.person_token) as n from ${P} p join ${C} c using (person_token) group by 1`],
    ['a cohort semi-join on the token', `select e.encounter_class, count(distinct e.person_token) as n from ${E} e where e.person_token in (select c.person_token from ${C} c where c.condition_code = '44054006') group by 1`],
    ['an EXISTS matched to the token', `select e.encounter_class, count(distinct e.person_token) as n from ${E} e where exists (select 1 from ${C} c where c.person_token = e.person_token and c.condition_code = '44054006') group by 1`],
    ['VALUES cross joined', `select v.label, count(distinct e.person_token) as n from ${E} e cross join (values ('all')) as v(label) group by 1`],
    ['a CTE of one person per row', `with per_person as (select c.person_token, count(distinct c.condition_code) as codes from ${C} c join ${E} e on e.person_token = c.person_token group by c.person_token) select per_person.codes, count(distinct per_person.person_token) as n from per_person group by 1`],
  ])('%s is accepted', (_what, select) => {
    expect(compileWith(select).filter((d) => d.file === FILE)).toEqual([]);
  });
});

describe('a person-level published relation (no k_anonymity_count)', () => {
  // Its classes are sized in distinct person tokens, or in rows when it has no token column:
  // one person's encounters, or a column of other persons' tokens, reached k.
  it.each([
    ['rows without a token', `select p.zip3, p.age_band, e.encounter_class from ${E} e join ${P} p on p.person_token = e.person_token`, /outputs no person token/],
    ['an encounter id named person_token', `select e.encounter_id as person_token, p.zip3 from ${E} e join ${P} p on p.person_token = e.person_token`, /outputs no person token/],
    ['other persons\' tokens beside the row', `select o.person_token, p.zip3, c.condition_code from ${P} p cross join ${P} o join ${C} c on c.person_token = p.person_token`, /its rows may not be one person's each: it joins p and o without equating/],
    ['a token picked per class', `select min(p.person_token) as person_token, p.zip3 from ${P} p group by p.zip3`, /aggregates rows of several persons/],
  ])('%s is refused at compile', (_what, select, message) => {
    const errors = compileWith(select, '');
    const d = errors.find((x) => x.code === 'TSF215' && x.file === FILE);
    expect(d?.message, JSON.stringify(errors.map((x) => x.message))).toMatch(message);
    expect(d?.message).toMatch(/is published row by row/);
  });

  it.each([
    ['one row per person and class', `select distinct p.age_band, p.sex, p.person_token from ${P} p`],
    ['grouped by the token', `select p.person_token, min(p.age_band) as age_band from ${P} p group by p.person_token`],
  ])('%s is accepted', (_what, select) => {
    expect(compileWith(select, '').filter((d) => d.file === FILE && d.code === 'TSF215' && /is published/.test(d.message))).toEqual([]);
  });
});

describe('inputs that hold no persons', () => {
  // The demo's seeds have no yml, so the lineage gate refuses their columns in a published
  // model; the rule of this file is tested alone, with a lookup that names a seed.
  beforeAll(() => {
    checkModelSql({ sql: 'select 1', allowed: new Set() }); // loads the WebAssembly parser
  });
  const lookup: RelationLookup = (name) => {
    if (name === 'vault') return { kind: 'vault' };
    if (name === 'codes') return { kind: 'seed', name: 'codes' };
    if (name === 'persons') return { kind: 'model', tokenizes: true, sqls: ['select v.person_token, v.practice_id, v.sex as code from vault v'] };
    return undefined;
  };
  it('a seed joined on anything, or cross joined, adds no person', () => {
    expect(personRowsProblem('select k.label, count(distinct p.person_token) as n from persons p join codes k on k.code = p.code group by 1', lookup, 'practice_id')).toBeUndefined();
    expect(personRowsProblem('select k.label, count(distinct p.person_token) as n from persons p cross join codes k group by 1', lookup, 'practice_id')).toBeUndefined();
    // but a practice id meets only a practice id: the seed's column must be named so (practice-seeds.ts then checks it)
    expect(personRowsProblem('select k.label, count(distinct p.person_token) as n from persons p join codes k on k.code = p.practice_id group by 1', lookup, 'practice_id')).toMatch(/compares a practice id with values that are not practice ids/);
  });
  it('a relation that is neither a model, a seed nor the vault is refused', () => {
    expect(personRowsProblem('select k.label, count(distinct p.person_token) as n from persons p cross join raw.codes k group by 1', lookup, 'practice_id')).toMatch(/reads raw\.codes, which is not a model, a seed or the vault/);
  });
  it('a CTE that cannot be followed still hides the relation of its name (as in the engines)', () => {
    // Found in review: a recursive CTE or one with an alias list was left out of scope, so a CTE
    // named like the vault's token map resolved to the vault, and its made-up tokens were taken for persons.
    const count = countedPersonsProblem;
    expect(count('select count(distinct v.person_token) as n from vault v', 'n', lookup)).toBeUndefined();
    expect(count("with recursive vault as (select 'x' as person_token) select count(distinct v.person_token) as n from vault v", 'n', lookup)).toMatch(/vault is a recursive CTE/);
    expect(count("with vault(person_token) as (select 'x') select count(distinct v.person_token) as n from vault v", 'n', lookup)).toMatch(/vault renames its columns/);
    expect(personRowsProblem("with vault(person_token) as (select 'x') select count(distinct p.person_token) as n from persons p cross join vault v", lookup, 'practice_id')).toMatch(/vault renames its columns/);
  });

  it('two persons relations cross joined are refused, whatever the seed between them', () => {
    expect(personRowsProblem('select count(distinct p.person_token) as n from persons p join codes k on k.code = p.code join persons q on q.code = k.code', lookup, 'practice_id')).toMatch(/joins p and q without equating/);
  });
});
