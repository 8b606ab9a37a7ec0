/**
 * A published relation's population is chosen by every model below it, not only by its own SQL:
 * a staging or pseudonymized model that leaves out one person's rows by a quasi-identifier,
 * read by a second published relation beside one over everyone, names that person by
 * differencing. These cases compiled clean at f8fdb6e.
 */
import { describe, expect, it } from 'vitest';
import { compileModel, shown } from '../support/model-probe.ts';

const PERSONS = (from: string) => `select p.practice_id, v.person_token, v.practice_token, {{birth_year "p.birth_date"}} as birth_year, {{sex_category "p.sex"}} as sex, {{zip3 "p.zip"}} as zip3
from {{ref "${from}"}} p
join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id`;
const PUB = 'models/research/published/x_cells.sql';
const CELLS = (from: string) => `{{config k_anonymity_count="n"}}\nselect p.sex, count(distinct p.person_token) as n from {{ref "${from}"}} p group by 1`;
const stg = (sql: string) => ({ file: 'models/staging/stg_patients_b.sql', sql });
const PERSONS_COLUMNS = { practice_id: 'none', person_token: 'none', practice_token: 'none', birth_year: 'quasi', sex: 'quasi', zip3: 'quasi' } as const;
const personsB = (from: string) => ({ file: 'models/research/pseudo_persons_b.sql', sql: PERSONS(from), columns: PERSONS_COLUMNS });
/** A published count per sex over pseudo_persons_b, which reads `stg_patients_b` (`sql`). */
const published = (sql: string) => compileModel(PUB, CELLS('pseudo_persons_b'), { sex: 'quasi', n: 'none' }, [stg(sql), personsB('stg_patients_b')]);
const refusal = (errors: ReturnType<typeof compileModel>) => errors.find((e) => e.code === 'TSF215' && e.message.includes('keeps by an identifying value'));

