import { beforeAll, describe, expect, it } from 'vitest';
import { cellComputedColumns } from '../../src/compile/k-count-shape.ts';
import { checkModelSql } from '../../src/compile/model-sql.ts';
import type { Diagnostic } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import type { ColumnSpec } from '../../src/project/types.ts';
import { compileErrors } from '../support/compile-errors.ts';
import { REPO_ROOT } from '../support/demo-project.ts';

/**
 * A published aggregate's cells each hold k persons or more, but only its keys are shared by
 * them: a column computed over the cell's rows is one member's value (`max(zip3)`) or a list of
 * every member's (`string_agg(zip3 || ':' || birth_year, ',')`), published beside the cell's
 * keys. Found in the twentieth session: both compiled clean. A quasi-identifier of a published
 * aggregate must now be one of its keys.
 */
beforeAll(() => {
  checkModelSql({ sql: 'select 1', allowed: new Set() }); // loads the WebAssembly parser
});

describe('cellComputedColumns: outputs that are neither keys nor the count', () => {
  it.each([
    ['a max beside a key', 'select p.sex, max(p.zip3) as z, count(distinct p.t) as n from p group by p.sex', ['z']],
    ['a list', "select p.sex, string_agg(p.zip3, ',') as z, count(distinct p.t) as n from p group by 1", ['z']],
    ['no GROUP BY', 'select max(p.zip3) as z, count(distinct p.t) as n from p', ['z']],
    ['keys by position, name and expression', "select p.sex, p.zip3, substr(p.band, 1, 2) as b, count(distinct p.t) as n from p group by 1, zip3, substr(p.band, 1, 2)", []],
    ['a key under ROLLUP', 'select p.sex, p.zip3, count(distinct p.t) as n from p group by rollup (p.sex, p.zip3)', []],
    ['an alias grouped is not its expression', 'select min(p.zip3) as sex, count(distinct p.t) as n from p group by p.sex', ['sex']],
    ['the second UNION arm computes it', "select p.sex, p.zip3, count(distinct p.t) as n from p group by 1, 2 union all select p.sex, max(p.zip3), count(distinct p.t) from p group by 1", ['zip3']],
  ])('%s', (_what, sql, expected) => {
    expect(cellComputedColumns(sql, 'n')).toEqual(expected);
  });
});

const base = loadProject(REPO_ROOT);
const FILE = 'models/research/published/x_cells.sql';
const P = '{{ref "pseudo_persons"}}';
const C = '{{ref "pseudo_conditions"}}';
const E = '{{ref "pseudo_encounters"}}';

/** The model with every output declared (quasi unless said otherwise), as the gate requires. */
function compileWith(select: string, none: readonly string[] = ['n']): Diagnostic[] {
  const project = structuredClone(base);
  project.models.push({ name: 'x_cells', file: FILE, sql: `{{config k_anonymity_count="n"}}\n${select}\n`, line: 1 });
  const names = ['sex', 'age_band', 'z', 'detail', 'condition_code', 'encounter_class', 'm', 'n'];
  const column = (name: string): ColumnSpec => ({ name, phi: none.includes(name) ? 'none' : 'quasi', phiExplicit: true, tests: [], file: 'models/research/_x.yml', line: 1 });
  project.properties.push({ name: 'x_cells', file: 'models/research/_x.yml', line: 1, columns: names.map(column) });
  return compileErrors(project);
}

const PER_CELL = /is a quasi-identifier computed over the rows of each cell \(an aggregate\), not one of the cells' keys/;

describe('a published aggregate publishing a quasi-identifier computed per cell', () => {
  it.each([
    ['every member\'s ZIP3 and birth year listed', `select p.sex, string_agg(p.zip3 || ':' || cast(p.birth_year as varchar), ',') as detail, count(distinct p.person_token) as n from ${P} p group by p.sex`, 'detail'],
    ['one member\'s ZIP3 (max)', `select c.condition_code, max(p.zip3) as z, count(distinct c.person_token) as n from ${C} c join ${P} p on p.person_token = c.person_token group by 1`, 'z'],
    ['one member\'s combination (min of a concatenation)', `select c.condition_code, min(p.zip3 || p.age_band) as z, count(distinct c.person_token) as n from ${C} c join ${P} p on p.person_token = c.person_token group by 1`, 'z'],
    ['the grand total\'s oldest member', `select min(p.birth_year) as z, count(distinct p.person_token) as n from ${P} p`, 'z'],
    ['an age band per encounter class (mode)', `select e.encounter_class, mode(p.age_band) as age_band, count(distinct e.person_token) as n from ${E} e join ${P} p on p.person_token = e.person_token group by 1`, 'age_band'],
    ['a list in the second UNION arm', `select p.sex, p.zip3 as z, count(distinct p.person_token) as n from ${P} p group by 1, 2 union all select p.sex, string_agg(p.zip3, ','), count(distinct p.person_token) from ${P} p group by 1`, 'z'],
  ])('%s is refused', (_what, select, column) => {
    const errors = compileWith(select);
    // The gate's per-cell quasi rule, or, for an aggregate that is not a plain measure (a list, a
    // mode, a concatenation), the shape of the published aggregate, which is checked first; a
    // measure of a generalized column (computed upstream) is refused by what it measures too.
    const shape = (m: string) => m.includes(`computes ${column} over each cell's rows`) || m.includes(`measures ${column} over `);
    const d = errors.find((x) => x.code === 'TSF215' && (PER_CELL.test(x.message) ? x.message.startsWith(`x_cells.${column} `) : shape(x.message)));
    expect(d, JSON.stringify(errors.map((x) => x.message))).toBeDefined();
    expect(d).toMatchObject({ file: FILE });
  });

  it('an output named like the key it is not is refused by the shape of the count', () => {
    const errors = compileWith(`select min(p.zip3) as sex, count(distinct p.person_token) as n from ${P} p group by p.sex`);
    expect(errors.find((x) => x.code === 'TSF215')?.message).toMatch(/groups by p\.sex, which it does not output/);
  });

  it('a column declared quasi is held to it even where its SQL derives none', () => {
    const errors = compileWith(`select e.encounter_class, max(e.total_claim_cost) as m, count(distinct e.person_token) as n from ${E} e group by 1`);
    expect(errors.find((x) => PER_CELL.test(x.message))?.message).toMatch(/^x_cells\.m /);
  });

  it.each([
    ['quasi-identifiers as keys', `select p.sex, p.age_band, count(distinct p.person_token) as n from ${P} p group by 1, 2`, []],
    ['a key by its name', `select p.sex, count(distinct p.person_token) as n from ${P} p group by sex`, []],
    ['a cost summed per cell (not a quasi-identifier)', `select e.encounter_class, sum(e.total_claim_cost) as m, count(distinct e.person_token) as n from ${E} e group by 1`, ['m', 'n']],
    ['a description of the key (min over a column of no class)', `select c.condition_code, min(c.condition_description) as m, count(distinct c.person_token) as n from ${C} c group by 1`, ['m', 'n']],
  ])('%s are accepted', (_what, select, none) => {
    expect(compileWith(select, none).filter((d) => PER_CELL.test(d.message))).toEqual([]);
  });

  it('the demo\'s published aggregates pass', () => {
    const project = structuredClone(base);
    expect(compileErrors(project)).toEqual([]);
  });
});
