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
