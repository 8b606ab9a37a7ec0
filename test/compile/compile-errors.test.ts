import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Codes, type Diagnostic } from '../../src/errors.ts';
import { brief, compileDir, fixtureDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

function lineOf(dir: string, file: string, needle: string): number {
  const i = readFileSync(join(dir, file), 'utf8').split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`'${needle}' not in ${file}`);
  return i + 1;
}

describe('compile errors are collected, each with code, file and line', () => {
  const dir = fixtureDir('compile-errors');
  const { diagnostics, manifest, dependsOn } = compileDir(dir);
  const byFile = (file: string): Diagnostic[] => diagnostics.filter((d) => d.file === file);

  it('reports exactly one diagnostic per broken model, all from one call', () => {
    expect(brief(diagnostics).sort((a, b) => a.file!.localeCompare(b.file!))).toEqual([
      { code: Codes.unknownRef, file: 'models/bad_ref.sql', line: lineOf(dir, 'models/bad_ref.sql', '"custmers"') },
      { code: Codes.dynamicArgument, file: 'models/dynamic_ref.sql', line: lineOf(dir, 'models/dynamic_ref.sql', 'someVariable') },
      { code: Codes.invalidConfig, file: 'models/incremental_no_key.sql', line: lineOf(dir, 'models/incremental_no_key.sql', '{{config') },
      { code: Codes.templateSyntax, file: 'models/syntax_error.sql', line: lineOf(dir, 'models/syntax_error.sql', 'and 1 = 1') },
      { code: Codes.invalidConfig, file: 'models/unknown_config.sql', line: lineOf(dir, 'models/unknown_config.sql', 'colour') },
      { code: Codes.unknownVar, file: 'models/unknown_var.sql', line: lineOf(dir, 'models/unknown_var.sql', 'no_such_var') },
    ]);
  });

  it('unknown ref (TSF202) suggests the nearest model name', () => {
    const [d] = byFile('models/bad_ref.sql');
    expect(d!.message).toContain("unknown ref 'custmers'");
    expect(d!.message).toMatch(/did you mean .*'customers'/);
  });

  it('non-literal ref (TSF204) says why literals are needed', () => {
    expect(byFile('models/dynamic_ref.sql')[0]!.message).toMatch(/\{\{ref\}\} needs literal arguments/);
  });

  it('unknown var without a default (TSF206) names the var; a var with a default is fine', () => {
    const [d] = byFile('models/unknown_var.sql');
    expect(d!.message).toContain("'no_such_var'");
    expect(byFile('models/orders.sql')).toEqual([]);
  });

  it('unknown config key (TSF205) names the key and the known ones', () => {
    const [d] = byFile('models/unknown_config.sql');
    expect(d!.message).toContain("unknown config key 'colour'");
    expect(d!.message).toContain('unique_key');
  });

  it('incremental without unique_key (TSF205) asks for the merge key', () => {
    expect(byFile('models/incremental_no_key.sql')[0]!.message).toMatch(/incremental model needs unique_key/);
  });

  it('Handlebars syntax error (TSF201) is a diagnostic, not a crash', () => {
    expect(byFile('models/syntax_error.sql')[0]!.message).toMatch(/^template syntax error/);
  });

  it('renders nothing when the project has errors (no half-compiled SQL)', () => {
    for (const node of Object.values(manifest.models)) expect(node.compiled_sql).toBeUndefined();
  });

  it('still records the dependencies it could read statically', () => {
    expect(dependsOn.orders).toEqual(['customers']);
    expect(dependsOn.customers).toEqual(['source:app.customers']);
    expect(dependsOn.syntax_error).toBeUndefined();
    // A model that did not render never reaches the manifest without its SQL.
    expect(Object.values(manifest.models).filter((m) => typeof m.compiled_sql !== 'string')).toEqual([]);
  });
});

