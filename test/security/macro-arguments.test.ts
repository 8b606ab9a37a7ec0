import { describe, expect, it } from 'vitest';
import { compileLoadedProject } from '../../src/cli/api.ts';
import { argumentProblem } from '../../src/compile/macro-arguments.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { REPO_ROOT } from '../support/demo-project.ts';
import { compileModel } from '../support/model-probe.ts';

/**
 * A macro's text argument is pasted into the SQL that runs once and into the lineage rendering
 * the checks read again (the shift inside `tsf_shifted(…, shift)`, every argument of a
 * generalizer inside `tsf_column(…)`). Red-team, 2026-12-07: a shift of `"v.date_shift_days /* x"`
 * opened one block comment in the SQL that ran and two nested ones in the SQL the checks read,
 * so the model text after it was `reverse(p.ssn)` and an exact birth date to DuckDB and the
 * demo's `month_of(shift_date(…))` to every check: 18 of 18 rows of a research relation held a
 * reversed SSN, compiled clean. Each argument must now be one whole expression.
 */

const SP = '{{ref "stg_patients"}}';
const JOIN = 'join {{ref "vault_person_tokens"}} v on v.practice_id = p.practice_id and v.patient_id = p.patient_id';
const CLASSES = { practice_id: 'none', person_token: 'none', birth_month: 'quasi' } as const;
const research = (select: string) => compileModel('models/research/x_arg.sql', `select p.practice_id, v.person_token,\n  ${select}\nfrom ${SP} p ${JOIN}\n`, CLASSES);
const refusedForArgument = (d: ReturnType<typeof compileModel>) => d.filter((x) => x.code === 'TSF211' && /macro \w+: argument .* must be one SQL expression/.test(x.message));

describe("a macro's argument is one SQL expression", () => {
  it('the demo form compiles', () => {
    expect(research('{{month_of (shift_date "p.birth_date" "v.date_shift_days")}} as birth_month')).toEqual([]);
  });

  it('the reproduction: a block comment opened in the shift argument', () => {
    const d = research(
      '{{month_of (shift_date "p.birth_date" "v.date_shift_days /* x")}} */ AS INTEGER)) AS DATE)) AS DATE) AS birth_month, reverse(p.ssn) AS ref_code -- */ AS INTEGER)), v.date_shift_days) AS DATE)) AS DATE)) AS birth_month',
    );
    expect(refusedForArgument(d)).toHaveLength(1);
    expect(refusedForArgument(d)[0]!.message).toContain('macro shift_date: argument 2 does not scan as SQL');
    expect(refusedForArgument(d)[0]!.line).toBe(2);
  });

  const variants: [string, string][] = [
    ['a closed block comment in the shift', '{{month_of (shift_date "p.birth_date" "v.date_shift_days /* x */")}} as birth_month'],
    ['a line comment in the shift', '{{month_of (shift_date "p.birth_date" "v.date_shift_days -- x")}}\n as birth_month'],
    ['a comment in the date argument', '{{month_of (shift_date "p.birth_date /* x" "v.date_shift_days")}} */ as birth_month'],
    ['unbalanced parentheses', '{{month_of (shift_date "p.birth_date), (p.ssn" "v.date_shift_days")}} as birth_month'],
    ['a second select item', '{{month_of (shift_date "p.birth_date" "v.date_shift_days, p.ssn")}} as birth_month'],
    ['an alias', '{{month_of (shift_date "p.birth_date" "v.date_shift_days AS s")}} as birth_month'],
    ['a clause', '{{month_of (shift_date "p.birth_date" "v.date_shift_days FROM x")}} as birth_month'],
    ['a semicolon', '{{month_of (shift_date "p.birth_date" "v.date_shift_days;")}} as birth_month'],
    ['an unterminated string', '{{month_of (shift_date "p.birth_date" "v.date_shift_days || \'x")}} as birth_month'],
    // By name (an extra name is refused before rendering: test/compile/template-strict.test.ts).
    ['a hash argument', '{{zip3 zip="p.zip /* x"}} as birth_month'],
  ];
  it.each(variants)('refused: %s', (_, select) => {
    expect(refusedForArgument(research(select)), select).toHaveLength(1);
  });

  it("a macro's output with a comment, given to another macro, is refused too (a macro file of the same pull request)", () => {
    const d = compileModel(
      'models/research/x_arg.sql',
      `select p.practice_id, v.person_token,\n  {{month_of (shift_date "p.birth_date" (my_shift))}} */ as birth_month\nfrom ${SP} p ${JOIN}\n`,
      CLASSES,
      [],
      [],
      (project) => project.macros.push({ name: 'my_shift', body: 'v.date_shift_days /* x', file: 'macros/my_shift.hbs', line: 1 }),
    );
    expect(refusedForArgument(d)).toHaveLength(1);
  });

  it('accepted: columns, literals, calls, CASE, casts, arithmetic, quoted names, strings holding comment marks', () => {
    for (const ok of ['p.birth_date', "'2024-01-01'", 'coalesce(a, b)', "CASE WHEN a > 1 THEN 'x' ELSE 'y' END", 'CAST(x AS DATE)', 'x::date', 'a + b * 2', '"Weird Name"', "'a -- b /* c'", '(a)', "date_trunc('month', x)"]) {
      expect(argumentProblem(ok), ok).toBeUndefined();
    }
  });
});

