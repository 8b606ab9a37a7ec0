/**
 * Red-team round 7, against 47ee3f5: a known person token read by what keeps rows in ways the
 * token-lookup rule did not look at (R1 a simple CASE, R2 a CTE's token test used as a boolean,
 * R3 a sub-select's select list, R4 IN with a computed token, R5 ORDER BY a token test with
 * OFFSET), a high-water bound on a quasi column whose name marks nothing or on an identifier
 * renamed upstream (R6: now only a source's record timestamp, followed through renames), and a
 * shifted month declared quasi in a predicate (R7: a pseudonymized model's yml class stands to
 * k-anonymity and to populations). Every R case compiled clean at 47ee3f5.
 */
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../src/errors.ts';
import { compileModel, shown } from '../support/model-probe.ts';
import { aggregate, byPatient, C, CELLS_B, INC, P, personsB, PERSONS_SEL, PUB, Q, refused, SP, STG_COLS, viaPseudo, viaStaging } from '../support/population-probes.ts';

const A = 'a.practice_id, a.person_token, a.practice_token, a.birth_year, a.sex, a.zip3';
const X = `'pt_ab12cd34'`;
const CP = (where: string) => `select c.condition_code, count(distinct c.person_token) as n from ${C} c where ${where} group by 1`;
/** Incremental staging model over a staging model that renames an identifier. */
const renamedUpstream = (rename: string, name: string, bound: string) => compileModel(PUB, CELLS_B, { sex: 'quasi', n: 'none' }, [
  { file: 'models/staging/stg_rename.sql', sql: `select p.*, ${rename} as ${name} from ${SP} p`, columns: { ...STG_COLS, [name]: 'quasi' } },
  { file: 'models/staging/stg_patients_b.sql', sql: `${INC}\nselect p.* from {{ref "stg_rename"}} p\n{{#if is_incremental}}where ${bound}{{/if}}`, columns: { ...STG_COLS, [name]: 'quasi' } },
  personsB(`select ${PERSONS_SEL} from {{ref "stg_patients_b"}} p ${byPatient}`)]);

const bypasses: [string, () => Diagnostic[]][] = [
  // R1 a simple CASE compares without an A_Expr
  ['R1a published: where case c.person_token when X then false else true end', () => aggregate(CP(`case c.person_token when ${X} then false else true end`))],
  ['R1b tokenizing model: case v.person_token when X …', () => viaPseudo(`select ${PERSONS_SEL} from ${SP} p ${byPatient} where case v.person_token when ${X} then false else true end`)],
  ['R1c pseudonymized: case q.person_token when X …', () => viaPseudo(`select ${Q} from ${P} q where case q.person_token when ${X} then false else true end`)],
  ['R1d pseudonymized: having count(case q.person_token when X then null else 1 end) > 0', () => viaPseudo(`select ${Q} from ${P} q group by ${Q} having count(case q.person_token when ${X} then null else 1 end) > 0`)],
  // R2 a token-derived column of a CTE used as a boolean, not as an operand of an operator
  ['R2a published: CTE c.person_token = X as hit, where not a.hit', () => aggregate(`with a as (select c.*, c.person_token = ${X} as hit from ${C} c) select a.condition_code, count(distinct a.person_token) as n from a where not a.hit group by 1`)],
  ['R2b pseudonymized: where not a.hit', () => viaPseudo(`with a as (select q.*, q.person_token = ${X} as hit from ${P} q) select ${A} from a where not a.hit`)],
  ['R2c pseudonymized: nullif(token, X) as z, where a.z is not null', () => viaPseudo(`with a as (select q.*, nullif(q.person_token, ${X}) as z from ${P} q) select ${A} from a where a.z is not null`)],
  ['R2d pseudonymized: where a.hit is not true', () => viaPseudo(`with a as (select q.*, q.person_token = ${X} as hit from ${P} q) select ${A} from a where a.hit is not true`)],
  ['R2e tokenizing model: CTE v.person_token = X as hit', () => viaPseudo(`with a as (select ${PERSONS_SEL}, v.person_token = ${X} as hit from ${SP} p ${byPatient}) select ${A} from a where not a.hit`)],
  // R3 a sub-select's select list is never read for token comparisons
  ['R3a pseudonymized: where (select q.person_token <> X)', () => viaPseudo(`select ${Q} from ${P} q where (select q.person_token <> ${X})`)],
  ['R3b published: where (select c.person_token <> X)', () => aggregate(CP(`(select c.person_token <> ${X})`))],
  // R4 IN (sub-select) with the token inside a row, cast or coalesce
  ['R4a published: (c.person_token, 1) not in (select X, 1)', () => aggregate(CP(`(c.person_token, 1) not in (select ${X}, 1)`))],
  ['R4b pseudonymized: q.person_token::text not in (select X)', () => viaPseudo(`select ${Q} from ${P} q where q.person_token::text not in (select ${X})`)],
  ['R4c pseudonymized: coalesce(q.person_token, \'\') not in (select X)', () => viaPseudo(`select ${Q} from ${P} q where coalesce(q.person_token, '') not in (select ${X})`)],
  // R5 ORDER BY a token test, OFFSET 1: the known person sorts first and is skipped
  ['R5a pseudonymized: order by q.person_token = X desc offset 1', () => viaPseudo(`{{config materialized="incremental" unique_key="person_token"}}\nselect ${Q} from ${P} q order by q.person_token = ${X} desc offset 1`)],
  ['R5b tokenizing model: order by v.person_token = X desc offset 1', () => viaPseudo(`{{config materialized="incremental" unique_key="person_token"}}\nselect ${PERSONS_SEL} from ${SP} p ${byPatient} order by v.person_token = ${X} desc offset 1`)],
  // R6 high-water on a quasi column whose name marks nothing, or an identifier renamed upstream
  ['R6a staging incremental: city > coalesce(max(this.city), \'\')', () => viaStaging(`${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.city > coalesce((select max(t.city) from {{this}} t), ''){{/if}}`)],
  ['R6b staging incremental: race > max(this.race)', () => viaStaging(`${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.race > (select max(t.race) from {{this}} t){{/if}}`)],
  ['R6c zip renamed postal in an upstream staging model, bound on postal', () => renamedUpstream('p.zip', 'postal', `p.postal > coalesce((select max(t.postal) from {{this}} t), '')`)],
  ['R6d birth_date renamed bd upstream, bound on bd', () => renamedUpstream('p.birth_date', 'bd', `p.bd > coalesce((select max(t.bd) from {{this}} t), date '-infinity')`)],
  // R7 a shifted month (declared quasi) in a predicate
  ['R7 published: where c.onset_month <> date \'2019-03-01\'', () => aggregate(CP(`c.onset_month <> date '2019-03-01'`))],
];

