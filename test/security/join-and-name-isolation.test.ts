/**
 * Found by a red-team pass on 2026-12-07 (2b7c828): each of these compiled clean, and those run
 * in batches of 50 on DuckDB put other practices' data into practices' slices (14,939 rows of
 * other practices' patients' SSNs over the 221 demo practices' slices for the first four):
 *  - NATURAL JOIN or USING (practice_id) linked every item before the join, not only its two sides
 *    (`from p, o natural join x(sex)` matched o with x, and p's practice met every o);
 *  - an equality in an outer join's ON was taken as a filter, but ON removes no row of the side
 *    the join keeps (`p cross join o left join x on o.practice_id = p.practice_id`);
 *  - aliases or CTEs whose names differ only after 63 bytes (PostgreSQL's grammar, which the
 *    checks read, cuts them; DuckDB does not), so the checks read one where the engine read the
 *    other;
 *  - `{{ref "tenants"}}` in a tenant-scoped model read every practice's row (the README said its own);
 *  - `$1`, the bound list of the batch's practices, read by the model;
 * and, on PostgreSQL only (DuckDB refuses them at run time): CTE names or aliases that differ only
 * in the case of a quoted name, and a CTE of WITH RECURSIVE reading one defined after it.
 */
import { describe, expect, it } from 'vitest';
import { compileModel, shown, type ProbeSeed } from '../support/model-probe.ts';

const SP = '{{ref "stg_patients"}}';
const SE = '{{ref "stg_encounters"}}';
const P = `(select distinct q.practice_id from ${SP} q) p`;
const REGIONS: ProbeSeed = { name: 'practice_regions', rows: [['practice_id', 'region'], ['p_2e1eaaf1eb', 'north']] };
const MART = 'models/marts/x_join.sql';
const A = 'a'.repeat(63);

const compile = (sql: string) => compileModel(MART, sql, { practice_id: 'none', src: 'none', g: 'none' }, [], [REGIONS]);

const refused: [string, string, RegExp][] = [
  ['NATURAL JOIN beside an earlier item', `select p.practice_id, o.practice_id as src, o.ssn as g from ${P}, ${SP} o natural join (values ('F'), ('M')) x(sex)`, /TSF231/],
  ['USING (practice_id) with a seed beside an earlier item', `select p.practice_id, o.practice_id as src, o.ssn as g from ${P}, ${SP} o left join {{ref "practice_regions"}} c using (practice_id)`, /TSF231/],
  ['an outer join ON equating two items of its kept side', `select p.practice_id, o.practice_id as src, o.ssn as g from ${P} cross join ${SP} o left join (select 1 as zz) x on o.practice_id = p.practice_id`, /TSF231/],
  ['a FULL join ON equating items of one side', `select p.practice_id, o.ssn as g from ${P} cross join ${SP} o full join ${SE} e on o.practice_id = p.practice_id and e.practice_id = p.practice_id`, /TSF231/],
  ['a RIGHT join ON equating two items of its kept side', `select p.practice_id, o.ssn as g from (select 1 as zz) x right join (${P} cross join ${SP} o) on o.practice_id = p.practice_id`, /TSF231/],
  ['aliases differing after 63 bytes', `select p.practice_id, ${A}x.practice_id as src, ${A}x.ssn as g from ${P} cross join ${SP} ${A}x cross join (select 1 as z) ${A}y`, /TSF222/],
  ['CTEs differing after 63 bytes', `with ${A}x as (select string_agg(o.practice_id || ':' || o.ssn, ',') as g from ${SP} o), ${A}y as (select 'none' as g) select p.practice_id, b.g from ${P} cross join ${A}x b`, /TSF222/],
  ['the practices list read whole in a sub-select', `select p.practice_id, (select string_agg(t.practice_id || ':' || t.name, ';') from {{ref "tenants"}} t) as g from ${P}`, /TSF231/],
  ['the practices list crossed with every row', `select p.practice_id, t.name as g from ${P} cross join {{ref "tenants"}} t`, /TSF231/],
  ['the bound practices read as $1', `select p.practice_id, array_to_string($1, ',') as g from ${P}`, /TSF222/],
  ['CTE names differing only in case', `with "Bad" as (select string_agg(o.ssn, ',') as g from ${SP} o), bad as (select 'none' as g) select p.practice_id, b.g from ${P} cross join "Bad" b`, /TSF222/],
  ['aliases differing only in case', `select p.practice_id, "O".ssn as g from ${P} cross join ${SP} "O" cross join (select 1 as zz) o`, /TSF222/],
  ['a CTE of WITH RECURSIVE reading a later one', `with recursive a as (select b.g from b), b as (select string_agg(o.ssn, ',') as g from ${SP} o) select p.practice_id, a.g from ${P} cross join a`, /TSF222/],
  ['an alias with tsform\'s reserved prefix', `select p.practice_id, __tsf_x.ssn as g from ${P} join ${SP} __tsf_x on __tsf_x.practice_id = p.practice_id`, /TSF222/],
];

