/**
 * A published aggregate whose rows are kept by a quasi-identifier leaves out cells the gate never
 * sees; a total published over more rows, minus its cells, gives their counts back. So WHERE,
 * HAVING, JOIN … ON and an ordered LIMIT may not read one, anywhere in the published model's SQL
 * (its CTEs, derived tables, sub-selects and ephemeral models). The refused cases compiled clean
 * at 33b65e2.
 */
import { describe, expect, it } from 'vitest';
import { compileModel, shown } from '../support/model-probe.ts';

const P = '{{ref "pseudo_persons"}}';
const C = '{{ref "pseudo_conditions"}}';
const PUB = 'models/research/published/x_cells.sql';
const CP = `${C} c join ${P} p on p.person_token = c.person_token`;
const compile = (select: string) => compileModel(PUB, `{{config k_anonymity_count="n"}}\n${select}`, { condition_code: 'none', pop: 'none', sex: 'quasi', n: 'none' });

describe('a published aggregate\'s rows are not chosen by a quasi-identifier (TSF215)', () => {
  it.each([
    ['one sex left out (differencing against a total over every sex)', `select c.condition_code, count(distinct c.person_token) as n from ${CP} where p.sex <> 'U' group by 1`, 'p.sex'],
    ['a key filtered', `select c.condition_code, p.sex, count(distinct c.person_token) as n from ${CP} where p.sex in ('M', 'F') group by 1, 2`, 'p.sex'],
    ['in a join condition', `select c.condition_code, count(distinct c.person_token) as n from ${C} c join ${P} p on p.person_token = c.person_token and p.zip3 <> '021' group by 1`, 'p.zip3'],
    ['in a CTE', `with pp as (select * from ${P} where birth_year > 1950) select c.condition_code, count(distinct c.person_token) as n from ${C} c join pp p on p.person_token = c.person_token group by 1`, 'birth_year'],
    ['in a sub-select', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.person_token in (select q.person_token from ${P} q where q.zip3 = '021') group by 1`, 'q.zip3'],
    ['in HAVING on a key', `select c.condition_code, p.sex, count(distinct c.person_token) as n from ${CP} group by 1, 2 having p.sex <> 'U'`, 'p.sex'],
    ['by an ordered LIMIT in a CTE', `with pp as (select * from ${P} order by zip3 limit 1000) select c.condition_code, count(distinct c.person_token) as n from ${C} c join pp p on p.person_token = c.person_token group by 1`, 'zip3'],
  ])('%s', (_what, select, column) => {
    const errors = compile(select);
    const refusal = errors.find((e) => e.code === 'TSF215' && e.message.includes('keeps its rows by a quasi-identifier'));
    expect(refusal?.message, shown(errors)).toContain(`(${column} <-`);
    expect(refusal).toMatchObject({ file: PUB });
  });

  it('two populations, one without a person\'s quasi values, in one relation: arms of a UNION read other rows', () => {
    const errors = compile(`select c.condition_code, 'all' as pop, count(distinct c.person_token) as n from ${C} c group by 1, 2 union all select c.condition_code, 'rest', count(distinct c.person_token) from ${CP} where not (p.zip3 = '021' and p.birth_year = 1956) group by 1, 2`);
    expect(errors.find((e) => e.code === 'TSF215')?.message, shown(errors)).toMatch(/cells of arms that read other rows/);
  });

  it('a person-level relation without one person\'s row', () => {
    const errors = compileModel(PUB, `select p.person_token, p.sex, p.age_band from ${P} p where not (p.zip3 = '021' and p.birth_year = 1956)`, { person_token: 'none', sex: 'quasi', age_band: 'quasi' });
    expect(errors.find((e) => e.code === 'TSF215' && e.message.includes('keeps its rows by a quasi-identifier'))?.message, shown(errors)).toContain('(p.zip3 <-');
  });

  it('a person-level relation of every person is accepted', () => {
    const errors = compileModel(PUB, `select p.person_token, p.sex, p.age_band from ${P} p`, { person_token: 'none', sex: 'quasi', age_band: 'quasi' });
    expect(errors, shown(errors)).toEqual([]);
  });

  it.each([
    ['rows kept by a column of no class', `select c.condition_code, count(distinct c.person_token) as n from ${C} c where c.condition_code like 'E11%' group by 1`],
    ['persons joined on their token', `select c.condition_code, p.sex, count(distinct c.person_token) as n from ${CP} group by 1, 2`],
    ['cells chosen by their count', `select c.condition_code, count(distinct c.person_token) as n from ${C} c group by 1 having count(distinct c.person_token) >= 20`],
  ])('%s is accepted', (_what, select) => {
    const errors = compile(select);
    expect(errors, shown(errors)).toEqual([]);
  });
});
