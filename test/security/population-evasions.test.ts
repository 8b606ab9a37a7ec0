/**
 * Ways to choose a published relation's population (or expose an identifier) that the lineage
 * did not read, found by a red-team round on a2993ff; each compiled clean there:
 *
 * - F1 the high-water exemption took any `>` against `{{this}}`'s same column, a CASE giving a
 *   constant included (now: only values picked by max or coalesce, in the is_incremental rendering);
 * - F2 NATURAL JOIN's implied condition was never read;
 * - F3 a NULL test or count() of a column computed upstream (a CTE's `nullif(ssn, …)`) passed as
 *   identifying nobody;
 * - F4 a set-returning call in a select list drops the rows it returns nothing for;
 * - F5 the tokenization-join exemption needed only one side to be the vault's key;
 * - F6 LIMIT and OFFSET expressions were not read as keeping rows.
 */
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import type { PhiClass } from '../../src/project/types.ts';
import { compileModel, shown, type ProbeModel } from '../support/model-probe.ts';
import { aggregate, byPatient, C, CELLS_B, INC, P, personLevel, personsB, PERSONS_SEL, PSEUDO_COLUMNS, PUB, Q, refused, SP, STG_COLS, STG_LIST, V, viaPseudo, viaStaging } from '../support/population-probes.ts';

const HW = (op: string) => `select p.* from ${SP} p
left join (select t.practice_id, max(t.ssn) as ssn from {{this}} t group by t.practice_id) hw on hw.practice_id = p.practice_id
where p.ssn ${op} case when hw.ssn is null then '123-45-6789' else '123-45-6789' end`;

describe('F1 a high-water test is one against values picked from {{this}}, in the is_incremental rendering only', () => {
  // A table model may not read {{this}} at all now (TSF205 at its line, before the lineage gate).
  it('table model, ssn > constant (via CASE over this.ssn): {{this}} outside an incremental model', () => {
    expect(viaStaging(HW('>')).map((e) => e.code), 'TSF205').toContain('TSF205');
  });
  it.each([
    ['incremental, both renderings, ssn >= constant', `{{config materialized="incremental" unique_key="patient_id"}}\n${HW('>=')}`],
    ['is_incremental rendering, zip > greatest(max(this.zip), const)', `{{config materialized="incremental" unique_key="patient_id"}}\nselect * from ${SP} p\n{{#if is_incremental}}where p.zip > greatest((select max(t.zip) from {{this}} t), '02139'){{/if}}`],
  ])('%s', (_w, sql) => {
    const errors = viaStaging(sql);
    refused(errors);
  });
});

describe('F2 NATURAL JOIN is read as USING its common columns', () => {
  it('staging: anti-join on zip via NATURAL LEFT JOIN VALUES', () => refused(viaStaging(`select p.* from ${SP} p natural left join (values ('02139', 1)) x(zip, hit) where x.hit is null`)));
  it('staging: anti-join via a seed', () => refused(viaStaging(`select p.* from ${SP} p natural left join (select zip3 as zip, 1 as hit from {{ref "restricted_zip3"}}) r where r.hit is null`)));
  it('tokenizing model: one SSN left out', () => refused(viaPseudo(`select ${PERSONS_SEL} from ${SP} p natural left join (values ('123-45-6789', 1)) x(ssn, hit) ${byPatient} where x.hit is null`)));
  it('pseudonymized model: one zip3+birth_year left out', () => refused(viaPseudo(`select ${Q} from ${P} q natural left join (values ('021', 1956, 1)) x(zip3, birth_year, hit) where x.hit is null`)));
  it('published aggregate itself', () => refused(aggregate(`select p.sex, count(distinct p.person_token) as n from ${P} p natural left join (values ('021', 1)) x(zip3, hit) where x.hit is null group by 1`)));
  it('published person-level relation', () => refused(personLevel(`select q.person_token, q.sex from ${P} q natural left join (values ('021', 1956, 1)) x(zip3, birth_year, hit) where x.hit is null`)));
});

