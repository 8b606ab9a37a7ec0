/**
 * A sub-select can sit in any clause of a SELECT: VALUES rows, a table function's arguments,
 * LIMIT, OFFSET, DISTINCT ON, a WINDOW clause. Each check that follows rows (practices apart in a
 * batch, one person per row below a published aggregate, one patient per row in a tokenizing
 * model) must read every one of them; before, VALUES and table functions were skipped, and the
 * practice check read only five clauses. The refused cases compiled clean at 33b65e2.
 */
import { parseSync } from 'libpg-query';
import { describe, expect, it } from 'vitest';
import { rowClauses, subLinks } from '../../src/compile/select-scope.ts';
import type { PgJson } from '../../src/compile/pg-tree.ts';
import { compileModel, shown } from '../support/model-probe.ts';

const SP = '{{ref "stg_patients"}}';
const P = '{{ref "pseudo_persons"}}';
const C = '{{ref "pseudo_conditions"}}';
const V = '{{ref "vault_person_tokens"}}';
const MART = 'models/marts/x_mix.sql';
const PUB = 'models/research/published/x_cells.sql';
const PSEUDO = 'models/research/x_pseudo.sql';

describe('every clause of a SELECT is read for sub-selects', () => {
  it.each([
    ['a VALUES row', 'select * from (values ((select 1))) v(x)'],
    ['a table function argument', 'select * from unnest((select array[1])) u(x)'],
    ['LIMIT', 'select 1 limit (select 1)'],
    ['OFFSET', 'select 1 offset (select 1)'],
    ['DISTINCT ON', 'select distinct on ((select 1)) 1'],
    ['a WINDOW clause', 'select row_number() over w from t window w as (order by (select 1))'],
    ['a join condition', 'select 1 from a join b on a.x = (select 1)'],
  ])('%s', (_where, sql) => {
    const stmt = (parseSync(sql).stmts![0]!.stmt as PgJson).SelectStmt as PgJson;
    // The VALUES row and the table function sit one level down: in the derived table's SELECT, or in FROM.
    const from = (stmt.fromClause as PgJson[] | undefined)?.[0];
    const inner = from && 'RangeSubselect' in from ? ((from.RangeSubselect as PgJson).subquery as PgJson).SelectStmt as PgJson : stmt;
    expect(subLinks(rowClauses(inner))).toHaveLength(1);
  });
});

describe('a tenant-scoped model cannot read other practices through a sub-select anywhere (TSF231)', () => {
  it.each([
    ['in a table function (unnest) of every practice\'s SSNs', `select p.practice_id, u.x from ${SP} p cross join unnest((select list(o.ssn) from ${SP} o)) as u(x)`],
    ['in a VALUES row of a derived table', `select p.practice_id, v.x from ${SP} p cross join (values ((select string_agg(o.practice_id || ':' || o.ssn, ',') from ${SP} o))) v(x)`],
    ['in a CTE of VALUES', `with t as (select * from (values ((select string_agg(o.ssn, ',') from ${SP} o))) v(x)) select p.practice_id, t.x from ${SP} p cross join t`],
    ['in generate_series bounds', `select p.practice_id, g.n from ${SP} p cross join generate_series(1, (select count(*) from ${SP} o where o.last_name = 'Smith')) g(n)`],
    ['in LIMIT', `select p.practice_id, p.first_name from ${SP} p limit (select count(*) from ${SP} o)`],
    ['in OFFSET', `select p.practice_id, p.first_name from ${SP} p offset (select count(*) from ${SP} o)`],
    ['in DISTINCT ON', `select distinct on ((select count(*) from ${SP} o where o.ssn = p.ssn)) p.practice_id, p.first_name from ${SP} p`],
    ['a table function first in FROM', `select u.x as practice_id from unnest((select list(o.practice_id) from ${SP} o)) as u(x)`],
  ])('%s', (_how, sql) => {
    const errors = compileModel(MART, sql, { practice_id: 'none', x: 'none', n: 'none', first_name: 'direct' });
    expect(errors.map((e) => e.code), shown(errors)).toContain('TSF231');
    expect(errors.filter((e) => e.code === 'TSF231').every((e) => e.file === MART && (e.line ?? 0) >= 1)).toBe(true);
  });

  it.each([
    ['a table function of literals', `select p.practice_id, u.x from ${SP} p cross join unnest([1, 2, 3]) as u(x)`],
    ['a VALUES lookup list', `select p.practice_id, v.label from ${SP} p join (values ('M', 'male'), ('F', 'female')) v(code, label) on v.code = p.sex`],
    ['a sub-select in WHERE over no practice', `select p.practice_id, p.sex from ${SP} p where p.sex <> (select 'X')`],
    ['a correlated sub-select in a table function', `select p.practice_id, u.x from ${SP} p cross join unnest((select list(o.sex) from ${SP} o where o.practice_id = p.practice_id)) as u(x)`],
  ])('%s is accepted', (_how, sql) => {
    const errors = compileModel(MART, sql, { practice_id: 'none', x: 'none', label: 'none', sex: 'quasi' });
    expect(errors.filter((e) => e.code === 'TSF231'), shown(errors)).toEqual([]);
  });
});