const accepted: [string, string][] = [
  ['a LEFT join matched across its sides', `select e.practice_id, e.encounter_id as g, p.ssn as src from ${SE} e left join ${SP} p on p.practice_id = e.practice_id and p.patient_id = e.patient_id`],
  ['USING (practice_id) between its own two sides', `select e.practice_id, e.encounter_id as g, p.ssn as src from ${SE} e join ${SP} p using (practice_id)`],
  ['NATURAL JOIN of two practices\' relations', `select practice_id, g, src from (select e.practice_id, e.encounter_id as g from ${SE} e) a natural join (select p.practice_id, p.ssn as src from ${SP} p) b`],
  ['the practice\'s own row of tenants', `select e.practice_id, e.encounter_id as g, t.name as src from ${SE} e join {{ref "tenants"}} t on t.practice_id = e.practice_id`],
];

describe('joins, names and parameters in batched models', () => {
  it.each(refused)('refuses %s', (_what, sql, code) => {
    expect(shown(compile(sql))).toMatch(code);
  });

  it.each(accepted)('accepts %s', (_what, sql) => {
    expect(shown(compile(sql))).toBe('(compiles)');
  });
});

/**
 * The second red-team pass (2026-12-07, on 75c3adf): each compiled clean, and run batched by hand
 * on DuckDB 1.5 and PostgreSQL 15 over practices A and B, put B's patient's SSN in A's rows (the
 * last two on one engine only).
 */
const P2 = `(select distinct q.practice_id from ${SP} q) p`;
const secondPass: [string, string, RegExp][] = [
  ['two kept items equal to one nullable item of a LEFT join', `select p.practice_id, o.ssn as g from ${P2} cross join ${SP} o left join ${SE} e on e.practice_id = o.practice_id and e.practice_id = p.practice_id`, /TSF231/],
  ['the same through a RIGHT join', `select p.practice_id, o.ssn as g from ${SE} e right join (${P2} cross join ${SP} o) on e.practice_id = o.practice_id and e.practice_id = p.practice_id`, /TSF231/],
  ['the outer row and a kept item equal to one nullable item', `select p.practice_id, (select string_agg(o.ssn, ',') from ${SP} o left join ${SE} x on x.practice_id = o.practice_id and x.practice_id = p.practice_id) as g from ${P2}`, /TSF231/],
  ['a LATERAL naming a local item that shadows an outer one', `select e.practice_id, (select string_agg(l.ssn, ',') from ${SE} q cross join {{ref "practice_regions"}} t cross join lateral (select o.ssn from ${SP} o where o.practice_id = t.practice_id) l where q.practice_id = e.practice_id) as g from ${SE} e join ${SP} t on t.practice_id = e.practice_id`, /TSF231/],
  ['an aliased join hiding its relations\' names', `select t.practice_id, (select string_agg(j.ssn, ',') from (${SP} o cross join (select 1 as zz) z) j where o.practice_id = t.practice_id) as g from ${SE} t join ${SP} o on o.practice_id = t.practice_id`, /TSF231/],
  ['a sub-select over practices in an ON with no practice to match', `select p.practice_id, string_agg(d.ch, '' order by g.i) as g from (generate_series(1, 11) g(i) cross join (values ('0'), ('1'), ('-')) d(ch) join (select 1 as z) z on exists (select 1 from ${SP} o where o.patient_id = 'b1' and substr(o.ssn, g.i, 1) = d.ch)) cross join ${P2} group by p.practice_id`, /TSF231/],
  ['the tenant column quoted in upper case (another column on PostgreSQL) in a NATURAL JOIN', `select p.practice_id, d.ssn as g from ${P2} natural join (select o.practice_id as "PRACTICE_ID", o.ssn from ${SP} o) d`, /TSF222/],
  ['the same in an alias list with USING', `select p.practice_id, d.ssn as g from ${P2} join (select o.practice_id, o.ssn from ${SP} o) d("PRACTICE_ID", ssn) using (practice_id)`, /TSF222/],
  ['a quoted alias taking an unaliased sub-select\'s place', `select "subquery 1".practice_id, ssn as g from (select o.ssn from ${SP} o), (select distinct q.practice_id from ${SP} q) "subquery 1"`, /TSF231/],
  ['? (a parameter to DuckDB)', `select p.practice_id, ? g from ${P2}`, /TSF222/],
];

