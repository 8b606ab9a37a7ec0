/**
 * A practice chosen by its token's value. `where practice_token <> '…'` in a published aggregate
 * (or anywhere below it) leaves one practice out; beside the same total over every practice, the
 * difference is that practice's cells, the small ones the gate withholds included. The practice
 * token names no practice, so it is `none` to the PHI classes: it is followed like the person
 * token (person-rows.ts tokenLookup), and the same reads are refused and allowed. So is the
 * practice id pseudonymized rows keep, with a seed's column also allowed beside it.
 */
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import { shown } from '../support/model-probe.ts';
import { aggregate, byPatient, P, PERSONS_SEL, Q, refused, SP, STG_LIST, viaPseudo, viaStaging } from '../support/population-probes.ts';

const X = `'xt_ab12cd34'`;
const STG = STG_LIST.split(', ').map((c) => `p.${c}`).join(', ');
const A = 'a.practice_id, a.person_token, a.practice_token, a.birth_year, a.sex, a.zip3';
/** pseudo_encounters carries the practice token (pseudo_conditions does not). */
const E = '{{ref "pseudo_encounters"}}';
const CP = (where: string) => `select c.encounter_class as condition_code, count(distinct c.person_token) as n from ${E} c where ${where} group by 1`;

const lookups: [string, () => Diagnostic[]][] = [
  ['published: where practice_token <> X', () => aggregate(CP(`c.practice_token <> ${X}`))],
  ['published: where practice_token = X', () => aggregate(CP(`c.practice_token = ${X}`))],
  ['published: where lower(practice_token) <> X', () => aggregate(CP(`lower(c.practice_token) <> ${X}`))],
  ['published: practice_token not in (select X)', () => aggregate(CP(`c.practice_token not in (select ${X})`))],
  ['published: case c.practice_token when X then false else true end', () => aggregate(CP(`case c.practice_token when ${X} then false else true end`))],
  ['published: a CTE practice_token = X as hit, where not a.hit', () => aggregate(`with a as (select c.*, c.practice_token = ${X} as hit from ${E} c) select a.encounter_class as condition_code, count(distinct a.person_token) as n from a where not a.hit group by 1`)],
  ['pseudonymized below: having count(nullif(practice_token, X)) > 0', () => viaPseudo(`select ${Q} from ${P} q group by ${Q} having count(nullif(q.practice_token, ${X})) > 0`)],
  ['published: join on practice_token <> X', () => aggregate(`select c.encounter_class as condition_code, count(distinct c.person_token) as n from ${E} c join ${P} p on p.person_token = c.person_token and p.practice_token <> ${X} group by 1`)],
  ['pseudonymized below: where q.practice_token <> X', () => viaPseudo(`select ${Q} from ${P} q where q.practice_token <> ${X}`)],
  ['pseudonymized below: order by practice_token = X desc offset 1', () => viaPseudo(`{{config materialized="incremental" unique_key="person_token"}}\nselect ${Q} from ${P} q order by q.practice_token = ${X} desc offset 1`)],
  ['pseudonymized below: a CTE nullif(practice_token, X) as z, where z is not null', () => viaPseudo(`with a as (select q.*, nullif(q.practice_token, ${X}) as z from ${P} q) select ${A} from a where a.z is not null`)],
  ['tokenizing model: where v.practice_token <> X', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where v.practice_token <> ${X}`)],
];

describe('a practice token compared with a value that is not one is refused (TSF215)', () => {
  it.each(lookups)('%s', (_n, run) => {
    const errors = run();
    refused(errors);
    expect(errors.map((e) => e.message).join('\n')).toMatch(/compares a practice token with values that are not practice tokens/);
  });
});

// The practice id, which pseudonymized rows keep to replace a practice's slice, chooses a
// practice as well: the same rule, with a seed's column allowed beside it (a region per practice).
const ids: [string, () => Diagnostic[]][] = [
  ['published: where practice_id <> literal', () => aggregate(CP(`c.practice_id <> 'p_0001'`))],
  ['published: where lower(practice_id) not in (a list)', () => aggregate(CP(`lower(c.practice_id) not in ('p_0001', 'p_0002')`))],
  ['published: where practice_id > literal (a range of practices)', () => aggregate(CP(`c.practice_id > 'p_5'`))],
  ['published: a CTE practice_id = literal as hit, where not a.hit', () => aggregate(`with a as (select c.*, c.practice_id = 'p_0001' as hit from ${E} c) select a.encounter_class as condition_code, count(distinct a.person_token) as n from a where not a.hit group by 1`)],
  ['pseudonymized below: where q.practice_id <> literal', () => viaPseudo(`select ${Q} from ${P} q where q.practice_id <> 'p_0001'`)],
  ['pseudonymized below: practice_id not in (select literal)', () => viaPseudo(`select ${Q} from ${P} q where q.practice_id not in (select 'p_0001')`)],
  ['tokenizing model: where p.practice_id <> literal', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where p.practice_id <> 'p_0001'`)],
  // below the tokenizing model: a staging model keeps some practices for everything above it
  ['staging below the tokenizing model: where practice_id <> literal', () => viaStaging(`select ${STG} from ${SP} p where p.practice_id <> 'p_0001'`)],
  ['staging below the tokenizing model: a range of practice ids', () => viaStaging(`select ${STG} from ${SP} p where p.practice_id > 'p_5'`)],
  ['two models below the tokenizing model', () =>
    viaStaging(`select ${STG} from {{ref "stg_patients_c"}} p`, undefined, [{ file: 'models/staging/stg_patients_c.sql', sql: `select ${STG} from ${SP} p where p.practice_id not in ('p_0001')` }])],
];

describe('a practice id compared with a value that is not one is refused (TSF215)', () => {
  it.each(ids)('%s', (_n, run) => {
    const errors = run();
    refused(errors);
    expect(errors.map((e) => e.message).join('\n')).toMatch(/compares a practice id with values that are not practice ids/);
  });
});

describe('the reads of a practice token or id that choose nobody are accepted', () => {
  it.each([
    ['a join on practice tokens beside the person tokens', () => aggregate(`select c.encounter_class as condition_code, count(distinct c.person_token) as n from ${E} c join ${P} p on p.person_token = c.person_token and p.practice_token = c.practice_token group by 1`)],
    ['whether it is NULL', () => aggregate(CP('c.practice_token is not null'))],
    ['pseudonymized below: a join of practice tokens', () => viaPseudo(`select ${Q} from ${P} q join ${E} e on e.practice_id = q.practice_id and e.person_token = q.person_token and e.practice_token = q.practice_token`)],
  ])('%s', (_n, run) => {
    const errors = run();
    expect(errors, shown(errors)).toEqual([]);
  });
});
