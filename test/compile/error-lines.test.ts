import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import type { ModelNode } from '../../src/artifacts/manifest.ts';
import { duckdbErrorPosition, postgresErrorPosition, withStatement } from '../../src/adapters/statement-position.ts';
import { compileWorkspace } from '../../src/cli/api.ts';
import { createRenderer } from '../../src/compile/render.ts';
import { Codes, DiagnosticsError, type Diagnostic } from '../../src/errors.ts';
import { locateModelError } from '../../src/execute/error-location.ts';
import { strictColumnChecks } from '../../src/security/strict-columns.ts';
import { compileDir, MINIMAL_PROJECT, REPO_ROOT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * Issue 15 item 7: errors at the model's own line. Compile keeps a line map of each rendering;
 * database errors against compiled SQL and compile errors found in a rendering are reported at
 * the model file's line (not at line 1, not at the compiled SQL's line).
 */

afterAll(removeTempProjects);

const STAGING = {
  ...MINIMAL_PROJECT,
  'tsform.yml': 'name: generated\nmodels:\n  staging:\n    scope: tenant\n',
  'models/sources.yml': 'sources:\n  - name: ehr\n    tables:\n      - name: visits\n',
  'models/staging/stg_visits.sql': 'select practice_id, patient_id, visit_date from {{source "ehr" "visits"}}\n',
};

const caught = (fn: () => unknown): Diagnostic[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof DiagnosticsError) return e.diagnostics;
    throw e;
  }
  return [];
};

describe('the line map of a rendering', () => {
  const { project, manifest } = compileDir(REPO_ROOT);

  it('renders the same SQL as a plain rendering, and maps every line written as-is to itself', () => {
    let mapped = 0;
    for (const model of project.models) {
      const node = manifest.models[model.name];
      if (!node) continue;
      const lines = node.compiled_lines!;
      const compiled = node.compiled_sql.split('\n');
      expect(lines, model.name).toHaveLength(compiled.length);
      const source = model.sql.split('\n');
      compiled.forEach((text, i) => {
        const at = lines[i];
        if (at === null || at === undefined) return;
        expect(at, model.name).toBeGreaterThanOrEqual(1);
        expect(at, model.name).toBeLessThanOrEqual(source.length);
        if (!source[at - 1]!.includes('{{')) {
          // Equal, or the author's `with x as (` whose WITH took tsform's CTEs in front of it.
          const same = text === source[at - 1] || (/^\s*with\s/i.test(source[at - 1]!) && source[at - 1]!.trimEnd().endsWith(text.trim()));
          expect(same, `${model.name}: compiled line ${i + 1} (${text}) → ${model.file}:${at} (${source[at - 1]})`).toBe(true);
          mapped++;
        }
      });
    }
    expect(mapped).toBeGreaterThan(100);
  });

  it('is the SQL a plain rendering gives, with blocks, whitespace control, macros and the author\'s own WITH', () => {
    const renderer = createRenderer([{ name: 'twice', body: '({{x}} +\n {{x}})', file: 'macros/twice.hbs', line: 1 }]);
    const scope = {
      filtered: true,
      isIncremental: true,
      self: { name: 'm', schema: 's', identifier: 'm', scope: 'tenant' as const },
      lookup: (id: string) => ({ name: id, kind: 'model' as const, scope: 'tenant' as const, materialized: 'table' as const, schema: 's', identifier: id }),
      ephemeralBody: () => '',
      tenantColumn: 'practice_id',
      vars: {},
    };
    const template = [
      '-- a comment first',
      'with mine as (',
      '  select practice_id, {{twice x="v"}} as w',
      '  from {{ref "up"}}',
      '  {{#if is_incremental}}',
      '  where v > (select max(v) from {{this}})',
      '  {{/if}}',
      ')',
      '{{~ config materialized="table" ~}}',
      'select',
      '  practice_id,',
      '  w',
      'from mine',
    ].join('\n');
    const plain = renderer.render(template, scope);
    const { sql, lines } = renderer.renderMapped(template, scope);
    expect(sql).toBe(plain);
    const at = (text: string) => {
      const all = sql.split('\n');
      const exact = all.indexOf(text);
      return lines[exact >= 0 ? exact : all.findIndex((l) => l.includes(text))];
    };
    expect(at('where v >')).toBe(6);
    expect(at('from "__tsf_ref_up"')).toBe(4);
    expect(at(' {{x}}') ?? at('v)')).toBe(3); // the macro's second line belongs to its call
    expect(at('  w')).toBe(12);
    expect(at('from mine')).toBe(13);
    expect(at('SELECT * FROM "s"."up"')).toBeNull(); // tsform's CTE
  });
});

