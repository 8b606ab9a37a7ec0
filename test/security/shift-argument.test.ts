import { describe, expect, it } from 'vitest';
import type { PhiClass } from '../../src/project/types.ts';
import { compileModel, shown, type ProbeModel } from '../support/model-probe.ts';

/**
 * `shift_date` makes a date safe only when it moves an identifying date by the vault's
 * per-person `date_shift_days` as stored. A red-team pull request compiled and published the exact
 * birth dates of all 107 demo persons (month, and day of month from 30 comparisons with shifts of
 * -1 … -30) with the shift zeroed in a CTE (`date_shift_days * 0 AS z0`), and every person's secret
 * shift with `shift_date(date '1970-01-01', …) - date '1970-01-01'`; the inline `* 0` was the only
 * form refused before.
 */
const SP = '{{ref "stg_patients"}}';
const SE = '{{ref "stg_encounters"}}';
const V = '{{ref "vault_person_tokens"}}';
const PSEUDO = 'models/research/x_shift.sql';
const byPatient = (x: string) => `join ${V} v on v.practice_id = ${x}.practice_id and v.patient_id = ${x}.patient_id`;
const shiftCte = (expr: string) => `with w as (select practice_id, patient_id, person_token, ${expr} as z from ${V})`;
const viaCte = (expr: string) =>
  `${shiftCte(expr)} select p.practice_id, w.person_token, {{month_of (shift_date "p.birth_date" "w.z")}} as m from ${SP} p join w on w.practice_id = p.practice_id and w.patient_id = p.patient_id`;

const refused: [string, string][] = [
  ['the shift zeroed in a CTE', viaCte('date_shift_days * 0')],
  ['the shift minus itself in a CTE', viaCte('date_shift_days - date_shift_days')],
  ['the shift moved by a constant in a CTE', viaCte('date_shift_days - 15')],
  ['the shift through coalesce in a CTE', viaCte('coalesce(date_shift_days, 0)')],
  ['the shift chosen away by a CASE in a CTE', viaCte('case when true then 0 else date_shift_days end')],
  [
    'a UNION arm of zero shifts',
    `with w as (select practice_id, patient_id, person_token, date_shift_days as z from ${V} union all select practice_id, patient_id, person_token, 0 from ${V}) select p.practice_id, w.person_token, {{month_of (shift_date "p.birth_date" "w.z")}} as m from ${SP} p join w on w.practice_id = p.practice_id and w.patient_id = p.patient_id`,
  ],
  [
    'the shift zeroed in a derived table',
    `select p.practice_id, w.person_token, {{month_of (shift_date "p.birth_date" "w.z")}} as m from ${SP} p join (select practice_id, patient_id, person_token, date_shift_days * 0 as z from ${V}) w on w.practice_id = p.practice_id and w.patient_id = p.patient_id`,
  ],
  ['a constant date shifted: the shift itself', `select p.practice_id, v.person_token, {{shift_date "date '1970-01-01'" "v.date_shift_days"}} - date '1970-01-01' as m from ${SP} p ${byPatient('p')}`],
  ['a constant date shifted, to the month', `select p.practice_id, v.person_token, {{month_of (shift_date "date '1970-01-15'" "v.date_shift_days")}} as m from ${SP} p ${byPatient('p')}`],
  [
    'a CTE column holding a constant date, shifted',
    `with d as (select practice_id, patient_id, date '1970-01-01' as c from ${SP}) select d.practice_id, v.person_token, {{shift_date "d.c" "v.date_shift_days"}} - date '1970-01-01' as m from d ${byPatient('d')}`,
  ],
  ['a date of class none shifted', `select e.practice_id, v.person_token, {{shift_date "e.encounter_description" "v.date_shift_days"}} - date '1970-01-01' as m from ${SE} e ${byPatient('e')}`],
];

/**
 * The second red-team pass (2026-12-07, on 2b04912): dates written into a staging model and
 * declared quasi (`date '1970-07-01' + n AS birth_date_n`, table or ephemeral), each moved by the
 * shift, gave its month for 31 offsets, i.e. every person's shift; and shift_date nested 40 deep
 * gave month n of birth + n·shift, a unique birth date for 57 % of persons.
 */
const KNOWN: ProbeModel = {
  file: 'models/staging/x_known.sql',
  sql: `select practice_id, patient_id, date '1970-07-01' + 0 as birth_date_0, birth_date from ${SP}`,
  columns: { practice_id: 'none', patient_id: 'direct', birth_date_0: 'quasi', birth_date: 'quasi' },
};
const KNOWN_EPHEMERAL: ProbeModel = { ...KNOWN, file: 'models/staging/x_known_e.sql', sql: `{{config materialized="ephemeral"}}\n${KNOWN.sql}` };
const fromKnown = (model: string, column: string) =>
  `select k.practice_id, v.person_token, {{month_of (shift_date "k.${column}" "v.date_shift_days")}} as m from {{ref "${model}"}} k ${byPatient('k')}`;
refused.push(
  ['a constant date of a staging model declared quasi', fromKnown('x_known', 'birth_date_0')],
  ['a constant date of an ephemeral model declared quasi', fromKnown('x_known_e', 'birth_date_0')],
  ['a shifted date shifted again', `select p.practice_id, v.person_token, {{month_of (shift_date (shift_date "p.birth_date" "v.date_shift_days") "v.date_shift_days")}} as m from ${SP} p ${byPatient('p')}`],
);

const accepted: [string, string][] = [
  ['a source date passed on as stored by a staging model', fromKnown('x_known', 'birth_date')],
  ['an encounter month after the shift', `select e.practice_id, v.person_token, {{month_of (shift_date "e.started_at" "v.date_shift_days")}} as m from ${SE} e ${byPatient('e')}`],
  ['a cast date shifted', `select e.practice_id, v.person_token, {{month_of (shift_date "cast(e.started_at as date)" "v.date_shift_days")}} as m from ${SE} e ${byPatient('e')}`],
  ['the shift passed on as stored by a CTE', viaCte('date_shift_days')],
  ['the shift cast in a CTE', viaCte('cast(date_shift_days as integer)')],
];

function compile(sql: string): string {
  const columns: Record<string, PhiClass> = { practice_id: 'none', person_token: 'none', m: 'none' };
  return shown(compileModel(PSEUDO, sql, columns, [KNOWN, KNOWN_EPHEMERAL]));
}

describe('shift_date: the vault shift as stored, of an identifying date', () => {
  it.each(refused)('refuses %s (TSF215)', (_what, sql) => {
    expect(compile(sql)).toMatch(/^TSF215: x_shift\.m /m);
  });

  it.each(accepted)('accepts %s', (_what, sql) => {
    expect(compile(sql)).toBe('(compiles)');
  });
});
