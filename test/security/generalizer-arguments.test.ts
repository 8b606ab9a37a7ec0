/**
 * An approved generalizer was reviewed for a column as stored. Given an expression (in its
 * argument, or computed in a CTE and passed as a column) it generalized whatever that computed:
 * `{{zip3 "substr(p.zip, 3)"}}` published the last three digits of a ZIP5, `substr` of a birth
 * date the day of birth, and a date minus the vault's shift undid the shift before shift_date
 * redid it. The refused cases compiled clean at 33b65e2.
 */
import { describe, expect, it } from 'vitest';
import { compileModel, shown } from '../support/model-probe.ts';

const SP = '{{ref "stg_patients"}}';
const SC = '{{ref "stg_conditions"}}';
const SE = '{{ref "stg_encounters"}}';
const V = '{{ref "vault_person_tokens"}}';
const PSEUDO = 'models/research/x_pseudo.sql';
const byPatient = (x: string) => `join ${V} v on v.practice_id = ${x}.practice_id and v.patient_id = ${x}.patient_id`;
const compile = (select: string) => compileModel(PSEUDO, select, { practice_id: 'none', person_token: 'none', g: 'quasi' });

const upstream = (sql: string, ephemeral: boolean) => ({ file: 'models/staging/x_up.sql', sql: `${ephemeral ? '{{config materialized="ephemeral"}}\n' : ''}${sql}` });
const fromUpstream = `select x.practice_id, v.person_token, {{zip3 "x.zip"}} as g from {{ref "x_up"}} x ${byPatient('x')}`;

describe('a generalizer takes a column as stored (TSF215)', () => {
  it.each([
    ['an ephemeral model', true],
    ['a table model', false],
  ])('a ZIP computed in %s upstream', (_what, ephemeral) => {
    const errors = compileModel(PSEUDO, fromUpstream, { practice_id: 'none', person_token: 'none', g: 'quasi' }, [upstream(`select p.practice_id, p.patient_id, substr(p.zip, 3) as zip from ${SP} p`, ephemeral)]);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(/an approved generalizer is given a value computed from an identifying one/);
  });

  it('a ZIP cast upstream is accepted', () => {
    const errors = compileModel(PSEUDO, fromUpstream, { practice_id: 'none', person_token: 'none', g: 'quasi' }, [upstream(`select p.practice_id, p.patient_id, cast(p.zip as varchar) as zip from ${SP} p`, false)]);
    expect(errors.filter((e) => e.code === 'TSF215'), shown(errors)).toEqual([]);
  });

  it.each([
    ['the end of a ZIP5', `select p.practice_id, v.person_token, {{zip3 "substr(p.zip, 3)"}} as g from ${SP} p ${byPatient('p')}`],
    ['the day of birth', `select p.practice_id, v.person_token, {{zip3 "substr(cast(p.birth_date as varchar), 8)"}} as g from ${SP} p ${byPatient('p')}`],
    ['the time of day of a visit', `select e.practice_id, v.person_token, {{zip3 "substr(cast(e.started_at as varchar), 12)"}} as g from ${SE} e ${byPatient('e')}`],
    ['a shift undone in the argument', `select c.practice_id, v.person_token, {{month_of (shift_date "c.onset_date - v.date_shift_days" "v.date_shift_days")}} as g from ${SC} c ${byPatient('c')}`],
    ['a ZIP computed in a CTE', `with x as (select p.practice_id, p.patient_id, substr(p.zip, 3) as z from ${SP} p) select x.practice_id, v.person_token, {{zip3 "x.z"}} as g from x ${byPatient('x')}`],
    ['a ZIP concatenated in a CTE', `with x as (select p.practice_id, p.patient_id, p.zip || '' as z from ${SP} p) select x.practice_id, v.person_token, {{zip3 "x.z"}} as g from x ${byPatient('x')}`],
    ['a date moved in a CTE before the shift', `with x as (select p.practice_id, p.patient_id, p.birth_date - 5 as d from ${SP} p) select x.practice_id, v.person_token, {{month_of (shift_date "x.d" "v.date_shift_days")}} as g from x ${byPatient('x')}`],
    ['a hash argument that is an expression', `select p.practice_id, v.person_token, {{zip3 zip="substr(p.zip, 3)"}} as g from ${SP} p ${byPatient('p')}`],
  ])('%s', (_what, select) => {
    const errors = compile(select);
    const refusal = errors.find((e) => e.code === 'TSF215');
    expect(refusal?.message, shown(errors)).toMatch(/an approved generalizer is given a value computed from an identifying one/);
    expect(refusal).toMatchObject({ file: PSEUDO });
  });

  it.each([
    ['a column', `select p.practice_id, v.person_token, {{zip3 "p.zip"}} as g from ${SP} p ${byPatient('p')}`],
    ['a column passed on by a CTE', `with x as (select p.practice_id, p.patient_id, p.zip as z from ${SP} p) select x.practice_id, v.person_token, {{zip3 "x.z"}} as g from x ${byPatient('x')}`],
    ['a shifted date\'s month (one generalizer given another\'s output)', `select c.practice_id, v.person_token, {{month_of (shift_date "c.onset_date" "v.date_shift_days")}} as g from ${SC} c ${byPatient('c')}`],
  ])('%s is accepted', (_what, select) => {
    const errors = compile(select);
    expect(errors, shown(errors)).toEqual([]);
  });
});