describe('template syntax errors carry a line', () => {
  it('a block closed by the wrong helper ({{#if}} … {{/unless}}) points at the block', () => {
    const dir = fixtureDir('mismatched-block');
    const { diagnostics } = compileDir(dir);
    // Handlebars reports this one as "if doesn't match unless - 2:3" (no "line N" in the text);
    // its Exception carries `lineNumber`, which the diagnostic must use.
    expect(brief(diagnostics)).toEqual([
      { code: Codes.templateSyntax, file: 'models/broken.sql', line: lineOf(dir, 'models/broken.sql', '{{#if is_incremental}}') },
    ]);
  });

  it('a syntax error inside a macro names the macro file', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'macros/zip3.hbs': '{{!-- params: column --}}\nleft({{column}}, 3\n{{#each}}\n',
      'models/m.sql': 'select 1 as practice_id\n',
    });
    const { diagnostics } = compileDir(d);
    expect(diagnostics.map((x) => [x.code, x.file])).toEqual([[Codes.templateSyntax, 'macros/zip3.hbs']]);
    expect(diagnostics[0]!.line).toBeGreaterThanOrEqual(3);
  });
});

describe('the dbt habit: Jinja call syntax', () => {
  it("`{{ ref('x') }}` and friends are TSF201 at the model's line, with tsform's Handlebars form", () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/upstream.sql': 'select 1 as practice_id\n',
      'models/m.sql': [
        "{{ config(materialized='view') }}",
        'select u.practice_id',
        "from {{ ref('upstream') }} u",
        'join {{ source("app", "customers") }} c on true',
        '',
      ].join('\n'),
    });
    const { diagnostics } = compileDir(d);
    expect(diagnostics.map((x) => ({ code: x.code, file: x.file, line: x.line, message: x.message }))).toEqual([
      { code: Codes.templateSyntax, file: 'models/m.sql', line: 1, message: "template syntax error: `{{ config(materialized='view') }}` is dbt's Jinja syntax; tsform templates are Handlebars: write `{{config materialized=\"view\"}}`" },
      { code: Codes.templateSyntax, file: 'models/m.sql', line: 3, message: "template syntax error: `{{ ref('upstream') }}` is dbt's Jinja syntax; tsform templates are Handlebars: write `{{ref \"upstream\"}}`" },
      { code: Codes.templateSyntax, file: 'models/m.sql', line: 4, message: 'template syntax error: `{{ source("app", "customers") }}` is dbt\'s Jinja syntax; tsform templates are Handlebars: write `{{source "app" "customers"}}`' },
    ]);
  });
});

describe('the dbt habit: Jinja tags', () => {
  it('`{% if is_incremental() %}` is TSF201 at its line with the Handlebars block, not SQL text', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/m.sql': ['select 1 as practice_id', '{% if is_incremental() %}', 'where true', '{% endif %}', ''].join('\n'),
    });
    const { diagnostics } = compileDir(d);
    expect(diagnostics.map((x) => [x.code, x.file, x.line, x.message])).toEqual([
      [Codes.templateSyntax, 'models/m.sql', 2, 'template syntax error: `{% if is_incremental() %}` is a Jinja tag (dbt); tsform templates are Handlebars: write `{{#if is_incremental}}`'],
      [Codes.templateSyntax, 'models/m.sql', 4, 'template syntax error: `{% endif %}` is a Jinja tag (dbt); tsform templates are Handlebars: write `{{/if}}`'],
    ]);
  });

  it('a Jinja comment `{# … #}` is TSF201 at its line (it reached the database as text)', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/m.sql': ['select 1 as practice_id', '{# the practice', '   of the row #}', '{{#if is_incremental}}where true{{/if}}', ''].join('\n'),
    });
    const { diagnostics } = compileDir(d);
    expect(diagnostics.map((x) => [x.code, x.file, x.line])).toEqual([[Codes.templateSyntax, 'models/m.sql', 2]]);
    expect(diagnostics[0]!.message).toContain('{{!-- … --}}');
  });
});

