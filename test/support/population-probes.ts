import { expect } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import type { PhiClass } from '../../src/project/types.ts';
import { compileModel, shown, type ProbeModel } from './model-probe.ts';

/**
 * Probes of a published relation's population on the demo project (model-probe.ts): a second
 * `pseudo_persons` (pseudo_persons_b) over a staging model or its own SQL, and the published
 * count per sex (`x_cells`) over it, or a published aggregate or person-level relation alone.
 */
export const SP = '{{ref "stg_patients"}}';
export const V = '{{ref "vault_person_tokens"}}';
export const P = '{{ref "pseudo_persons"}}';
export const C = '{{ref "pseudo_conditions"}}';
export const PUB = 'models/research/published/x_cells.sql';
export const INC = '{{config materialized="incremental" unique_key="patient_id"}}';
export const byPatient = `join ${V} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id`;
export const PSEUDO_COLUMNS: Record<string, PhiClass> = { practice_id: 'none', person_token: 'none', practice_token: 'none', zip3: 'quasi', sex: 'quasi', birth_year: 'quasi', flag: 'none' };
/** stg_patients' columns and classes, as `_staging.yml` declares them. */
export const STG_COLS: Record<string, PhiClass> = {
  practice_id: 'none', patient_id: 'direct', mrn: 'direct', birth_date: 'quasi', death_date: 'quasi', ssn: 'direct', drivers_license: 'direct', passport: 'direct',
  first_name: 'direct', middle_name: 'direct', last_name: 'direct', maiden_name: 'direct', marital_status: 'quasi', race: 'quasi', ethnicity: 'quasi', sex: 'quasi',
  address: 'direct', city: 'quasi', state: 'quasi', county: 'quasi', zip: 'quasi', updated_at: 'quasi',
};
export const STG_LIST = Object.keys(STG_COLS).join(', ');
export const PERSONS_SEL = `p.practice_id, v.person_token, v.practice_token, {{birth_year "p.birth_date"}} as birth_year, {{sex_category "p.sex"}} as sex, {{zip3 "p.zip"}} as zip3`;
export const Q = 'q.practice_id, q.person_token, q.practice_token, q.birth_year, q.sex, q.zip3';
export const personsB = (sql: string): ProbeModel => ({ file: 'models/research/pseudo_persons_b.sql', sql, columns: PSEUDO_COLUMNS });
export const CELLS_B = `{{config k_anonymity_count="n"}}\nselect p.sex, count(distinct p.person_token) as n from {{ref "pseudo_persons_b"}} p group by 1`;
const PUB_COLUMNS: Record<string, PhiClass> = { condition_code: 'none', sex: 'quasi', n: 'none', m: 'none' };

/** The published count per sex over pseudo_persons_b, which tokenizes staging model stg_patients_b (`sql`). */
export const viaStaging = (sql: string, columns = STG_COLS, extra: ProbeModel[] = []) =>
  compileModel(PUB, CELLS_B, { sex: 'quasi', n: 'none' }, [...extra, { file: 'models/staging/stg_patients_b.sql', sql, columns }, personsB(`select ${PERSONS_SEL} from {{ref "stg_patients_b"}} p ${byPatient}`)]);
/** The published count per sex over pseudo_persons_b (`sql`). */
export const viaPseudo = (sql: string, extra: ProbeModel[] = []) => compileModel(PUB, CELLS_B, { sex: 'quasi', n: 'none' }, [...extra, personsB(sql)]);
export const aggregate = (select: string) => compileModel(PUB, `{{config k_anonymity_count="n"}}\n${select}`, PUB_COLUMNS);
export const personLevel = (select: string) => compileModel(PUB, select, { person_token: 'none', sex: 'quasi' });

/** Refused at compile time (TSF215), whichever gate names it first. */
export function refused(errors: Diagnostic[]): void {
  expect(errors.filter((e) => e.code === 'TSF215').length, shown(errors)).toBeGreaterThan(0);
}
