import { beforeAll, describe, expect, it } from 'vitest';
import { kCountShapeProblem } from '../../src/compile/k-count-shape.ts';
import { checkModelSql } from '../../src/compile/model-sql.ts';

// The publication gate trusts a published aggregate's count column, so what makes its cells must
// be what it outputs: a GROUP BY key it hides (a person token, say) gives one person per cell.
beforeAll(() => {
  checkModelSql({ sql: 'select 1', allowed: new Set() }); // loads the WebAssembly parser
});

const FROM = 'from pe e join pp p on p.person_token = e.person_token';

describe('GROUP BY keys of a published aggregate', () => {
  it.each([
    ['a hidden qualified key', `select p.age_band, count(*) as n ${FROM} group by e.person_token, p.age_band`, /groups by e\.person_token, which it does not output/],
    ['a hidden unqualified key', `select p.age_band, count(*) as n ${FROM} group by person_token, 1`, /groups by person_token, which it does not output/],
    ['a hidden key inside ROLLUP', `select p.age_band, count(*) as n ${FROM} group by rollup (p.age_band, e.person_token)`, /groups by e\.person_token/],
    ['a hidden key inside GROUPING SETS', `select p.age_band, count(*) as n ${FROM} group by grouping sets ((p.age_band, e.person_token), ())`, /groups by e\.person_token/],
    ['a hidden key inside CUBE', `select p.age_band, count(*) as n ${FROM} group by cube (p.age_band, e.person_token)`, /groups by e\.person_token/],
    ['a hidden expression', `select p.age_band, count(*) as n ${FROM} group by 1, substr(e.person_token, 1, 8)`, /groups by an expression, which it does not output/],
    // PostgreSQL groups by the input column where an alias shares its name.
    ['an alias that an input column takes the place of', `select min(p.age_band) as person_token, count(*) as n ${FROM} group by person_token`, /an output alias that an input column of that name would take the place of/],
    ['a computed column grouped by its alias', `select case when p.age_band < '20' then 'young' else 'old' end as g, count(*) as n ${FROM} group by g`, /groups by g, an output alias/],
    ['a hidden key in the second UNION arm', `select p.age_band, count(*) as n ${FROM} group by 1 union all select p.age_band, count(*) ${FROM} group by 1, e.person_token`, /groups by e\.person_token/],
  ])('%s is refused', (_what, sql, message) => {
    expect(kCountShapeProblem(sql, 'n')).toMatch(message);
  });

  it.each([
    ['positions', `select p.age_band, p.sex, count(distinct e.person_token) as n ${FROM} group by 1, 2`],
    ['output columns by name', `select p.age_band, p.sex, count(*) as n ${FROM} group by age_band, sex`],
    ['output columns qualified', `select p.age_band, p.sex, count(*) as n ${FROM} group by p.age_band, p.sex`],
    ['an alias equal to the column it outputs', `select p.sex as sex, count(*) as n ${FROM} group by sex`],
    ['the output expression written again', `select case when p.age_band < '20' then 'young' else 'old' end as g, count(*) as n ${FROM} group by case when p.age_band < '20' then 'young' else 'old' end`],
    ['ROLLUP over output columns (margins are larger cells)', `select p.age_band, p.sex, count(*) as n ${FROM} group by rollup (1, 2)`],
    ['GROUPING SETS over output columns', `select p.age_band, p.sex, count(*) as n ${FROM} group by grouping sets ((p.age_band), (p.sex), ())`],
  ])('%s are accepted', (_what, sql) => {
    expect(kCountShapeProblem(sql, 'n')).toBeUndefined();
  });
});

// HAVING, and ORDER BY under LIMIT, decide which cells are published: by a member's value that
// tells of the member (found in the twentieth session: both compiled clean).
describe('cells chosen by HAVING, or by ORDER BY under LIMIT', () => {
  const G = `select p.age_band, count(distinct e.person_token) as n ${FROM}`;
  it.each([
    ['HAVING over a member\'s value', `${G} group by 1 having max(p.birth_year) > 2020`, /chooses its cells in HAVING by p\.birth_year/],
    ['HAVING over a column that is not a key', `${G} group by 1 having min(p.zip3) = '021'`, /in HAVING by p\.zip3/],
    ['HAVING with a sub-select', `${G} group by 1 having count(*) > (select count(*) from pp o where o.zip3 = '021')`, /in HAVING by a sub-select/],
    ['ORDER BY a member\'s value under LIMIT', `${G} group by 1 order by max(p.zip3) limit 1`, /in an ORDER BY under LIMIT or OFFSET by p\.zip3/],
    ['ORDER BY a non-key column under OFFSET', `${G} group by 1 order by min(p.birth_year) offset 1`, /by p\.birth_year/],
    ['HAVING over a count of one kind of member', `${G} group by 1 having count(case when p.zip3 = '021' and p.birth_year = 1956 then 1 end) = 1`, /in HAVING by p\.zip3/],
    ['HAVING over a filtered count', `${G} group by 1 having count(distinct e.person_token) filter (where p.zip3 = '021') = 1`, /chooses its cells in HAVING by/],
  ])('%s is refused', (_what, sql, message) => {
    expect(kCountShapeProblem(sql, 'n')).toMatch(message);
  });

  it.each([
    ['HAVING over the published count', `${G} group by 1 having count(distinct e.person_token) >= 20`],
    ['HAVING over the published count by its name', `${G} group by 1 having n >= 20`],
    ['HAVING over the rows of the cell', `${G} group by 1 having count(*) > 100`],
    ['HAVING over a key', `${G} group by p.age_band having p.age_band <> '90+'`],
    ['HAVING over a key grouped by position', `${G} group by 1 having p.age_band <> '90+'`],
    ['the largest cells first, by the count\'s name', `${G} group by 1 order by n desc limit 10`],
    ['ORDER BY a key under LIMIT', `${G} group by 1 order by p.age_band limit 3`],
    ['ORDER BY a position under LIMIT', `${G} group by 1 order by 1 limit 3`],
    ['ORDER BY a member\'s value without LIMIT (it chooses nothing)', `${G} group by 1 order by max(p.zip3)`],
  ])('%s is accepted', (_what, sql) => {
    expect(kCountShapeProblem(sql, 'n')).toBeUndefined();
  });
});