const variants: [string, () => Diagnostic[]][] = [
  ['having count(nullif(q.person_token, X)) > 0', () => viaPseudo(`select ${Q} from ${P} q group by ${Q} having count(nullif(q.person_token, ${X})) > 0`)],
  ['having count(distinct token) filter (where token <> X)', () => viaPseudo(`select ${Q} from ${P} q group by ${Q} having count(distinct q.person_token) filter (where q.person_token <> ${X}) > 0`)],
  ['not exists (… where x.t = q.person_token || \'\')', () => viaPseudo(`select ${Q} from ${P} q where not exists (select 1 from (values (${X})) x(t) where x.t = q.person_token || '')`)],
  // One practice per statement: batched, TSF231 refuses any unnest in a select list first.
  ['unnest(case when token = X …) in a CTE select list', () => viaPseudo(`{{config materialized="incremental" unique_key="person_token"}}\nwith a as (select q.*, unnest(case when q.person_token = ${X} then array[]::int[] else array[1] end) as g from ${P} q) select ${A} from a`)],
  ['zip renamed postal in a derived table of the same model', () => viaStaging(`${INC}\nselect p.* from (select s.*, s.zip as postal from ${SP} s) p\n{{#if is_incremental}}where p.postal > coalesce((select max(t.postal) from {{this}} t), ''){{/if}}`, { ...STG_COLS, postal: 'quasi' })],
];

describe('round 7: refused (TSF215)', () => {
  it.each(bypasses)('%s', (_n, run) => refused(run()));
});
describe('round 7: variants refused before too', () => {
  it.each(variants)('%s', (_n, run) => refused(run()));
});

describe('round 7: still accepted', () => {
  it('the demo\'s high-water test on a source\'s updated_at, through a staging model', () => {
    const errors = viaStaging(`${INC}\nselect p.* from ${SP} p\n{{#if is_incremental}}where p.updated_at > coalesce((select max(t.updated_at) from {{this}} t), timestamptz '-infinity'){{/if}}`);
    expect(errors, shown(errors)).toEqual([]);
  });
  it('a join on person tokens, and a count of them in HAVING', () => {
    const errors = aggregate(`select c.condition_code, count(distinct c.person_token) as n from ${C} c join ${P} p on p.person_token = c.person_token group by 1 having count(distinct c.person_token) >= 20`);
    expect(errors, shown(errors)).toEqual([]);
  });
});