describe('F3 a NULL test or count() of a column computed from an identifier keeps its class', () => {
  it('pseudonymized model exposes whether the SSN is a given one', () =>
    refused(compileModel('models/research/x_pseudo.sql', `with a as (select p.practice_id, v.person_token, nullif(p.ssn, '123-45-6789') as z from ${SP} p ${byPatient}) select a.practice_id, a.person_token, a.z is null as flag from a`, PSEUDO_COLUMNS)));
  it('pseudonymized model exposes it through count()', () =>
    refused(compileModel('models/research/x_pseudo.sql', `with a as (select p.practice_id, p.patient_id, nullif(p.ssn, '123-45-6789') as z from ${SP} p), b as (select practice_id, patient_id, count(z) as c from a group by 1, 2) select b.practice_id, v.person_token, b.c as flag from b join ${V} v on v.practice_id = b.practice_id and v.patient_id = b.patient_id`, PSEUDO_COLUMNS)));
  it('published aggregate counts members with a given zip3 per cell', () =>
    refused(aggregate(`with a as (select c.condition_code, c.person_token, nullif(p.zip3, '021') as z from ${C} c join ${P} p on p.person_token = c.person_token), b as (select a.*, cast(a.z is null as integer) as f from a) select b.condition_code, count(distinct b.person_token) as n, sum(b.f) as m from b group by 1`)));
  it('staging population', () => refused(viaStaging(`with a as (select s.*, case when s.zip = '02139' then null else 1 end as k from ${SP} s), b as (select a.*, a.k is null as drop_me from a) select practice_id, patient_id, mrn, birth_date, death_date, ssn, drivers_license, passport, first_name, middle_name, last_name, maiden_name, marital_status, race, ethnicity, sex, address, city, state, county, zip, updated_at from b where not drop_me`)));
  it('pseudonymized population', () => refused(viaPseudo(`with a as (select q.*, nullif(q.zip3, '021') as z from ${P} q), b as (select a.*, a.z is null as d from a) select b.practice_id, b.person_token, b.practice_token, b.birth_year, b.sex, b.zip3 from b where not b.d`)));
  it('person-level published', () => refused(personLevel(`with a as (select q.*, nullif(q.zip3, '021') as z from ${P} q), b as (select a.*, a.z is null as d from a) select b.person_token, b.sex from b where not b.d`)));
});

// The unnest cases run one practice per statement (incremental): in a batched model an unnest in a
// select list is refused first by the batch check (TSF231, DuckDB may expand it into columns), and
// this is the population gate's test.
const ONE_PRACTICE = '{{config materialized="incremental" unique_key="person_token"}}\n';
describe('F4 a set-returning call in a select list keeps rows by what it reads', () => {
  it('staging: unnest of an empty array for one zip', () => refused(viaStaging(`${INC}\nselect p.*, unnest(case when p.zip = '02139' then array[]::int[] else array[1] end) as n from ${SP} p`)));
  it('tokenizing model CTE: generate_series(1, 0) for one SSN (PostgreSQL)', () => refused(viaPseudo(`with g as (select p.*, generate_series(1, case when p.ssn = '123-45-6789' then 0 else 1 end) as g from ${SP} p) select ${PERSONS_SEL} from g p ${byPatient}`)));
  it('pseudonymized model CTE', () => refused(viaPseudo(`${ONE_PRACTICE}with g as (select q.*, unnest(case when q.zip3 = '021' and q.birth_year = 1956 then array[]::int[] else array[1] end) as g from ${P} q) select ${Q} from g q`)));
  it('published aggregate CTE', () => refused(aggregate(`with a as (select p.*, unnest(case when p.zip3 = '021' then array[]::int[] else array[1] end) as g from ${P} p) select a.sex, count(distinct a.person_token) as n from a group by 1`)));
});

describe('F5 the tokenization join is exempt only between the vault\'s key and a stored column', () => {
  it('ON x.patient_id = v.patient_id against a VALUES list (one patient left out)', () => refused(viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} left join (values ('pid-1', 1)) x(patient_id, hit) on x.patient_id = v.patient_id where x.hit is null`)));
  it('inner join: one patient kept', () => refused(viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} join (values ('pid-1')) x(patient_id) on x.patient_id = v.patient_id`)));
  it('USING (patient_id) after the vault join', () => refused(viaPseudo(`select ${PERSONS_SEL} from ${SP} p join ${V} v using (practice_id, patient_id) left join (values ('pid-1', 1)) x(patient_id, hit) using (patient_id) where x.hit is null`)));
});