describe('a population chosen by a quasi-identifier below a published relation (TSF215)', () => {
  it.each([
    ['a staging model without one ZIP', `select * from {{ref "stg_patients"}} where zip <> '02139'`, 'zip'],
    ['a staging model joined on a birth date', `select p.* from {{ref "stg_patients"}} p join {{ref "stg_patients"}} b on b.practice_id = p.practice_id and b.patient_id = p.patient_id and p.birth_date <> date '1956-03-01'`, 'birth_date'],
    // One practice per statement (incremental): batched, TSF231 refuses any LIMIT first.
    ['an ordered LIMIT in a staging model', `{{config materialized="incremental" unique_key="patient_id"}}\nselect * from {{ref "stg_patients"}} order by zip limit 100000`, 'zip'],
    ['a filter in the is_incremental rendering only', `{{config materialized="incremental" unique_key="patient_id"}}\nselect * from {{ref "stg_patients"}} p\n{{#if is_incremental}}where p.updated_at > (select max(t.updated_at) from {{this}} t) and p.zip <> '02139'{{/if}}`, 'zip'],
    ['a high-water test that also reads a quasi-identifier', `{{config materialized="incremental" unique_key="patient_id"}}\nselect * from {{ref "stg_patients"}} p\n{{#if is_incremental}}where p.updated_at > (select max(t.updated_at) from {{this}} t) + case when p.zip = '02139' then interval '100 years' else interval '0 days' end{{/if}}`, 'updated_at'],
  ])('%s, read by a second pseudo_persons', (_what, sql, column) => {
    const errors = published(sql);
    const r = refusal(errors);
    expect(r?.message, shown(errors)).toContain('rows that stg_patients_b keeps by an identifying value');
    expect(r?.message).toContain(column);
    expect(r).toMatchObject({ file: PUB });
  });

  it.each([
    ['one SSN left out', `select * from {{ref "stg_patients"}} where ssn <> '123-45-6789'`, 'ssn'],
    ['rows removed by EXCEPT', `select practice_id, patient_id, birth_date, sex, zip from {{ref "stg_patients"}} except select practice_id, patient_id, birth_date, sex, zip from {{ref "stg_patients"}} where 1 = 0`, 'patient_id'],
    ['rows kept by INTERSECT', `select practice_id, patient_id, birth_date, sex, zip from {{ref "stg_patients"}} intersect select practice_id, patient_id, birth_date, sex, zip from {{ref "stg_patients"}} where 1 = 1`, 'patient_id'],
    ['a patient picked by a VALUES list', `select p.* from {{ref "stg_patients"}} p join (values ('p-1')) x(patient_id) using (patient_id)`, 'patient_id'],
    ['a join on the patient key (only the vault\'s tokenization join is exempt)', `select p.* from {{ref "stg_patients"}} p join {{ref "stg_encounters"}} e on e.practice_id = p.practice_id and e.patient_id = p.patient_id`, 'patient_id'],
  ])('%s: a direct identifier below a published relation', (_what, sql, column) => {
    const errors = published(sql);
    expect(refusal(errors)?.message, shown(errors)).toContain(column);
  });

  it('a model below that the analysis cannot read (DuckDB-only QUALIFY) fails closed', () => {
    // TSF222 refuses it in any model; the published one's gate would too (populationUnread).
    const errors = published(`select * from {{ref "stg_patients"}} qualify ssn <> '123-45-6789'`);
    expect(errors.some((e) => e.code === 'TSF222' || e.message.includes('published over rows that cannot be checked')), shown(errors)).toBe(true);
  });

  it('two models down, and in a pseudonymized model', () => {
    const extra = [stg(`select * from {{ref "stg_patients"}} where zip <> '02139'`), { file: 'models/staging/stg_patients_c.sql', sql: 'select * from {{ref "stg_patients_b"}}' }, personsB('stg_patients_c')];
    let errors = compileModel(PUB, CELLS('pseudo_persons_b'), { sex: 'quasi', n: 'none' }, extra);
    expect(refusal(errors)?.message, shown(errors)).toContain('rows that stg_patients_b keeps by an identifying value');
    const filtered = { file: 'models/research/pseudo_persons_c.sql', sql: 'select * from {{ref "pseudo_persons"}} where birth_year <> 1956' };
    errors = compileModel(PUB, CELLS('pseudo_persons_c'), { sex: 'quasi', n: 'none' }, [filtered]);
    expect(refusal(errors)?.message, shown(errors)).toContain('rows that pseudo_persons_c keeps by an identifying value');
  });

  it('an ephemeral model filtered by a quasi-identifier', () => {
    const extra = [{ file: 'models/research/pp_eph.sql', sql: `{{config materialized="ephemeral"}}\nselect person_token, sex from {{ref "pseudo_persons"}} where zip3 <> '021'`, columns: { person_token: 'none', sex: 'quasi' } as const }];
    const errors = compileModel(PUB, CELLS('pp_eph'), { sex: 'quasi', n: 'none' }, extra);
    expect(errors.some((e) => e.code === 'TSF215' && e.file === PUB && e.message.includes('(zip3 <-')), shown(errors)).toBe(true);
  });
});

describe('populations below that leave nobody out are accepted', () => {
  it.each([
    // (`where practice_id <> 'p_closed'` was here: a practice left out picks it by differencing, practice-token-lookups.test.ts)
    ['a staging model filtered by whether the practice id is set', `select * from {{ref "stg_patients"}} where practice_id is not null`],
    ['an incremental staging model\'s high-water test', `{{config materialized="incremental" unique_key="patient_id"}}\nselect * from {{ref "stg_patients"}} p\n{{#if is_incremental}}where p.updated_at > (select max(t.updated_at) from {{this}} t){{/if}}`],
    ['a high-water test beside a filter of no class', `{{config materialized="incremental" unique_key="patient_id"}}\nselect * from {{ref "stg_patients"}} p\n{{#if is_incremental}}where p.updated_at >= coalesce((select max(t.updated_at) from {{this}} t), timestamptz '-infinity') and p.practice_id is not null{{/if}}`],
  ])('%s', (_what, sql) => {
    const errors = published(sql);
    expect(errors, shown(errors)).toEqual([]);
  });

  it('a mart filtered by a quasi-identifier is no published relation\'s population', () => {
    const errors = compileModel('models/marts/young_patients.sql', `select practice_id, patient_id from {{ref "stg_patients"}} where birth_date > date '2000-01-01'`, { practice_id: 'none', patient_id: 'direct' });
    expect(errors, shown(errors)).toEqual([]);
  });
});