describe('joins and names, second pass', () => {
  it.each(secondPass)('refuses %s', (_what, sql, code) => {
    expect(shown(compile(sql))).toMatch(code);
  });
});

/**
 * The third pass (2026-12-07, on 11e1519), run in DuckDB 1.5 over practices A and B with the
 * refs wrapped as tsform wraps them: B's patient's SSN in A's slice through an IN whose
 * sub-select output the outer row's own practice; a struct column named like the outer alias
 * (DuckDB binds `p.practice_id` to its field first); an inner join nested in an outer join's
 * optional side whose ON named items outside it.
 */
const thirdPass: [string, string][] = [
  ['IN over a sub-select that outputs the outer row\'s practice', `select p.practice_id, string_agg(d.ch, '' order by g.i) as g from ${P2} cross join generate_series(1, 11) g(i) cross join (values ('0'), ('9'), ('-')) d(ch) where p.practice_id in (select p.practice_id as k from ${SP} x where x.patient_id = 'b1' and substr(x.ssn, g.i, 1) = d.ch) group by p.practice_id`],
  ['a row IN over a VALUES list of practices', `select p.practice_id, string_agg(d.ch, '') as g from ${P2} cross join (values ('0'), ('9')) d(ch) where (p.practice_id, d.ch) in (select v.practice_id, substr(x.ssn, 1, 1) from ${SP} x cross join (values ('A'), ('B')) v(practice_id) where x.patient_id = 'b1') group by p.practice_id`],
  ['= ANY over a seed\'s practice', `select p.practice_id, o.ssn as g from ${P2} join ${SP} o on o.practice_id = p.practice_id where p.practice_id = any (select r.practice_id from {{ref "practice_regions"}} r cross join ${SP} x where x.ssn like '9%')`],
  ['a struct column named like the outer alias', `select p.practice_id, (select string_agg(o.ssn, ',') from (select q.practice_id, q.ssn, struct_pack(practice_id := q.practice_id) as p from ${SP} q) o where o.practice_id = p.practice_id) as g from ${P2}`],
  ['an inner join in an outer join\'s optional side naming items outside it', `select p.practice_id, o.ssn as g from ${P2} cross join ${SP} o left join (${SE} e join (select 1 as z) z on e.practice_id = p.practice_id and e.practice_id = o.practice_id) on true`],
];
const thirdPassAccepted: [string, string][] = [
  ['IN over a sub-select of its own practices', `select e.practice_id, e.encounter_id as g from ${SE} e where (e.practice_id, e.patient_id) in (select p.practice_id, p.patient_id from ${SP} p where p.ssn like '9%')`],
];

describe('joins and names, third pass', () => {
  it.each(thirdPass)('refuses %s (TSF231)', (_what, sql) => {
    expect(shown(compile(sql))).toMatch(/TSF231/);
  });
  it.each(thirdPassAccepted)('accepts %s', (_what, sql) => {
    expect(shown(compile(sql))).toBe('(compiles)');
  });
});