/**
 * Red-team, 2026-12-07 (second pass): a pull request's macro named like a parameter of an
 * approved generalizer (`macros/shift_days.hbs`) was what `{{shift_days}}` in shift_date's body
 * called (Handlebars tries a helper before a value), while the analysis rendering took the shift
 * from the argument: the checks read "shifted by the vault's shift" and DuckDB shifted by a
 * constant 0 (7 of 7 true birth months in pseudo), or printed a `/*` that the analysis rendering
 * closed elsewhere (reverse(ssn) as `sex`, 7 of 7 rows). An approved body now sees tsform's
 * helpers and the approved generalizers only.
 */
describe("an approved generalizer's body reads its own arguments, whatever macros the project adds", () => {
  const demo = loadProject(REPO_ROOT);
  const compiled = (macros: Record<string, string>, sql: string) => {
    const project = structuredClone(demo);
    for (const [name, body] of Object.entries(macros)) project.macros.push({ name, body, file: `macros/${name}.hbs`, line: 1 });
    project.models.push({ name: 'x_shadow', file: 'models/research/x_shadow.sql', sql, line: 1 });
    project.properties.push({
      name: 'x_shadow',
      file: 'models/research/_x_shadow.yml',
      line: 1,
      columns: Object.entries(CLASSES).map(([name, phi]) => ({ name, phi, phiExplicit: true, tests: [], file: 'models/research/_x_shadow.yml', line: 1 })),
    });
    return compileLoadedProject(project, { write: false }).manifest.models.x_shadow!;
  };
  const model = `select p.practice_id, vt.person_token,\n  {{month_of (shift_date "p.birth_date" "vt.date_shift_days")}} as birth_month\nfrom ${SP} p join {{ref "vault_person_tokens"}} vt on vt.practice_id = p.practice_id and vt.patient_id = p.patient_id\ncross join (select 0 as date_shift_days) v\n`;

  it('a macro named shift_days does not replace the shift the model gave', () => {
    const node = compiled({ shift_days: 'v.date_shift_days' }, model);
    expect(node.compiled_sql).toContain('CAST(vt.date_shift_days AS INTEGER)');
    expect(node.compiled_sql).not.toContain('CAST(v.date_shift_days AS INTEGER)');
  });

  it('nor one named value, nor one that prints a comment for the incremental rendering', () => {
    const value = compiled({ value: 'p.ssn' }, model);
    expect(value.compiled_sql).toContain('CAST(p.birth_date AS DATE)');
    expect(value.compiled_sql).not.toContain('p.ssn');
    const comment = compiled({ shift_days: '{{#if is_incremental}}0 /*{{else}}v.date_shift_days{{/if}}' }, `{{config materialized="incremental" unique_key="person_token"}}\n${model}`);
    expect(`${comment.compiled_sql}\n${comment.compiled_incremental_sql}`).not.toContain('/*');
  });
});
