/**
 * Beside its keys and its k count, a published aggregate may output only plain measures of the
 * whole cell. A second count over part of the cell (a CASE or FILTER on members' quasi values, a
 * rare condition, a NULL test), a boolean over members, a list, a member's person token, or a
 * choice of cells by another population (EXCEPT, INTERSECT) publishes what no count of k covers.
 * The refused cases compiled clean at 33b65e2.
 */
import { describe, expect, it } from 'vitest';
import type { PhiClass } from '../../src/project/types.ts';
import { compileModel, shown } from '../support/model-probe.ts';

const P = '{{ref "pseudo_persons"}}';
const C = '{{ref "pseudo_conditions"}}';
const E = '{{ref "pseudo_encounters"}}';
const PUB = 'models/research/published/x_cells.sql';
const CP = `${C} c join ${P} p on p.person_token = c.person_token`;
const COLUMNS: Record<string, PhiClass> = { condition_code: 'none', encounter_class: 'none', zip3: 'quasi', sex: 'quasi', n: 'none', m: 'none' };

const compile = (select: string) => compileModel(PUB, `{{config k_anonymity_count="n"}}\n${select}`, COLUMNS);

describe('a published aggregate\'s other outputs are plain measures of the whole cell (TSF215)', () => {
  it.each([
    ['a count of the members with given quasi values', `select c.condition_code, count(distinct c.person_token) as n, count(case when p.zip3 = '021' and p.birth_year = 1956 and p.sex = 'F' then 1 end) as m from ${CP} group by 1`, /a second count/],
    ['the same with FILTER', `select c.condition_code, count(distinct c.person_token) as n, count(distinct c.person_token) filter (where p.zip3 = '021' and p.birth_year = 1956) as m from ${CP} group by 1`, /FILTER/],
    ['a count of a rare condition per ZIP3', `select p.zip3, count(distinct p.person_token) as n, count(distinct case when c.condition_code = '86406008' then c.person_token end) as m from ${P} p join ${C} c on c.person_token = p.person_token group by 1`, /DISTINCT/],
    ['a sum over a NULL test', `select c.condition_code, count(distinct c.person_token) as n, sum(case when nullif(p.birth_year, 1956) is null then 1 else 0 end) as m from ${CP} group by 1`, /a CASE/],
    ['a sum of a comparison', `select c.condition_code, count(distinct c.person_token) as n, sum(cast(p.zip3 = '021' as integer)) as m from ${CP} group by 1`, /comparison/],
    ['distinct ZIP3s per cell', `select c.condition_code, count(distinct c.person_token) as n, count(distinct p.zip3) as m from ${CP} group by 1`, /DISTINCT/],
    ['bool_or of an EXISTS', `select c.condition_code, count(distinct c.person_token) as n, bool_or(exists (select 1 where p.zip3 = '021')) as m from ${CP} group by 1`, /bool_or/],
    ['bool_and of a NULL test', `select c.condition_code, count(distinct c.person_token) as n, bool_and(p.birth_year is null) as m from ${CP} group by 1`, /bool_and/],
    ['a second count of persons over a left join', `select p.zip3, count(distinct p.person_token) as n, count(distinct c.person_token) as m, c.condition_code from ${P} p left join ${C} c on c.person_token = p.person_token and c.condition_code = '86406008' group by 1, 4`, /DISTINCT/],
    ['a list of the members\' tokens', `select p.zip3, count(distinct p.person_token) as n, string_agg(p.person_token, ',') as m from ${P} p group by 1`, /string_agg/],
    ['an array of tokens', `select p.sex, count(distinct p.person_token) as n, array_agg(p.person_token) as m from ${P} p group by 1`, /array_agg/],
    ['a list ordered by birth year', `select p.zip3, count(distinct p.person_token) as n, string_agg(c.condition_code, ',' order by p.birth_year) as m from ${P} p join ${C} c on c.person_token = p.person_token group by 1`, /string_agg/],
    ['one member\'s token, transformed', `select p.zip3, count(distinct p.person_token) as n, min(upper(p.person_token)) as m from ${P} p group by 1`, /upper/],
    ['a window over the cells', `select c.condition_code, count(distinct c.person_token) as n, lag(count(*)) over (order by c.condition_code) as m from ${C} c group by 1`, /window/],
    ['a sub-select', `select c.condition_code, count(distinct c.person_token) as n, (select max(q.zip3) from ${P} q) as m from ${C} c group by 1`, /sub-select|not matched|other persons/],
    ['a measure in the second UNION arm', `select p.sex, count(distinct p.person_token) as n, sum(p.birth_year * 0) as m from ${P} p group by 1 union all select p.sex, count(distinct p.person_token), count(case when p.zip3 = '021' then 1 end) from ${P} p group by 1`, /computes m /],
  ])('%s', (_what, select, why) => {
    const errors = compile(select);
    const refusal = errors.find((e) => e.code === 'TSF215');
    expect(refusal?.message, shown(errors)).toMatch(why);
    expect(refusal).toMatchObject({ file: PUB });
  });

  it.each([
    ['one member\'s token', `select p.zip3, count(distinct p.person_token) as n, min(p.person_token) as m from ${P} p group by 1`],
    ['a token computed in a CTE, then one member\'s', `with t as (select person_token, upper(person_token) as u, zip3 from ${P}) select t.zip3, count(distinct t.person_token) as n, max(t.u) as m from t group by 1`],
    ['a token renamed in a CTE', `with t as (select person_token, person_token as pid, zip3 from ${P}) select t.zip3, count(distinct t.person_token) as n, max(t.pid) as m from t group by 1`],
  ])('%s is refused as a person token', (_what, select) => {
    const errors = compile(select);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(/computed from its members' person tokens/);
  });

  it.each([
    ['EXCEPT', 'except'],
    ['INTERSECT', 'intersect'],
  ])('cells chosen by another population with %s', (op, sql) => {
    const select = `select c.condition_code, count(distinct c.person_token) as n from ${C} c group by 1 ${sql} select c.condition_code, count(distinct c.person_token) from ${CP} where not (p.zip3 = '021' and p.birth_year = 1956) group by 1`;
    const errors = compile(select);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(new RegExp(`chooses its cells with ${op}`));
  });

  it.each([
    ['a sum and an average', `select e.encounter_class, count(distinct e.person_token) as n, sum(e.total_claim_cost) as m, avg(e.total_claim_cost) as a from ${E} e group by 1`],
    ['arithmetic over measures', `select e.encounter_class, count(distinct e.person_token) as n, round(sum(e.total_claim_cost) / count(*), 2) as m from ${E} e group by 1`],
    ['rows per cell', `select e.encounter_class, count(distinct e.person_token) as n, count(*) as m from ${E} e group by 1`],
    ['a description of the key', `select c.condition_code, min(c.condition_description) as m, count(distinct c.person_token) as n from ${C} c group by 1`],
    ['a cast measure', `select e.encounter_class, count(distinct e.person_token) as n, cast(max(e.total_claim_cost) as integer) as m from ${E} e group by 1`],
    ['UNION ALL of two grains', `select p.sex, count(distinct p.person_token) as n from ${P} p group by 1 union all select 'all', count(distinct p.person_token) from ${P} p group by 1`],
  ])('%s is accepted', (_what, select) => {
    const errors = compile(select);
    expect(errors, shown(errors)).toEqual([]);
  });
});
