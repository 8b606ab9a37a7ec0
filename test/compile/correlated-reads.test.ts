import { describe, expect, it } from 'vitest';
import { correlatedReadsOf } from '../../src/compile/correlated-reads.ts';

/**
 * What the TSF226 notice looks for: a sub-select over one relation that names a column of the
 * query around it. Each case says why it is (or is not) evaluated once per outer row on PostgreSQL.
 */
const THIS = '__tsf_this_m';
const at = (sql: string, needle: string) => [sql.indexOf(needle)];

describe('correlatedReadsOf', () => {
  it.each([
    ['a scalar sub-select correlated on the practice', `select e.* from src e where e.u > (select max(t.u) from ${THIS} t where t.practice_id = e.practice_id)`, '(select max'],
    ['correlated through the unaliased outer relation', `select * from src where src.u > coalesce((select max(u) from ${THIS} t where t.practice_id = src.practice_id), 0)`, '(select max'],
    // the parser places these at the keyword (or the first expression), still on the sub-select's line
    ['an EXISTS', `select e.* from src e where not exists (select 1 from ${THIS} t where t.id = e.id)`, 'exists'],
    ['an IN correlated inside', `select e.* from src e where e.id in (select t.id from ${THIS} t where t.practice_id = e.practice_id)`, 'in (select'],
    ['a LATERAL subquery', `select e.*, h.m from src e cross join lateral (select max(t.u) as m from ${THIS} t where t.practice_id = e.practice_id) h`, 'max(t.u)'],
    ['quoted names, as compiled', `select "e"."id" from "src" "e" where "e"."u" > (select max("t"."u") from "${THIS}" "t" where "t"."practice_id" = "e"."practice_id")`, '(select max'],
  ])('finds %s', (_, sql, needle) => {
    expect(correlatedReadsOf(sql, THIS)).toEqual(at(sql, needle));
  });

  it.each([
    ['a high-water mark per practice, joined', `select e.* from src e left join (select t.practice_id, max(t.u) as hw from ${THIS} t group by t.practice_id) h on h.practice_id = e.practice_id where e.u > coalesce(h.hw, 0)`],
    ['an uncorrelated sub-select (one mark for the whole slice)', `select * from src where u > (select max(u) from ${THIS})`],
    ['a correlated sub-select over another relation', `select e.* from src e where e.u > (select max(o.u) from other o where o.practice_id = e.practice_id)`],
    ['a schema-qualified relation of the same name', `select e.* from src e where e.u > (select max(t.u) from s.${THIS} t where t.practice_id = e.practice_id)`],
    ['text the grammar cannot read', `select * exclude (x) from ${THIS}`],
  ])('ignores %s', (_, sql) => {
    expect(correlatedReadsOf(sql, THIS)).toEqual([]);
  });

  it('counts characters, not UTF-8 bytes, before the sub-select', () => {
    const sql = `select e.*, 'é→' as k from src e where e.u > (select max(t.u) from ${THIS} t where t.p = e.p)`;
    expect(correlatedReadsOf(sql, THIS)).toEqual(at(sql, '(select max'));
  });
});