describe('F6 LIMIT and OFFSET expressions keep rows (correlated, PostgreSQL)', () => {
  it('staging EXISTS (select 1 limit case …)', () => refused(viaStaging(`select p.* from ${SP} p where exists (select 1 limit case when p.zip = '02139' then 0 else 1 end)`)));
  it('staging EXISTS (select 1 offset case …)', () => refused(viaStaging(`select p.* from ${SP} p where exists (select 1 offset case when p.zip = '02139' then 1 else 0 end)`)));
  it('pseudonymized', () => refused(viaPseudo(`select ${Q} from ${P} q where exists (select 1 limit case when q.zip3 = '021' then 0 else 1 end)`)));
});

/** Round 4, against e6bef6c: N1 a high-water fallback of one's choosing, N2 the tokenization join to constants or a seed through a model, N3 set-returning calls outside the select list, N4 DISTINCT ON without ORDER BY. */
const ONE = `select 'p_00ffb20407' as practice_id, '589cabc6-49a4-13ab-b249-4d4477de54b9' as patient_id, 1 as hit`;
const EPH = (sql: string): ProbeModel => ({ file: 'models/staging/eph_ids.sql', sql: `{{config materialized="ephemeral"}}\n${sql}`, columns: { practice_id: 'none', patient_id: 'direct', hit: 'none' } });
const ANTI = `left join {{ref "eph_ids"}} x on x.practice_id = v.practice_id and x.patient_id = v.patient_id where x.hit is null`;
const cases: [string, () => Diagnostic[]][] = [
  ['N1 (F1) high-water against coalesce(max over {{this}}, constant): SSN >= constant', () =>
    viaStaging(`${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.ssn >= coalesce((select max(t.ssn) from {{this}} t), '123-45-6789'){{else}}where 1 = 0{{/if}}`)],
  ['N1b (F1) same, {{this}} stores ssn as NULL so the constant always wins', () =>
    viaStaging(`${INC}\nselect ${STG_LIST.replace('ssn,', 'cast(null as varchar) as ssn,')} from ${SP} p\n{{#if is_incremental}}where p.ssn >= coalesce((select max(t.ssn) from {{this}} t), '123-45-6789'){{/if}}`)],
  ['N2 (F5) tokenization join to constants in an ephemeral model: all but one patient', () =>
    viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} ${ANTI}`, [EPH(ONE)])],
  ['N2b (F5) ephemeral over a seed (values written into the project)', () =>
    viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} ${ANTI}`, [EPH(`select 'p_00ffb20407' as practice_id, r.zip3 as patient_id, 1 as hit from {{ref "restricted_zip3"}} r`)])],
  ['N2c (F5) published per condition over the all-but-one persons', () =>
    compileModel(PUB, `{{config k_anonymity_count="n"}}\nselect c.condition_code, count(distinct c.person_token) as n from ${C} c join {{ref "pseudo_persons_b"}} p on p.person_token = c.person_token group by 1`, { condition_code: 'none', n: 'none' }, [EPH(ONE), personsB(`select ${PERSONS_SEL} from ${SP} p ${byPatient} ${ANTI}`)])],
  ['N3 (F4) staging: set-returning call in ORDER BY drops one SSN (DuckDB and PostgreSQL)', () =>
    viaStaging(`select p.* from ${SP} p order by unnest(case when p.ssn = '123-45-6789' then array[]::int[] else array[1] end)`)],
  ['N3b (F4) staging: set-returning call in GROUP BY drops one SSN (PostgreSQL)', () =>
    viaStaging(`select ${STG_LIST} from ${SP} p group by ${STG_LIST.split(', ').map((c) => 'p.' + c).join(', ')}, generate_series(1, case when p.ssn = '123-45-6789' then 0 else 1 end)`)],
  ['N4 DISTINCT ON without ORDER BY over a CTE sorted by an SSN test', () =>
    viaStaging(`with s as (select p.* from ${SP} p order by p.ssn = '123-45-6789' desc) select distinct on (s.practice_id) ${STG_LIST} from s`)],
];

describe('round 4: bypasses of the fixes above', () => {
  it.each(cases)('%s', (_name, run) => refused(run()));
});

/**
 * Round 5, against ecc6030: a high-water fallback taken as a floor (a number ≤ 0, an untyped
 * date-shaped string) over a relation whose first build holds one placeholder row per practice,
 * every value NULL: the fallback is then the bound. Run end to end on the demo, two such
 * relations a longitude apart published one patient's sex and 13 of his 16 conditions.
 */
