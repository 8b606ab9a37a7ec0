import { describe, expect, it } from 'vitest';
import { cteName, filteredSelect, tenantFilter, withCtes } from '../../src/compile/relations.ts';

const ours = [
  { name: '"__tsf_ref_a"', sql: 'SELECT * FROM "s"."a" WHERE "practice_id" = ANY($1::VARCHAR[])' },
  { name: '"__tsf_ref_b"', sql: 'SELECT * FROM "s"."b"' },
];
const DEFS = [
  '"__tsf_ref_a" AS (',
  '  SELECT * FROM "s"."a" WHERE "practice_id" = ANY($1::VARCHAR[])',
  '),',
  '"__tsf_ref_b" AS (',
  '  SELECT * FROM "s"."b"',
  ')',
].join('\n');

describe('withCtes', () => {
  it('returns the body trimmed when there is nothing to add', () => {
    expect(withCtes('  \nselect 1\n  ', [])).toBe('select 1');
  });

  it('prepends a WITH to a plain SELECT', () => {
    expect(withCtes('select * from "__tsf_ref_a"\n', ours)).toBe(`WITH ${DEFS}\nselect * from "__tsf_ref_a"`);
  });

  it("merges into the author's leading WITH: ours first, theirs after, one WITH keyword", () => {
    const body = 'with latest as (select 1 from "__tsf_ref_a")\nselect * from latest';
    expect(withCtes(body, ours)).toBe(`WITH ${DEFS},\nlatest as (select 1 from "__tsf_ref_a")\nselect * from latest`);
  });

  it('merges into WITH RECURSIVE and keeps RECURSIVE at the front', () => {
    const body = 'WITH RECURSIVE n(i) AS (select 1 union all select i + 1 from n where i < 3)\nselect * from n, "__tsf_ref_b"';
    const out = withCtes(body, ours);
    expect(out).toBe(`WITH RECURSIVE ${DEFS},\nn(i) AS (select 1 union all select i + 1 from n where i < 3)\nselect * from n, "__tsf_ref_b"`);
    expect(out.match(/\bWITH\b/gi)).toHaveLength(1);
  });

  it('matches WITH / WITH RECURSIVE in any case and across line breaks', () => {
    expect(withCtes('With\n  x as (select 1)\nselect * from x', ours.slice(1))).toBe(
      'WITH "__tsf_ref_b" AS (\n  SELECT * FROM "s"."b"\n),\nx as (select 1)\nselect * from x',
    );
    expect(withCtes('with   recursive\tx as (select 1)\nselect * from x', ours.slice(1))).toBe(
      'WITH RECURSIVE "__tsf_ref_b" AS (\n  SELECT * FROM "s"."b"\n),\nx as (select 1)\nselect * from x',
    );
  });

  it("keeps the author's leading comments in front and still merges the WITH after them", () => {
    const body = '-- header comment\n/* block\n   comment with WITH inside */\n  -- another\nwith x as (select 1)\nselect * from x';
    expect(withCtes(body, ours.slice(1))).toBe(
      '-- header comment\n/* block\n   comment with WITH inside */\n  -- another\nWITH "__tsf_ref_b" AS (\n  SELECT * FROM "s"."b"\n),\nx as (select 1)\nselect * from x',
    );
  });

  it('is not fooled by a leading comment that mentions WITH before a plain SELECT', () => {
    const body = '-- with care: no CTE here\nselect 1';
    expect(withCtes(body, ours.slice(1))).toBe('-- with care: no CTE here\nWITH "__tsf_ref_b" AS (\n  SELECT * FROM "s"."b"\n)\nselect 1');
  });

  it('does not take an identifier that starts with "with" for the keyword', () => {
    expect(withCtes('with_totals', ours.slice(1))).toBe('WITH "__tsf_ref_b" AS (\n  SELECT * FROM "s"."b"\n)\nwith_totals');
    expect(withCtes('withdrawn as (select 1) select 2', ours.slice(1)).startsWith('WITH "__tsf_ref_b" AS (')).toBe(true);
    expect(withCtes('withdrawn as (select 1) select 2', ours.slice(1))).toContain(')\nwithdrawn as');
  });

  it('indents a multi-line CTE body and keeps the CTE order', () => {
    const out = withCtes('select 1', [
      { name: '"z"', sql: 'select\n  a\nfrom t' },
      { name: '"a"', sql: 'select 2' },
    ]);
    expect(out).toBe('WITH "z" AS (\n  select\n    a\n  from t\n),\n"a" AS (\n  select 2\n)\nselect 1');
  });
});

describe('tenant filter text', () => {
  it('binds the practices as $1, never as text', () => {
    expect(tenantFilter('practice_id')).toBe('"practice_id" = ANY($1::VARCHAR[])');
    expect(tenantFilter('practice_id', 'e')).toBe('"e"."practice_id" = ANY($1::VARCHAR[])');
    expect(filteredSelect('raw', 'encounters', 'practice_id')).toBe('SELECT * FROM "raw"."encounters" WHERE "practice_id" = ANY($1::VARCHAR[])');
  });

  it('quotes every identifier, even awkward ones', () => {
    expect(filteredSelect('r"aw', 'enc ounters', 'tenant"id')).toBe('SELECT * FROM "r""aw"."enc ounters" WHERE "tenant""id" = ANY($1::VARCHAR[])');
    expect(cteName('src', 'ehr__encounters')).toBe('"__tsf_src_ehr__encounters"');
  });
});