describe('other reference errors', () => {
  it('unknown source (TSF203) with a suggestion; unknown partial (TSF210)', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': 'sources:\n  - name: ehr\n    tables:\n      - name: visits\n',
      'models/m.sql': 'select *\nfrom {{source "ehr" "visit"}}\n{{> no_such_macro}}\n',
    });
    const { diagnostics } = compileDir(d);
    expect(brief(diagnostics)).toEqual([
      { code: Codes.unknownMacro, file: 'models/m.sql', line: 3 },
      { code: Codes.unknownSource, file: 'models/m.sql', line: 2 },
    ]);
    expect(diagnostics[1]!.message).toMatch(/did you mean 'ehr\.visits'/);
  });

  it('a var named like an Object.prototype member is still looked up in tsform.yml vars only', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/m.sql': 'select 1 as practice_id,\n  {{var "valueOf" 3}} as b,\n  {{var "constructor"}} as a\n',
    });
    // `constructor` is not in vars and has no default: TSF206 on its line, not a render crash.
    expect(brief(compileDir(d).diagnostics)).toEqual([{ code: Codes.unknownVar, file: 'models/m.sql', line: 3 }]);
    const ok = writeTempProject({ ...MINIMAL_PROJECT, 'models/m.sql': 'select 1 as practice_id, {{var "valueOf" 3}} as b\n' });
    const compiled = compileDir(ok);
    expect(compiled.diagnostics).toEqual([]);
    expect(compiled.manifest.models.m!.compiled_sql).toBe('select 1 as practice_id, 3 as b');
  });

  it('a ref with two arguments is TSF204', () => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'models/a.sql': 'select 1 as practice_id\n', 'models/b.sql': 'select * from {{ref "a" "b"}}\n' });
    expect(brief(compileDir(d).diagnostics)).toEqual([{ code: Codes.dynamicArgument, file: 'models/b.sql', line: 1 }]);
  });
});

describe('scope rules (DESIGN §4)', () => {
  it('a global model reading a tenant-scoped, identifiable model is TSF208 naming both', () => {
    const { diagnostics } = compileDir(fixtureDir('global-scope'));
    expect(brief(diagnostics)).toEqual([{ code: Codes.globalReadsIdentifiable, file: 'models/population/pop_leaky.sql', line: 1 }]);
    expect(diagnostics[0]!.message).toContain("'pop_leaky'");
    expect(diagnostics[0]!.message).toContain("'stg_visits'");
  });

  it('a global model reading a pseudonymized tenant-scoped model compiles, unfiltered', () => {
    const dir = fixtureDir('global-scope');
    const clean = writeTempProject(
      { 'models/population/pop_visits_by_year.sql': readFileSync(join(dir, 'models/population/pop_visits_by_year.sql'), 'utf8') },
      { dir, copy: ['tsform.yml', 'tenants.yml', 'models/sources.yml', 'models/staging', 'models/research'] },
    );
    const { diagnostics, manifest } = compileDir(clean);
    expect(diagnostics).toEqual([]);
    const pop = manifest.models.pop_visits_by_year!;
    // In the research schema: published, so the lineage gate applies (pseudonymized is forced on).
    expect(pop).toMatchObject({ scope: 'global', pseudonymized: true, depends_on: ['res_visits'] });
    expect(manifest.models.res_visits).toMatchObject({ scope: 'tenant', pseudonymized: true });
    // Computed once across practices: no tenant filter, reads the research relation directly.
    expect(pop.compiled_sql).toContain('"pseudo"."res_visits"');
    expect(pop.compiled_sql).not.toContain('$1');
  });

  it('a global model may read a source only through a pseudonymized model: sources are tenant-scoped', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': 'sources:\n  - name: ehr\n    tables:\n      - name: visits\n',
      'models/g.sql': '{{config scope="global"}}\nselect count(*) from {{source "ehr" "visits"}}\n',
    });
    const { diagnostics } = compileDir(d);
    expect(diagnostics.map((x) => x.code)).toEqual([Codes.globalReadsIdentifiable]);
    expect(diagnostics[0]!.message).toContain("'source:ehr.visits'");
  });

  it('a shared model reading a tenant-scoped model is TSF209', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/t.sql': 'select 1 as practice_id\n',
      'models/s.sql': '{{config scope="shared"}}\nselect * from {{ref "t"}}\n',
    });
    // At the {{ref}} that reads it.
    expect(brief(compileDir(d).diagnostics)).toEqual([{ code: Codes.sharedReadsTenant, file: 'models/s.sql', line: 2 }]);
  });
});
