import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectsColumn, strictChecks } from '../../src/compile/strict-checks.ts';
import { Codes } from '../../src/errors.ts';
import { strictColumnChecks } from '../../src/security/strict-columns.ts';
import { brief, compileDir, fixtureDir, REPO_ROOT } from '../fixtures/project-fixture.ts';

/** 1-based line of the first line of `file` containing `needle` (fixtures' lines are asserted). */
function lineOf(dir: string, file: string, needle: string): number {
  const i = readFileSync(join(dir, file), 'utf8').split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`'${needle}' not in ${file}`);
  return i + 1;
}

/** Compiles a fixture (which must compile cleanly) and runs the strict checks on it. */
function strictOn(name: string) {
  const dir = fixtureDir(name);
  const { project, manifest, diagnostics } = compileDir(dir);
  expect(brief(diagnostics), `${name} must compile without errors`).toEqual([]);
  return { dir, project, manifest, strict: strictChecks(project, manifest) };
}

describe('strict check 1: every source column is classified (TSF216)', () => {
  const { dir, strict } = strictOn('strict-unclassified');
  const yml = 'models/sources.yml';

  it('flags each column without phi: at its yml line, and a source table without columns', () => {
    expect(brief(strict)).toEqual([
      { code: Codes.strictUnclassifiedColumn, file: yml, line: lineOf(dir, yml, '{ name: patient_id }') },
      { code: Codes.strictUnclassifiedColumn, file: yml, line: lineOf(dir, yml, 'name: visit_date') },
      { code: Codes.strictUnclassifiedColumn, file: yml, line: lineOf(dir, yml, 'name: notes') },
    ]);
    expect(Codes.strictUnclassifiedColumn).toBe('TSF216');
  });

  it('names the source column or table', () => {
    expect(strict.map((d) => d.message)).toEqual([
      expect.stringContaining("'ehr.visits.patient_id' has no phi class"),
      expect.stringContaining("'ehr.visits.visit_date' has no phi class"),
      expect.stringContaining("source 'ehr.notes' declares no columns"),
    ]);
    expect(strict.every((d) => d.severity === 'error')).toBe(true);
  });

  it('treats a column as classified while the loader does not record phiExplicit yet', () => {
    const { project, manifest } = compileDir(fixtureDir('strict-unclassified'));
    for (const s of project.sources) for (const c of s.columns) delete (c as { phiExplicit?: boolean }).phiExplicit;
    expect(brief(strictChecks(project, manifest))).toEqual([
      { code: Codes.strictUnclassifiedColumn, file: yml, line: lineOf(dir, yml, 'name: notes') },
    ]);
  });
});

describe('strict check 2: every research-layer model and column is described (TSF217)', () => {
  const { dir, strict } = strictOn('strict-undescribed');
  const yml = 'models/properties.yml';

  it('flags the missing yml entry, model description and column descriptions, pseudonymized or in the research schema', () => {
    expect(brief(strict)).toEqual([
      // published (schema research, global): described model, one undescribed column
      { code: Codes.strictUndescribed, file: yml, line: lineOf(dir, yml, 'name: visits, phi: none') },
      // pseudonymized without any yml entry: the .sql file
      { code: Codes.strictUndescribed, file: 'models/research/res_undocumented.sql', line: 1 },
      // pseudonymized with a yml entry but no description, and one undescribed column
      { code: Codes.strictUndescribed, file: yml, line: lineOf(dir, yml, '- name: res_visits') },
      { code: Codes.strictUndescribed, file: yml, line: lineOf(dir, yml, 'name: patient_token') },
    ]);
    expect(Codes.strictUndescribed).toBe('TSF217');
  });

  it('names the model or column; staging models need no description', () => {
    expect(strict.map((d) => d.message)).toEqual([
      expect.stringContaining("'pub_visit_counts.visits'"),
      expect.stringContaining("'res_undocumented' has no yml entry"),
      expect.stringContaining("'res_visits' has no description"),
      expect.stringContaining("'res_visits.patient_token'"),
    ]);
    expect(strict.some((d) => d.message.includes('stg_visits'))).toBe(false);
  });
});

describe('strict check 3: every tenant-scoped model carries the tenant column (TSF218)', () => {
  const { dir, project, manifest, strict: ymlHalf } = strictOn('strict-tenant-column');
  // The SQL half reads the parsed output columns (security/strict-columns.ts).
  const strict = [...ymlHalf, ...strictColumnChecks(project, manifest).filter((d) => d.code === Codes.strictNoTenantColumn)];

  it('flags a yml column list without it, and a final select list without it (not ephemeral, shared or `*` models)', () => {
    expect(brief(strict)).toEqual([
      { code: Codes.strictNoTenantColumn, file: 'models/properties.yml', line: lineOf(dir, 'models/properties.yml', '- name: visits_by_patient') },
      // At the final select list (line 1 before issue 15 item 7).
      { code: Codes.strictNoTenantColumn, file: 'models/visits_per_day.sql', line: 5 },
      { code: Codes.strictNoTenantColumn, file: 'models/visits_renamed.sql', line: 2 },
    ]);
    expect(Codes.strictNoTenantColumn).toBe('TSF218');
  });

  it('names the model and the tenant column', () => {
    expect(strict.map((d) => d.message)).toEqual([
      "tenant-scoped model 'visits_by_patient' does not list the tenant column 'practice_id' among its yml columns",
      "tenant-scoped model 'visits_per_day' does not select the tenant column 'practice_id' in its final select list",
      "tenant-scoped model 'visits_renamed' does not select the tenant column 'practice_id' in its final select list",
    ]);
  });
});

