import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * A tokenizing model gives a patient record's row its person token; downstream, every value in
 * that row is taken to be that person's. Found in the nineteenth session: a tenant model joining
 * each patient to the patient with a given SSN (same practice, so batch-safe), tokenized and
 * counted in a published aggregate, published that patient's conditions with a count of the
 * whole practice. Compile now follows the select list down to the sources (patient-rows.ts).
 */
const base = loadProject(REPO_ROOT);
const MID = 'models/marts/x_mid.sql';
const TOKENIZED = 'models/research/x_tokenized.sql';
const PAT = '{{ref "stg_patients"}}';
const COND = '{{ref "stg_conditions"}}';
const VAULT = '{{ref "vault_person_tokens"}}';
const tokenize = (from: string) =>
  `select x.practice_id, v.person_token, x.value from ${from} x join ${VAULT} v on v.practice_id = x.practice_id and v.patient_id = x.patient_id`;

function compileWith(models: Record<string, string>): Diagnostic[] {
  const project = structuredClone(base);
  for (const [file, sql] of Object.entries(models)) {
    const name = file.replace(/^.*\//, '').replace(/\.sql$/, '');
    project.models.push({ name, file, sql: `${sql}\n`, line: 1 });
  }
  return compileErrors(project);
}

describe('rows given a person token that hold another patient\'s values', () => {
  it.each([
    [
      'the patient with a given SSN, beside every patient of the practice',
      `select p.practice_id, p.patient_id, oc.condition_code as value from ${PAT} p join ${PAT} o on o.practice_id = p.practice_id join ${COND} oc on oc.practice_id = o.practice_id and oc.patient_id = o.patient_id where o.ssn = '999-00-1234'`,
      /x_mid: the SELECT over p, o, oc reads p and oc without joining them on practice and patient id/,
    ],
    ['a join on the practice only', `select p.practice_id, p.patient_id, c.condition_code as value from ${PAT} p join ${COND} c on c.practice_id = p.practice_id`, /reads p and c without joining them on practice and patient id/],
    ['a window over the practice', `select p.practice_id, p.patient_id, max(p.zip) over (partition by p.practice_id) as value from ${PAT} p`, /has a window/],
    ['a group of the practice\'s patients', `select p.practice_id, min(p.patient_id) as patient_id, max(p.ssn) as value from ${PAT} p group by p.practice_id`, /aggregates rows of several patients/],
    ['a sub-select over patients', `select p.practice_id, p.patient_id, (select c.condition_code from ${COND} c where c.practice_id = p.practice_id limit 1) as value from ${PAT} p`, /has a sub-select over other patients' rows/],
    // Rows picked by another patient's values: the tokenized rows are then exactly that patient's
    // conditions (counted with everyone who has them).
    [
      'rows picked by a sub-select on one patient',
      `select c.practice_id, c.patient_id, c.condition_code as value from ${COND} c where (c.practice_id, c.condition_code) in (select oc.practice_id, oc.condition_code from ${COND} oc join ${PAT} o on o.practice_id = oc.practice_id and o.patient_id = oc.patient_id where o.ssn = '999-00-1234')`,
      /has a sub-select over other patients' rows; correlate it on practice and patient id/,
    ],
    [
      'rows picked by a join read only in ON',
      `select c.practice_id, c.patient_id, c.condition_code as value from ${COND} c join ${COND} oc on oc.practice_id = c.practice_id and oc.condition_code = c.condition_code join ${PAT} o on o.practice_id = oc.practice_id and o.patient_id = oc.patient_id and o.ssn = '999-00-1234'`,
      /reads c and oc without joining them on practice and patient id/,
    ],
    // One practice per statement (incremental): a LIMIT is that practice's; batched, TSF231 refuses any LIMIT.
    ['rows ordered by another patient\'s value and cut by LIMIT', `{{config materialized="incremental" unique_key="patient_id"}}\nselect p.practice_id, p.patient_id, p.zip as value from ${PAT} p order by (select o.zip from ${PAT} o where o.practice_id = p.practice_id and o.ssn = '999-00-1234') limit 1`, /has a sub-select over other patients' rows/],
    ['an EXISTS on another patient', `select c.practice_id, c.patient_id, c.condition_code as value from ${COND} c where exists (select 1 from ${PAT} o where o.practice_id = c.practice_id and o.ssn = '999-00-1234' and o.zip = '02139')`, /has a sub-select over other patients' rows/],
  ])('%s is refused at the tokenizing model', (_what, mid, message) => {
    const errors = compileWith({ [MID]: mid, [TOKENIZED]: tokenize('{{ref "x_mid"}}') });
    const d = errors.find((x) => x.code === 'TSF215' && x.file === TOKENIZED);
    expect(errors.filter((x) => x.code === 'TSF231'), 'batch-safe (same practice), so this rule is what refuses it').toEqual([]);
    expect(d?.message, JSON.stringify(errors.map((x) => x.message))).toMatch(message);
    expect(d?.message).toMatch(/x_tokenized gives person tokens to rows that may hold another patient's values/);
    expect(d?.line).toBe(1);
  });

  it('the cross-patient join in the tokenizing model itself is refused', () => {
    const sql = `select c.practice_id, v.person_token, o.condition_code as value from ${COND} c join ${VAULT} v on v.practice_id = c.practice_id and v.patient_id = c.patient_id join ${COND} o on o.practice_id = c.practice_id`;
    const d = compileWith({ [TOKENIZED]: sql }).find((x) => x.code === 'TSF215' && x.file === TOKENIZED);
    expect(d?.message).toMatch(/reads c and o without joining them on practice and patient id/);
  });

  it.each([
    ['a join on practice and patient id', `select p.practice_id, p.patient_id, c.condition_code as value from ${PAT} p join ${COND} c on c.practice_id = p.practice_id and c.patient_id = p.patient_id`],
    ['a join USING both', `select p.practice_id, p.patient_id, c.condition_code as value from ${PAT} p join ${COND} c using (practice_id, patient_id)`],
    ['grouped by practice and patient', `select c.practice_id, c.patient_id, count(*) as value from ${COND} c group by c.practice_id, c.patient_id`],
    ['a sub-select correlated on practice and patient id', `select p.practice_id, p.patient_id, (select count(*) from ${COND} c where c.practice_id = p.practice_id and c.patient_id = p.patient_id) as value from ${PAT} p`],
    ['a semi-join on (practice, patient) IN', `select p.practice_id, p.patient_id, p.zip as value from ${PAT} p where (p.practice_id, p.patient_id) in (select c.practice_id, c.patient_id from ${COND} c where c.condition_code = '44054006')`],
    ['a lookup list from a seed', `select p.practice_id, p.patient_id, p.zip as value from ${PAT} p where substr(p.zip, 1, 3) not in (select r.zip3 from {{ref "restricted_zip3"}} r)`],
    ['a provider (a source without patients) joined on its id', `select e.practice_id, e.patient_id, pr.name as value from {{ref "stg_encounters"}} e join {{ref "stg_providers"}} pr on pr.practice_id = e.practice_id and pr.provider_id = e.provider_id`],
  ])('%s is accepted', (_what, mid) => {
    const errors = compileWith({ [MID]: mid, [TOKENIZED]: tokenize('{{ref "x_mid"}}') });
    expect(errors.filter((d) => /gives person tokens/.test(d.message))).toEqual([]);
  });

  describe('an incremental model reading its own rows ({{this}})', () => {
    const incremental = (filter: string) =>
      `{{config materialized="incremental" unique_key="practice_id,patient_id"}}\nselect p.practice_id, p.patient_id, p.ssn, p.zip as value, p.updated_at from ${PAT} p\n{{#if is_incremental}}where ${filter}{{/if}}`;
    it('a high-water mark (an unfiltered max over its rows) is accepted', () => {
      const errors = compileWith({ [MID]: incremental('p.updated_at > (select max(t.updated_at) from {{this}} t)'), [TOKENIZED]: tokenize('{{ref "x_mid"}}') });
      expect(errors.filter((d) => /gives person tokens/.test(d.message))).toEqual([]);
    });
    it('a filter picking rows by one patient\'s earlier row is refused', () => {
      const errors = compileWith({ [MID]: incremental("p.zip in (select t.zip from {{this}} t where t.ssn = '999-00-1234')"), [TOKENIZED]: tokenize('{{ref "x_mid"}}') });
      expect(errors.find((d) => d.file === TOKENIZED)?.message).toMatch(/x_mid: the SELECT over p has a sub-select over other patients' rows/);
    });
  });

  it('the demo\'s tokenizing models pass (their lookups of restricted ZIP3s read a seed)', () => {
    expect(compileWith({}).filter((d) => /gives person tokens/.test(d.message))).toEqual([]);
  });
});
