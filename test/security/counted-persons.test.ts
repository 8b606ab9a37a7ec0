import { describe, expect, it } from 'vitest';
import { compileLoadedProject } from '../../src/cli/api.ts';
import { DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * The publication gate withholds a published aggregate's cells below k of its count column, so
 * that count must count persons: `count(*)` of encounters (or `count(DISTINCT encounter_id)`)
 * reaches k with one person's rows. Compile follows `count(DISTINCT x)` through CTEs, derived
 * tables and upstream models' SQL to the vault's person token, and refuses anything else.
 */
const base = loadProject(REPO_ROOT);
const FILE = 'models/research/published/x_counts.sql';
const E = '{{ref "pseudo_encounters"}}';
const C = '{{ref "pseudo_conditions"}}';

function compileWith(select: string): Diagnostic[] {
  const project = structuredClone(base);
  project.models.push({ name: 'x_counts', file: FILE, sql: `{{config k_anonymity_count="n"}}\n${select}\n`, line: 1 });
  try {
    compileLoadedProject(project, { write: false });
    return [];
  } catch (err) {
    if (err instanceof DiagnosticsError) return err.diagnostics.filter((d) => d.severity === 'error');
    throw err;
  }
}

describe('a published aggregate whose count is not a count of persons', () => {
  it.each([
    ['count(*) of encounters', `select e.practice_token, count(*) as n from ${E} e group by 1`, /counts rows rather than persons/],
    ['count(x) of encounters', `select e.practice_token, count(e.person_token) as n from ${E} e group by 1`, /counts rows rather than persons/],
    ['distinct encounters', `select e.practice_token, count(distinct e.encounter_id) as n from ${E} e group by 1`, /counts e\.encounter_id, which is not the vault's person token/],
    ['distinct conditions', `select c.condition_code, count(distinct c.condition_code) as n from ${C} c group by 1`, /not the vault's person token/],
    ['an encounter id renamed person_token in a CTE', `with x as (select e.encounter_id as person_token, e.practice_token from ${E} e) select x.practice_token, count(distinct x.person_token) as n from x group by 1`, /not the vault's person token/],
    ['a renamed column in a derived table', `select t.practice_token, count(distinct t.person_token) as n from (select e.practice_token, e.encounter_id as person_token from ${E} e) t group by 1`, /not the vault's person token/],
    ['a token computed on', `select e.practice_token, count(distinct substr(e.person_token, 1, 2)) as n from ${E} e group by 1`, /counts rows rather than persons/],
    ['a token computed on in a CTE', `with x as (select substr(e.person_token, 1, 2) as person_token, e.practice_token from ${E} e) select x.practice_token, count(distinct x.person_token) as n from x group by 1`, /person_token is computed, not passed on/],
    ['an unqualified column among two inputs', `select e.practice_token, count(distinct person_token) as n from ${E} e join ${C} c on c.person_token = e.person_token group by 1`, /unqualified among 2 inputs/],
    ['a second UNION arm counting codes', `select e.practice_token, count(distinct e.person_token) as n from ${E} e group by 1 union all select x.practice_token, count(distinct x.encounter_id) from ${E} x group by 1`, /not the vault's person token/],
    ['a UNION in a CTE with one arm not tokens', `with x as (select e.person_token from ${E} e union all select c.condition_code from ${C} c) select count(distinct x.person_token) as n from x`, /not the vault's person token/],
    ['a column renamed by the alias list', `select count(distinct t.person_token) as n from (select e.encounter_id, e.person_token from ${E} e) as t(person_token, other)`, /renames its columns/],
    ['a recursive CTE', `with recursive x as (select e.person_token from ${E} e) select count(distinct x.person_token) as n from x`, /neither a model nor the vault's token map/],
  ])('%s is refused at compile', (_what, select, message) => {
    const errors = compileWith(select);
    const d = errors.find((x) => x.code === 'TSF215' && x.file === FILE);
    expect(d?.message, JSON.stringify(errors.map((x) => x.message))).toMatch(message);
    expect(d).toMatchObject({ file: FILE, line: 1 });
  });
});

describe('counts of persons are accepted', () => {
  it.each([
    ['distinct person tokens', `select e.practice_token, count(distinct e.person_token) as n from ${E} e group by 1`],
    ['through a CTE and a star', `with x as (select * from ${E}) select x.practice_token, count(distinct x.person_token) as n from x group by 1`],
    ['through a derived table', `select t.practice_token, count(distinct t.person_token) as n from (select e.person_token, e.practice_token from ${E} e) t group by 1`],
    ['one table, unqualified', `select practice_token, count(distinct person_token) as n from ${E} group by 1`],
    ['through a CTE grouped by person', `with per_person as (select c.person_token, count(*) as k from ${C} c group by 1) select count(distinct person_token) as n from per_person`],
    ['each UNION arm', `select e.practice_token, count(distinct e.person_token) as n from ${E} e group by 1 union all select x.encounter_class, count(distinct x.person_token) from ${E} x group by 1`],
  ])('%s', (_what, select) => {
    expect(compileWith(select).filter((d) => d.file === FILE)).toEqual([]);
  });
});