const SRC = '{{source "ehr" "patients"}}';
const GEO_COLS: Record<string, PhiClass> = { ...STG_COLS, lat: 'direct', lon: 'direct' };
const GEO_LIST = Object.keys(GEO_COLS).join(', ');
/** One placeholder row per practice, every column NULL but practice_id: the slice exists, and every stored lon is NULL. */
const PLACEHOLDER = `select distinct p.practice_id, ${Object.keys(GEO_COLS).slice(1).map((c) => `null as ${c}`).join(', ')} from ${SRC} p`;
/**
 * Incremental staging model over the source. Full rendering: only a placeholder row per practice
 * (so the slice exists and is_incremental applies next run, and max(t.lon) is NULL). Next run:
 * loads the patients east of a chosen longitude: a negative number passes as a "floor".
 */
const FULL = `select d.practice_id, ${Object.keys(GEO_COLS).slice(1).map((c) => `x.${c}`).join(', ')}\nfrom (select distinct pr.practice_id from {{source "ehr" "providers"}} pr) d\nleft join ${SRC} x on x.practice_id = d.practice_id and 1 = 0`;
const EAST_OF = (lon: string) => `${INC}\n{{#if is_incremental}}select ${GEO_LIST} from ${SRC} p where p.lon >= coalesce((select max(t.lon) from {{this}} t), ${lon})\n{{else}}${FULL}{{/if}}`;
const stgN = (n: string, sql: string): ProbeModel => ({ file: `models/staging/stg_patients_${n}.sql`, sql, columns: GEO_COLS });
const ppN = (n: string): ProbeModel => ({ file: `models/research/pseudo_persons_${n}.sql`, sql: `select ${PERSONS_SEL} from {{ref "stg_patients_${n}"}} p ${byPatient}`, columns: PSEUDO_COLUMNS });
const cellsN = (n: string): ProbeModel => ({ file: `models/research/published/x_cells_${n}.sql`, sql: `{{config k_anonymity_count="n"}}\nselect p.sex, count(distinct p.person_token) as n from {{ref "pseudo_persons_${n}"}} p group by 1`, columns: { sex: 'quasi', n: 'none' } });
const round5: [string, () => Diagnostic[]][] = [
  ['placeholder full rendering + lon floor', () => compileModel(PUB, CELLS_B, { sex: 'quasi', n: 'none' }, [stgN('b', EAST_OF('-71.094151')), ppN('b')])],
  ['two relations (strip between two longitudes)', () =>
    compileModel(PUB, CELLS_B.replace('pseudo_persons_b', 'pseudo_persons_c'), { sex: 'quasi', n: 'none' }, [stgN('b', EAST_OF('-71.094151')), stgN('c', EAST_OF('-71.094149')), ppN('b'), ppN('c'), cellsN('b')])],
  ['per condition', () =>
    compileModel(PUB, `{{config k_anonymity_count="n"}}\nselect c.condition_code, count(distinct c.person_token) as n from ${C} c join {{ref "pseudo_persons_b"}} p on p.person_token = c.person_token group by 1`, { condition_code: 'none', n: 'none' }, [stgN('b', EAST_OF('-71.094151')), ppN('b')])],
  ['placeholder + zip text "date" floor', () => compileModel(PUB, CELLS_B, { sex: 'quasi', n: 'none' }, [stgN('b', EAST_OF('-71.0').replace(/p\.lon >= coalesce\(\(select max\(t\.lon\)/, 'p.zip >= coalesce((select max(t.zip)').replace('-71.0)', "'0213-01-01')")), ppN('b')])],
];
describe('round 5: a high-water fallback that is no floor', () => {
  it.each(round5)('%s', (_name, run) => refused(run()));
});

describe('a known person token picked by value in a model below a published relation (TSF215)', () => {
  it.each([
    ['in the tokenizing model', `select ${PERSONS_SEL} from ${SP} p ${byPatient} where v.person_token <> 'ab12cd34'`],
    ['by an anti-join with a VALUES list, in the tokenizing model', `select ${PERSONS_SEL} from ${SP} p ${byPatient} left join (values ('ab12cd34', 1)) x(t, hit) on x.t = v.person_token where x.hit is null`],
    ['in a pseudonymized model over pseudo_persons', `select ${Q} from ${P} q where q.person_token <> 'ab12cd34'`],
  ])('%s', (_what, sql) => {
    const errors = viaPseudo(sql);
    expect(errors.find((e) => e.code === 'TSF215' && e.message.includes('compares a person token with values that are not person tokens'))?.file, shown(errors)).toBe(PUB);
  });
});

describe('round 6: a person token compared through a function, a cast or a row', () => {
  const CP = (where: string) => `select c.condition_code, count(distinct c.person_token) as n from ${C} c where ${where} group by 1`;
  it.each([
    ['lower(token) in the published aggregate', () => aggregate(CP(`lower(c.person_token) <> 'pt_ab12'`))],
    ['a cast in the published aggregate', () => aggregate(CP(`c.person_token::text <> 'pt_ab12'`))],
    ['a row comparison in the published aggregate', () => aggregate(CP(`(c.person_token, 1) <> ('pt_ab12', 1)`))],
    ['substr of the token in the tokenizing model', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where substr(v.person_token, 1, 7) <> 'pt_ab12'`)],
    ['coalesce of the token in the tokenizing model', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where coalesce(v.person_token, '') <> 'pt_ab12'`)],
    ['position() = 0 in the tokenizing model', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where position('pt_ab12' in v.person_token) = 0`)],
    ['not starts_with in the tokenizing model', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where not starts_with(v.person_token, 'pt_ab')`)],
    ['an anti-join on a hashed token', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} left join (values ('x')) x(h) on x.h = md5(v.person_token) where x.h is null`)],
    ['a CTE\'s computed token in a pseudonymized model', () => viaPseudo(`with a as (select q.*, lower(q.person_token) as t from ${P} q) select a.practice_id, a.person_token, a.practice_token, a.birth_year, a.sex, a.zip3 from a where a.t <> 'pt_ab12'`)],
  ])('%s', (_what, run) => refused(run()));
});

describe("the common dbt fallback coalesce(max(updated_at), '1900-01-01'): refused, and the message says what passes", () => {
  it('names the floors a high-water fallback may use', () => {
    const errors = viaStaging(`${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.updated_at > coalesce((select max(t.updated_at) from {{this}} t), timestamptz '1900-01-01 00:00:00+00'){{/if}}`);
    const e = errors.find((d) => d.code === 'TSF215' && d.file === PUB);
    expect(e?.message, shown(errors)).toContain("(in the is_incremental rendering)");
    expect(e?.message).toContain("whose fallback is NULL, '' or timestamptz '-infinity'");
  });
  it('a filter outside the is_incremental rendering gets no such hint', () => {
    const errors = viaStaging(`select p.* from ${SP} p where p.zip <> '02139'`);
    const e = errors.find((d) => d.code === 'TSF215' && d.file === PUB);
    expect(e?.message, shown(errors)).toBeDefined();
    expect(e?.message).not.toContain('high-water');
  });
});

describe('round 6: a high-water bound on an identifier itself', () => {
  it.each([
    ['zip > max(this.zip)', `${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.zip > (select max(t.zip) from {{this}} t){{/if}}`],
    ['ssn >= coalesce(max(this.ssn), \'\')', `${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.ssn >= coalesce((select max(t.ssn) from {{this}} t), ''){{/if}}`],
  ])('%s', (_what, sql) => refused(viaStaging(sql)));
});

describe('what the fixes leave accepted', () => {
  it('the tokenization join written with USING', () => {
    const errors = viaPseudo(`select ${PERSONS_SEL} from ${SP} p join ${V} v using (practice_id, patient_id)`);
    expect(errors, shown(errors)).toEqual([]);
  });
  it('a high-water test with a floor for an empty relation, over a column the model keeps as stored', () => {
    const errors = viaStaging(`${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.updated_at > coalesce((select max(t.updated_at) from {{this}} t), timestamptz '-infinity'){{/if}}`);
    expect(errors, shown(errors)).toEqual([]);
  });
  it('cells chosen by their count of tokens (HAVING count(distinct token))', () => {
    const errors = aggregate(`select c.condition_code, count(distinct c.person_token) as n from ${C} c group by 1 having count(distinct c.person_token) >= 20`);
    expect(errors, shown(errors)).toEqual([]);
  });
  it('a NULL test of a column as stored (the demo\'s deceased flag)', () => {
    const errors = viaPseudo(`select ${PERSONS_SEL}, p.death_date is not null as flag from ${SP} p ${byPatient}`);
    expect(errors, shown(errors)).toEqual([]);
  });
});