describe('a published aggregate cannot key its cells by other persons\' values through VALUES (TSF215)', () => {
  const agg = (select: string) => `{{config k_anonymity_count="n"}}\n${select}`;
  it.each([
    ['every person\'s token and quasi-identifiers as one key', `select v.dump, count(distinct p.person_token) as n from ${P} p cross join (values ((select string_agg(o.person_token || ':' || o.zip3 || ':' || cast(o.birth_year as varchar), ',') from ${P} o))) v(dump) group by 1`],
    ['one person\'s ZIP3 as the key of everyone', `select v.z, count(distinct p.person_token) as n from ${P} p cross join (values ((select max(o.zip3) from ${P} o where o.birth_year = 1956 and o.sex = 'F'))) v(z) group by 1`],
    ['tokens and conditions as a key', `select v.dump, count(distinct p.person_token) as n from ${P} p cross join (values ((select string_agg(o.person_token || ':' || o.condition_code, ',') from ${C} o))) v(dump) group by 1`],
    ['cells chosen by one person in WHERE', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.condition_code in (select v.x from (values ((select max(o.condition_code) from ${C} o join ${P} q on q.person_token = o.person_token where q.zip3 = '021' and q.birth_year = 1956))) v(x)) group by 1`],
  ])('%s', (_how, sql) => {
    const errors = compileModel(PUB, agg(sql), { dump: 'quasi', z: 'quasi', x: 'none', condition_code: 'none', n: 'none' });
    expect(errors.map((e) => e.code), shown(errors)).toContain('TSF215');
  });

  it('through an ephemeral model', () => {
    const eph = { file: 'models/research/published/x_eph.sql', sql: `{{config materialized="ephemeral"}}\nselect v.dump from (values ((select string_agg(o.person_token || ':' || o.zip3, ',') from ${P} o))) v(dump)` };
    const errors = compileModel(PUB, agg(`select x.dump, count(distinct p.person_token) as n from ${P} p cross join {{ref "x_eph"}} x group by 1`), { dump: 'quasi', n: 'none' }, [eph]);
    expect(errors.map((e) => e.code), shown(errors)).toContain('TSF215');
  });
});

describe('a tokenizing model cannot give a patient another patient\'s values through VALUES', () => {
  it('refused', () => {
    const sql = `select p.practice_id, v.person_token, {{zip3 "x.z"}} as zz from ${SP} p join ${V} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id cross join (values ((select max(o.zip) from ${SP} o where o.sex = 'F'))) x(z)`;
    const errors = compileModel(PSEUDO, sql, { practice_id: 'none', person_token: 'none', zz: 'quasi' });
    expect(errors.length, shown(errors)).toBeGreaterThan(0);
    expect(errors.some((e) => e.code === 'TSF231' || e.code === 'TSF215'), shown(errors)).toBe(true);
  });
});