describe('compile errors at the offending line', () => {
  it('a syntax error (a missing comma) is reported where the parser stopped, in the model, not at line 1', () => {
    const dir = writeTempProject({
      ...STAGING,
      'models/staging/visits_by_day.sql': [
        'with v as (',
        '  select * from {{ref "stg_visits"}}',
        ')',
        'select',
        '  practice_id,',
        '  visit_date,',
        '  patient_id',
        '  count(*) as visits',
        'from v',
        'group by 1, 2, 3',
        '',
      ].join('\n'),
    });
    const found = compileDir(dir).diagnostics.filter((d) => d.code === Codes.modelSql);
    expect(found.map((d) => [d.file, d.line])).toEqual([['models/staging/visits_by_day.sql', 8]]);
  });

  it('a singular test with a syntax error: at its line, not line 1', () => {
    const dir = writeTempProject({ ...STAGING, 'tests/odd_visits.sql': '-- visits in the future\nselect practice_id\nfrom {{ref "stg_visits"}}\nwhere visit_date > current_date and and 1 = 1\n' });
    const found = compileDir(dir).diagnostics.filter((d) => d.code === Codes.modelSql);
    expect(found.map((d) => [d.file, d.line])).toEqual([['tests/odd_visits.sql', 4]]);
  });

  it('a tenant-scoped model in the published research schema: at the setting that made it so', () => {
    const yml = 'name: generated\nmodels:\n  staging:\n    scope: tenant\n  published:\n    schema: research\n    scope: tenant\n';
    const fromFolder = writeTempProject({ ...STAGING, 'tsform.yml': yml, 'models/published/counts.sql': 'select count(*) as n\nfrom {{ref "stg_visits"}}\n' });
    const a = compileDir(fromFolder).diagnostics.filter((d) => d.message.includes('is published research'));
    expect(a.map((d) => [d.file, d.line])).toEqual([['tsform.yml', 7]]);
    expect(a[0]!.message).toContain('scope comes from tsform.yml:7');
    const fromConfig = writeTempProject({ ...STAGING, 'models/published/counts.sql': '-- counts\n{{config schema="research" materialized="view" scope="global"}}\nselect 1 as n\n' });
    const b = compileDir(fromConfig).diagnostics.filter((d) => d.message.includes('is published research'));
    expect(b.map((d) => [d.file, d.line])).toEqual([['models/published/counts.sql', 2]]);
  });

  it('a global model reading identifiable data: at the {{ref}} line', () => {
    // (a folder key with no model under it is TSF117, so only here does tsform.yml name population/)
    const dir = writeTempProject({ ...STAGING, 'tsform.yml': `${STAGING['tsform.yml']}  population:\n    scope: global\n`, 'models/population/pop.sql': '-- population counts\n\nselect count(*) as n\nfrom {{ref "stg_visits"}}\n' });
    const found = compileDir(dir).diagnostics.filter((d) => d.code === Codes.globalReadsIdentifiable);
    expect(found.map((d) => [d.file, d.line])).toEqual([['models/population/pop.sql', 4]]);
  });

  it('a cycle: at the {{ref}} that closes it, in the file that has it', () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/a.sql': '-- a\nselect * from {{ref "b"}}\n',
      'models/b.sql': '-- b\n-- reads c\nselect *\nfrom {{ref "c"}}\n',
      'models/c.sql': 'select *\nfrom\n  {{ref "a"}}\n',
    });
    const [d] = caught(() => compileWorkspace(dir, { write: false }));
    expect(d!.code).toBe(Codes.cycle);
    const expected: Record<string, number> = { 'models/a.sql': 2, 'models/b.sql': 4, 'models/c.sql': 3 };
    expect(d!.line).toBe(expected[d!.file!]);
  });

  it('a tenant-scoped model without the tenant column (strict): at its final select list', () => {
    const dir = writeTempProject({
      ...STAGING,
      'models/staging/no_tenant.sql': 'with v as (\n  select * from {{ref "stg_visits"}}\n)\n\nselect\n  patient_id,\n  visit_date\nfrom v\n',
    });
    const { project, manifest } = compileDir(dir);
    const found = strictColumnChecks(project, manifest).filter((d) => d.code === Codes.strictNoTenantColumn);
    expect(found.map((d) => [d.file, d.line])).toEqual([['models/staging/no_tenant.sql', 6]]);
  });

  it('a research column exposing a direct identifier: at that column', () => {
    const dir = writeTempProject({
      ...STAGING,
      'tsform.yml': 'name: generated\nmodels:\n  staging:\n    scope: tenant\n  research:\n    schema: pseudo\n    scope: tenant\n    pseudonymized: true\n',
      'models/staging/_stg.yml': 'models:\n  - name: stg_visits\n    columns:\n      - { name: practice_id, phi: none }\n      - { name: patient_id, phi: direct }\n      - { name: visit_date, phi: quasi }\n',
      'models/research/res.sql': 'select\n  practice_id,\n  1 as n,\n  patient_id as who\nfrom {{ref "stg_visits"}}\n',
    });
    const found = caught(() => compileWorkspace(dir, { write: false })).filter((d) => d.code === Codes.phiLineage);
    expect(found.length).toBeGreaterThan(0);
    expect(found.find((d) => d.message.includes('res.who'))?.line).toBe(4);
  });
});

