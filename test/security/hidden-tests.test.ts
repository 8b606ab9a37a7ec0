/**
 * Tests that hide what they read. `x IS NULL` and `count(…)` were taken as identifying nobody
 * whatever they tested, and JOIN … USING was not read at all: `nullif(p.ssn, '123-45-6789') IS
 * NULL AS flag` published which person token had that SSN, a CTE's flag summed per cell counted
 * the members with given quasi values, and a join USING a VALUES list kept one patient. Now a
 * NULL test or count of anything but a plain column carries what it tests, a FILTER or an
 * aggregate's ORDER BY carries into the aggregate, USING is a join condition, and a published
 * model's rows may not be kept by a quasi-identifier's presence, DISTINCT ON or a LIMIT over a
 * sorted input either. The refused cases compiled clean at 33b65e2 (red-team round 2).
 */
import { describe, expect, it } from 'vitest';
import type { PhiClass } from '../../src/project/types.ts';
import { compileModel, shown } from '../support/model-probe.ts';

const SP = '{{ref "stg_patients"}}';
const V = '{{ref "vault_person_tokens"}}';
const P = '{{ref "pseudo_persons"}}';
const C = '{{ref "pseudo_conditions"}}';
const PSEUDO = 'models/research/x_pseudo.sql';
const PUB = 'models/research/published/x_cells.sql';
const CP = `${C} c join ${P} p on p.person_token = c.person_token`;
const byPatient = `join ${V} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id`;
const PSEUDO_COLUMNS: Record<string, PhiClass> = { practice_id: 'none', person_token: 'none', flag: 'none', zip3: 'quasi', deceased: 'none' };
const PUB_COLUMNS: Record<string, PhiClass> = { condition_code: 'none', n: 'none', m: 'none' };
const published = (select: string, extra: { file: string; sql: string }[] = []) => compileModel(PUB, `{{config k_anonymity_count="n"}}\n${select}`, PUB_COLUMNS, extra);

describe('a tokenizing model cannot pass an identifier through a NULL test or a USING join (TSF215)', () => {
  it.each([
    ['whether the SSN is a given one', `select p.practice_id, v.person_token, nullif(p.ssn, '123-45-6789') is null as flag from ${SP} p ${byPatient}`, /flag exposes a direct identifier/],
    ['a bit of the SSN', `select p.practice_id, v.person_token, nullif(cast(substr(p.ssn, 1, 1) as integer) % 2, 1) is null as flag from ${SP} p ${byPatient}`, /flag exposes a direct identifier/],
    ['whether the name is a given one', `select p.practice_id, v.person_token, nullif(lower(p.last_name), 'smith') is null as flag from ${SP} p ${byPatient}`, /flag exposes a direct identifier/],
    ['the parity of the day of birth', `select p.practice_id, v.person_token, nullif(cast(extract(day from p.birth_date) as integer) % 2, 1) is null as flag from ${SP} p ${byPatient}`, /flag exposes a quasi-identifier/],
    ['rows kept by a test of the SSN', `select p.practice_id, v.person_token from ${SP} p ${byPatient} where nullif(p.ssn, '123-45-6789') is null`, /reads a direct identifier outside its select list/],
    ['rows kept by a USING join to a list of SSNs', `select p.practice_id, v.person_token, {{zip3 "p.zip"}} as zip3 from ${SP} p ${byPatient} join (values ('123-45-6789')) x(ssn) using (ssn)`, /reads a direct identifier outside its select list/],
  ])('%s', (_what, select, why) => {
    const errors = compileModel(PSEUDO, select, PSEUDO_COLUMNS);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(why);
  });

  it.each([
    ['whether a column is there', `select p.practice_id, v.person_token, p.death_date is not null as deceased from ${SP} p ${byPatient}`],
    ['the vault joined USING its keys', `select p.practice_id, v.person_token from ${SP} p join ${V} v using (practice_id, patient_id)`],
  ])('%s is accepted', (_what, select) => {
    const errors = compileModel(PSEUDO, select, PSEUDO_COLUMNS);
    expect(errors, shown(errors)).toEqual([]);
  });
});

