import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * Red-team, 2026-12-08: a name a template reads that does not exist rendered as '' —
 * `'{{target.name}}' as target_name` compiled to `'' as target_name` (rc 0), `{{min_visits}}`
 * (meant `{{var "min_visits"}}`) and a macro called without its argument (`coalesce(, 0)`) gave a
 * misleading TSF222 "DuckDB-only syntax", and an extra argument was dropped. Each is now TSF211 at
 * its line, naming the name, before anything renders (src/compile/template-fields.ts).
 */
afterAll(removeTempProjects);

const ZERO = '{{!-- params: column --}}\ncoalesce({{column}}, 0)\n';

function compile(files: Record<string, string>) {
  const dir = writeTempProject({ ...MINIMAL_PROJECT, 'tsform.yml': 'name: generated\nvars:\n  min_visits: 0\n', 'models/base.sql': 'select 1 as practice_id, 2 as visits\n', ...files });
  return compileDir(dir);
}

const errors = (files: Record<string, string>) =>
  compile(files)
    .diagnostics.filter((d) => d.severity === 'error')
    .map((d) => ({ code: d.code, file: d.file, line: d.line, message: d.message }));

describe('a name a model reads must exist', () => {
  it("'{{target.name}}' is TSF211 at its line, saying tsform templates have no target", () => {
    const found = errors({ 'models/m.sql': 'select practice_id,\n  \'{{target.name}}\' as target_name\nfrom {{ref "base"}}\n' });
    expect(found).toEqual([expect.objectContaining({ code: Codes.renderFailed, file: 'models/m.sql', line: 2 })]);
    expect(found[0]!.message).toMatch(/'target\.name'.*no 'target'.*\{\{var "name"\}\}/);
  });

  it('{{min_visits}} for a var is TSF211 at its line with {{var "min_visits"}}, not a TSF222 parse error', () => {
    const found = errors({ 'models/m.sql': 'select practice_id\nfrom {{ref "base"}}\nwhere visits > {{min_visits}}\n' });
    expect(found).toEqual([expect.objectContaining({ code: Codes.renderFailed, file: 'models/m.sql', line: 3 })]);
    expect(found[0]!.message).toContain('{{var "min_visits"}}');
  });

  it('an unclosed {{#if}} is TSF201 at the line that opens it, not the last line with the parser dump', () => {
    const found = compile({ 'models/m.sql': 'select practice_id\nfrom {{ref "base"}}\n{{!-- {{#each}} in a comment --}}\n{{#if is_incremental}}\nwhere 1 = 1\n\n' }).diagnostics.filter((d) => d.severity === 'error');
    expect(found).toEqual([expect.objectContaining({ code: Codes.templateSyntax, file: 'models/m.sql', line: 4 })]);
    expect(found[0]!.message).toBe('template syntax error: {{#if}} is never closed: end it with {{/if}}');
  });

  it('a literal in place of a name ({{"min_visits"}}, {{true}}) and a field of a block parameter are TSF211 (they rendered as nothing)', () => {
    for (const [text, message] of [
      ["select practice_id, '{{\"min_visits\"}}' as b from {{ref \"base\"}}\n", /a literal in place of a name .*\{\{var "min_visits"\}\}/],
      ["select practice_id, '{{true}}' as b from {{ref \"base\"}}\n", /a literal in place of a name/],
      ["select practice_id, '{{#with (var \"min_visits\") as |v|}}{{v.min_visits}}{{/with}}' as b from {{ref \"base\"}}\n", /'v\.min_visits' reads a field of the block parameter 'v'/],
    ] as const) {
      const found = errors({ 'models/m.sql': text });
      expect(found, text).toEqual([expect.objectContaining({ code: Codes.renderFailed, file: 'models/m.sql', line: 1 })]);
      expect(found[0]!.message).toMatch(message);
    }
  });

  it('a misspelt field gets the closest name; this.<field> and @index outside #each are refused', () => {
    const found = errors({ 'models/m.sql': 'select practice_id\nfrom {{ref "base"}}\n{{#if is_incremntal}}where 1 = 1{{/if}}\n-- {{this.name}}\n-- {{@index}}\n' });
    expect(found.map((f) => [f.code, f.line])).toEqual([
      [Codes.renderFailed, 3],
      [Codes.renderFailed, 4],
      [Codes.renderFailed, 5],
    ]);
    expect(found[0]!.message).toContain("(did you mean 'is_incremental'?)");
  });

  it('an unknown helper is TSF211 at its line with the closest macro', () => {
    const found = errors({ 'macros/zero.hbs': ZERO, 'models/m.sql': 'select practice_id,\n  {{zeor "visits"}} as v\nfrom {{ref "base"}}\n' });
    expect(found).toEqual([expect.objectContaining({ code: Codes.renderFailed, file: 'models/m.sql', line: 2 })]);
    expect(found[0]!.message).toContain("unknown helper or macro 'zeor' (did you mean 'zero'?)");
  });

  it('a singular test is checked like a model', () => {
    const found = errors({ 'tests/t.sql': 'select practice_id from {{ref "base"}}\nwhere visits < {{min_visits}}\n' });
    expect(found.map((f) => [f.code, f.file, f.line])).toEqual([[Codes.renderFailed, 'tests/t.sql', 2]]);
  });
});