describe('database errors at the model line', () => {
  const node = (sql: string, lines: (number | null)[]): ModelNode =>
    ({ kind: 'model', name: 'm', path: 'models/m.sql', compiled_sql: sql, compiled_lines: lines }) as unknown as ModelNode;

  it('DuckDB: LINE n of the statement sent, through the line map, to the model line with a caret', async () => {
    const dir = writeTempProject({ 'models/m.sql': '-- m\nselect\n  practice_id,\n  count(distinct nope) as n\nfrom {{ref "x"}}\n' });
    const compiled = 'WITH "__tsf_ref_x" AS (\n  SELECT 1 AS practice_id\n)\nselect\n  practice_id,\n  count(distinct nope) as n\nfrom "__tsf_ref_x"\ngroup by 1';
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const sent = `CREATE TEMP TABLE stage AS\n${compiled}`;
    const err = await conn.prepare(sent).then(
      () => undefined,
      (e: unknown) => withStatement(e, sent),
    );
    conn.closeSync();
    const position = duckdbErrorPosition(err);
    expect(position).toBeDefined();
    const at = locateModelError(position, node(compiled, [null, null, null, 2, 3, 4, 5, null]), dir);
    expect(at?.where).toBe('models/m.sql:4:18');
    expect(at?.excerpt).toEqual(['  4 |   count(distinct nope) as n', '    |                  ^']);
    expect(readFileSync(join(dir, 'models/m.sql'), 'utf8')).toContain('nope');
  });

  it('DuckDB: a LINE and caret in a message a row wrote (error(x)) place nothing', async () => {
    // The caret's column would be 8 + a character code of the row's value (red-team, 2026-12-07).
    const sent = "SELECT error('x' || chr(10) || 'LINE 1: abc' || chr(10) || repeat(' ', 8 + ascii(substr(v, 2, 1))) || '^') AS e\nFROM (SELECT 'ZZMARKER' AS v) AS t";
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const err = await conn.run(sent).then(
      () => undefined,
      (e: unknown) => withStatement(e, sent),
    );
    conn.closeSync();
    expect(String((err as Error).message)).toMatch(/^Invalid Input Error: x\nLINE 1: abc\n {98}\^/);
    expect(duckdbErrorPosition(err)).toBeUndefined();
  });

  it('PostgreSQL: position (1-based characters of the statement sent)', () => {
    const compiled = 'select\n  practice_id,\n  nope\nfrom x';
    const sent = `CREATE TEMPORARY TABLE "s" ON COMMIT DROP AS\n${compiled}`;
    const err = withStatement(Object.assign(new Error('column "nope" does not exist'), { code: '42703', position: String(sent.indexOf('nope') + 1) }), sent);
    const dir = writeTempProject({ 'models/m.sql': '{{config materialized="table"}}\nselect\n  practice_id,\n  nope\nfrom {{ref "x"}}\n' });
    const at = locateModelError(postgresErrorPosition(err), node(compiled, [2, 3, 4, 5]), dir);
    expect(at?.where).toBe('models/m.sql:4:3');
  });

  it('an error in a CTE tsform added says so and names the compiled file', () => {
    const compiled = 'WITH "__tsf_ref_x" AS (\n  SELECT * FROM "s"."x" WHERE "practice_id" = ANY($1::VARCHAR[])\n)\nselect 1';
    const sent = `CREATE TABLE t AS\n${compiled}`;
    const err = withStatement(new Error('x'), sent);
    const position = { statement: sent, offset: sent.indexOf('"s"."x"') };
    expect(err).toBeDefined();
    const at = locateModelError(position, node(compiled, [null, null, null, 4]), '/nonexistent');
    expect(at?.where).toMatch(/^target\/compiled\/m\.sql:2 \(SQL tsform added around models\/m\.sql/);
  });

  it('no position, or a statement that does not hold the model: no location (the message stays as it was)', () => {
    expect(locateModelError(undefined, node('select 1', [1]), '/x')).toBeUndefined();
    expect(locateModelError({ statement: 'select 2', offset: 3 }, node('select 1', [1]), '/x')).toBeUndefined();
  });
});