describe('a published aggregate cannot count members by a test computed before the cells (TSF215)', () => {
  it.each([
    ['a NULL-test flag in a CTE, summed', `with t as (select c.condition_code, c.person_token, cast(nullif(p.zip3, '021') is null and nullif(p.birth_year, 1956) is null as integer) as f from ${CP}) select t.condition_code, count(distinct t.person_token) as n, sum(t.f) as m from t group by 1`],
    ['a count of a CASE per person, summed', `with f as (select p.person_token, count(case when p.zip3 = '021' and p.birth_year = 1956 then 1 end) as f from ${P} p group by p.person_token) select c.condition_code, count(distinct c.person_token) as n, sum(f.f) as m from ${C} c join f on f.person_token = c.person_token group by 1`],
    ['a filtered count per person, summed', `with f as (select p.person_token, count(*) filter (where p.zip3 = '021' and p.birth_year = 1956) as f from ${P} p group by p.person_token) select c.condition_code, count(distinct c.person_token) as n, sum(f.f) as m from ${C} c join f on f.person_token = c.person_token group by 1`],
    ['a flag joined USING quasi-identifiers', `select c.condition_code, count(distinct c.person_token) as n, sum(f.flag) as m from ${CP} left join (values ('021', 1956, 1)) f(zip3, birth_year, flag) using (zip3, birth_year) group by 1`],
  ])('%s', (_what, select) => {
    const errors = published(select);
    expect(errors.map((e) => e.code), shown(errors)).toContain('TSF215');
  });

  it('the flag made in an ephemeral model', () => {
    const flag = { file: 'models/research/x_flag.sql', sql: `{{config materialized="ephemeral"}}\nselect p.person_token, cast(nullif(p.zip3, '021') is null and nullif(p.birth_year, 1956) is null as integer) as f from ${P} p` };
    const errors = published(`select c.condition_code, count(distinct c.person_token) as n, sum(e.f) as m from ${C} c join {{ref "x_flag"}} e on e.person_token = c.person_token group by 1`, [flag]);
    expect(errors.map((e) => e.code), shown(errors)).toContain('TSF215');
  });
});

describe('a published aggregate\'s rows are not kept by a hidden quasi-identifier test (TSF215)', () => {
  it.each([
    ['a NULL test of an expression', `select c.condition_code, count(distinct c.person_token) as n from ${CP} where nullif(p.zip3, '021') is not null group by 1`],
    ['whether the birth year is there (everyone aged 90 or more left out)', `select c.condition_code, count(distinct c.person_token) as n from ${CP} where p.birth_year is not null group by 1`],
    ['a join USING a VALUES list', `select c.condition_code, count(distinct c.person_token) as n from ${CP} join (values ('021')) f(zip3) using (zip3) group by 1`],
    ['DISTINCT ON quasi-identifiers', `with pp as (select distinct on (zip3, birth_year) * from ${P} order by zip3, birth_year) select c.condition_code, count(distinct c.person_token) as n from ${C} c join pp p on p.person_token = c.person_token group by 1`],
    ['a LIMIT over a sorted CTE', `with s as (select * from ${P} order by zip3, birth_year), pp as (select * from s limit 1000) select c.condition_code, count(distinct c.person_token) as n from ${C} c join pp p on p.person_token = c.person_token group by 1`],
  ])('%s', (_what, select) => {
    const errors = published(select);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(/keeps its rows by a quasi-identifier/);
  });
});

describe('a published aggregate cannot pick known persons by their token (TSF215)', () => {
  it.each([
    ['a measure joined USING a list of tokens', `select c.condition_code, count(distinct c.person_token) as n, sum(k.hit) as m from ${C} c left join (values ('deadbeef', 1)) k(person_token, hit) using (person_token) group by 1`],
    ['a measure joined ON a list of tokens', `select c.condition_code, count(distinct c.person_token) as n, sum(k.hit) as m from ${C} c left join (values ('deadbeef', 1)) k(t, hit) on k.t = c.person_token group by 1`],
    ['a token left out by its value', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.person_token <> 'deadbeef' group by 1`],
    ['tokens in a list', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.person_token in ('a', 'b') group by 1`],
    ['tokens in a sub-select of VALUES', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.person_token in (select k.t from (values ('a')) k(t)) group by 1`],
    ['tokens matched in an EXISTS over VALUES', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where exists (select 1 from (values ('a')) k(t) where k.t = c.person_token) group by 1`],
  ])('%s', (_what, select) => {
    const errors = published(select);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(/compares a person token with values that are not person tokens/);
  });

  it.each([
    ['a cohort of tokens from a model', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.person_token in (select q.person_token from ${C} q where q.condition_code = '44054006') group by 1`],
    ['persons joined USING the token', `select c.condition_code, count(distinct c.person_token) as n from ${C} c join ${P} p using (person_token) group by 1`],
  ])('%s is accepted', (_what, select) => {
    const errors = published(select);
    expect(errors, shown(errors)).toEqual([]);
  });
});