describe("a macro call matches the macro's params", () => {
  it.each([
    ['missing argument', '{{zero}}', /macro zero \(params: column\): argument 'column' is missing/],
    ['misspelt parameter of a partial', '{{> zero colum="visits"}}', /macro zero \(params: column\): no parameter 'colum' \(did you mean 'column'\?\)/],
    ['too many arguments', '{{zero "visits" "extra"}}', /macro zero \(params: column\): given 2 arguments, takes 1/],
    ['positional argument to a partial', '{{> zero "visits"}}', /takes its arguments by name \(column="…"\)/],
  ])('%s: TSF211 at the call', (_what, call, message) => {
    const found = errors({ 'macros/zero.hbs': ZERO, 'models/m.sql': `select practice_id,\n  ${call} as v\nfrom {{ref "base"}}\n` });
    expect(found.length).toBeGreaterThan(0);
    for (const f of found) expect([f.code, f.file, f.line]).toEqual([Codes.renderFailed, 'models/m.sql', 2]);
    expect(found.map((f) => f.message).join('\n')).toMatch(message);
  });

  it("a macro body reading a name that is not one of its params is TSF211 in the macro's file", () => {
    const found = errors({ 'macros/zero.hbs': '{{!-- params: column --}}\ncoalesce({{colum}}, 0)\n', 'models/m.sql': 'select practice_id, {{zero "visits"}} as v from {{ref "base"}}\n' });
    expect(found.map((f) => [f.code, f.file, f.line])).toEqual([[Codes.renderFailed, 'macros/zero.hbs', 2]]);
    expect(found[0]!.message).toContain("macro zero: 'colum' is not one of its parameters (params: column)");
    expect(found[0]!.message).toContain("(did you mean 'column'?)");
  });
});

describe('what templates may read still renders', () => {
  it('is_incremental, this, params by position and by name, #each args with @index and block params, optional conditions, ../', () => {
    const { diagnostics, manifest } = compile({
      'macros/zero.hbs': ZERO,
      // No params line: its names are given by name.
      'macros/named.hbs': 'coalesce({{column}}, {{fallback}})\n',
      // Variadic (reads args), and a condition that may be left out.
      'macros/greatest_of.hbs': 'greatest({{#each args as |a i|}}{{#if @index}}, {{/if}}{{a}}{{/each}}){{#if distinct}} + 0{{/if}}\n',
      'macros/in_each.hbs': '{{!-- params: column --}}\n{{#each args}}{{../column}}{{/each}}\n',
      'models/m.sql': [
        '{{config materialized="incremental" unique_key="practice_id"}}',
        'select practice_id,',
        '  {{zero "visits"}} as a,',
        '  {{> zero column="visits"}} as b,',
        '  {{zero column="visits"}} as c,',
        '  {{> named column="visits" fallback="1"}} as d,',
        '  {{greatest_of "1" "visits"}} as e,',
        '  {{in_each "visits" "x"}} as f',
        'from {{ref "base"}}',
        '{{#if is_incremental}}where visits > (select count(*) from {{this}}){{/if}}',
        '',
      ].join('\n'),
    });
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const sql = manifest.models.m!.compiled_incremental_sql!;
    expect(sql).toContain('coalesce(visits, 0) as a');
    expect(sql).toMatch(/coalesce\(visits, 0\)\s*as b/); // a partial keeps its file's last line break
    expect(sql).toContain('coalesce(visits, 0) as c');
    expect(sql).toMatch(/coalesce\(visits, 1\)\s*as d/);
    expect(sql).toContain('greatest(1, visits) as e');
    expect(sql).toContain('visitsvisits as f');
    expect(sql).toMatch(/where visits > \(select count\(\*\) from /);
  });
});