describe('selectsColumn: the final-select-list heuristic of check 3', () => {
  const cases: [string, boolean][] = [
    ['select practice_id, b from x', true],
    ['SELECT t.practice_id, count(*) FROM x t', true],
    ['select "practice_id" from x', true],
    ['select coalesce(a.practice_id, b.practice_id) as practice_id from a join b using (k)', true],
    ['select p.pid practice_id from p', true],
    ['select distinct practice_id, b from x', true],
    ['select * from x', true],
    ['select e.*, 1 as one from x e', true],
    ['with a as (select b from t) select practice_id from a', true],
    ['select a, b from x', false],
    ['select x.practice_id as pid from x', false],
    ['select count(*) from x', false],
    ['select coalesce(practice_id, 0) from x', false],
    ['select * exclude (practice_id) from x', false],
    ['with a as (select practice_id from t) select b from a', false],
    ['select distinct on (practice_id) b from x', false],
    ["select 'practice_id' as label from x", false],
    ['select b -- practice_id\nfrom x', false],
    ['select b /* practice_id */ from x where practice_id = any($1)', false],
    ['select b from x union all select practice_id from y', false],
    ['select case when a then practice_id end from x', false],
  ];
  it.each(cases)('%s → %s', (sql, expected) => {
    expect(selectsColumn(sql, 'practice_id')).toBe(expected);
  });

  it('is used on the compiled SQL: the tenant filter CTEs ref() adds do not count', () => {
    const { manifest } = compileDir(fixtureDir('strict-tenant-column'));
    expect(manifest.models.visits_per_day!.compiled_sql).toMatch(/"practice_id" = ANY\(\$1/);
    expect(selectsColumn(manifest.models.visits_per_day!.compiled_sql!, 'practice_id')).toBe(false);
    expect(selectsColumn(manifest.models.visits_all!.compiled_sql!, 'practice_id')).toBe(true);
  });
});

describe('strict check 4: every test refers to an existing column (TSF219, security/strict-columns.ts)', () => {
  const { dir, project, manifest } = strictOn('strict-test-column');
  const strict = strictColumnChecks(project, manifest).filter((d) => d.code === Codes.strictUnknownTestColumn);

  it("flags a relationships test whose field the target does not output (or, for a source, its yml does not list), on models and on sources", () => {
    expect(brief(strict)).toEqual([
      { code: Codes.strictUnknownTestColumn, file: 'models/properties.yml', line: lineOf(dir, 'models/properties.yml', 'field: patient_key') },
      { code: Codes.strictUnknownTestColumn, file: 'models/properties.yml', line: lineOf(dir, 'models/properties.yml', 'field: person_id') },
      { code: Codes.strictUnknownTestColumn, file: 'models/sources.yml', line: lineOf(dir, 'models/sources.yml', 'field: visit_key') },
    ]);
    expect(Codes.strictUnknownTestColumn).toBe('TSF219');
  });

  it('names the test column and the missing target column; a target whose columns are unknown (select * from a source, no yml columns) is not checked', () => {
    expect(strict[0]!.message).toContain("'stg_visits.patient_id' refers to 'stg_patients.patient_key'");
    expect(strict[1]!.message).toContain("'source:ehr.patients.person_id'");
    expect(strict[2]!.message).toContain("'stg_visits.visit_key'");
    expect(strict.some((d) => d.message.includes('stg_visits_raw'))).toBe(false);
  });
});

describe('strict check 5: no unused macro (TSF220)', () => {
  const { strict } = strictOn('strict-unused-macro');

  it('flags macros no model, singular test or used macro calls, at line 1 of the .hbs', () => {
    // month_of (model) → trunc_to (macro of a used macro); in_future (singular test): used.
    // orphan_wrapper → zero_pad: a macro used only by an unused macro is unused too.
    expect(brief(strict)).toEqual([
      { code: Codes.strictUnusedMacro, file: 'macros/orphan_wrapper.hbs', line: 1 },
      { code: Codes.strictUnusedMacro, file: 'macros/shout.hbs', line: 1 },
      { code: Codes.strictUnusedMacro, file: 'macros/zero_pad.hbs', line: 1 },
    ]);
    expect(strict[1]!.message).toContain("macro 'shout' is not used");
    expect(Codes.strictUnusedMacro).toBe('TSF220');
  });
});

describe('the demo project under --strict', () => {
  const { project, manifest, diagnostics } = compileDir(REPO_ROOT);

  it('compiles cleanly', () => {
    expect(brief(diagnostics)).toEqual([]);
  });

  it('classifies every source column explicitly (no TSF216)', () => {
    const unclassified = project.sources.flatMap((s) =>
      s.columns.filter((c) => (c as { phiExplicit?: boolean }).phiExplicit === false).map((c) => `${s.source}.${s.name}.${c.name}`),
    );
    expect(unclassified).toEqual([]);
    expect(strictChecks(project, manifest).filter((d) => d.code === Codes.strictUnclassifiedColumn)).toEqual([]);
  });

  it('passes every strict check, the column checks included (every model column classified and output)', () => {
    expect(brief(strictChecks(project, manifest))).toEqual([]);
    expect(strictColumnChecks(project, manifest).map((d) => `${d.code} ${d.file}:${d.line} ${d.message}`)).toEqual([]);
  });

  it('does not change its inputs', () => {
    const before = JSON.stringify({ project, manifest });
    strictChecks(project, manifest);
    expect(JSON.stringify({ project, manifest })).toBe(before);
  });
});
