import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../src/cli/program.ts';
import { Codes } from '../../src/errors.ts';
import { MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * Issue 15 item 4, through the command a CI job runs (`tsform compile [--strict] --format json`),
 * so that every case here also fails on a tsform without the checks: each asserts a diagnostic
 * that was never reported before, with its code, file and line.
 */

interface Found {
  file: string | null;
  line: number | null;
  code: string;
  severity: string;
  message: string;
}

beforeEach(() => {
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());
afterAll(() => removeTempProjects());

async function compile(dir: string, ...flags: string[]): Promise<{ code: number; found: Found[] }> {
  const out: string[] = [];
  const code = await runCli(['node', 'tsform', 'compile', '--project-dir', dir, '--format', 'json', ...flags], (l) => out.push(l));
  const json = out.find((l) => l.startsWith('['));
  return { code, found: json ? (JSON.parse(json) as Found[]) : [] };
}

/** 1-based line of the only line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`'${needle}' found ${hits.length} times`);
  return hits[0]!;
}

const where = (f: Found[], code: string) => f.filter((d) => d.code === code).map((d) => `${d.file}:${d.line}`);

// ---------------------------------------------------------------------------------------------

const TYPO_YML = `models:
  - name: visits
    description: One row per visit.
    meta: { owner: analytics, anything: [goes, here] }
    colums:
      - { name: practice_id, phi: none, tests: [not_null] }
      - { name: patient_id, phi: direct }
  - name: visit_days
    columns:
      - { name: practice_id, phi: none, meta: { free: form }, tests: [not_nul] }
      - name: patient_id
        phi: direct
        tests:
          - relationships: { to: visits, feild: patient_id }
seeds:
  - name: visit_types
    column_types:
      lable: VARCHAR
`;

describe('yml keys are checked against a schema, with or without --strict (TSF117)', () => {
  const dir = writeTempProject({
    ...MINIMAL_PROJECT,
    'tsform.yml': 'name: typos\ntenant_colum: practice_id\nmodels:\n  staging:\n    materialised: table\n',
    'tenants.yml': 'tenants:\n  - { id: acme, name: Acme Clinic, timezone: UTC, tag: [large] }\n',
    'models/visits.sql': 'select 1 as practice_id, 2 as patient_id\n',
    'models/visit_days.sql': 'select practice_id, patient_id from {{ref "visits"}}\n',
    'models/properties.yml': TYPO_YML,
    'seeds/visit_types.csv': 'code,label\nAMB,Ambulatory\n',
    'policies/policies.yml': 'protects:\n  schemas: [raw, staging, marts]\n',
  });

  it('`colums:` is an error at its line with "did you mean", not a model with no columns and no tests', async () => {
    const { code, found } = await compile(dir);
    expect(code).toBe(2);
    const colums = found.find((d) => d.message.includes("'colums'"));
    expect(colums).toMatchObject({ code: 'TSF117', file: 'models/properties.yml', line: lineOf(TYPO_YML, 'colums:'), severity: 'error' });
    expect(colums!.message).toBe("model 'visits': unknown key 'colums' (did you mean 'columns'?)");
  });

  it('a typo in a test argument, a seed column type, tsform.yml, tenants.yml and policies.yml are errors too; meta: is free-form', async () => {
    const { found } = await compile(dir);
    const yml = (needle: string) => `models/properties.yml:${lineOf(TYPO_YML, needle)}`;
    expect(where(found, Codes.unknownKey)).toEqual(['tsform.yml:2', 'tsform.yml:5', 'tenants.yml:2', yml('colums:'), yml('feild:'), yml('lable:'), 'policies/policies.yml:1']);
    expect(found.map((d) => d.message)).toContain("policies.yml: unknown key 'protects' (did you mean 'protect'?)");
    expect(found.map((d) => d.message)).toContain("tenant 'acme': unknown key 'tag' (did you mean 'tags'?)");
    expect(found.map((d) => d.message)).toContain("seed 'visit_types': column_types names 'lable', which is not a column of seeds/visit_types.csv (did you mean 'label'?)");
    expect(found.map((d) => d.message)).toContain("tsform.yml: unknown key 'tenant_colum' (did you mean 'tenant_column'?)");
    expect(found.some((d) => d.message.includes("unknown model setting 'materialised' (did you mean 'materialized'?)"))).toBe(true);
    expect(found.some((d) => d.message.includes("unknown test 'not_nul' on column 'practice_id' (did you mean 'not_null'?)"))).toBe(true);
    expect(found.some((d) => d.message.includes("'feild' (did you mean 'field'?)"))).toBe(true);
    expect(found.some((d) => /meta|owner|free/.test(d.message))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

const SOURCES_YML = `sources:
  - name: ehr
    tables:
      - name: patients
        columns:
          - { name: practice_id, phi: none }
          - { name: patient_id, phi: direct }
          - { name: birth_date, phi: quasi }
      - name: visits
        columns:
          - { name: practice_id, phi: none }
          - { name: visit_id, phi: none }
          - { name: patient_id, phi: direct }
`;

const PROPERTIES_YML = `models:
  - name: stg_patients
    columns:
      - { name: practice_id, phi: none }
      - { name: patient_id, phi: direct }
      - { name: birth_date }
  - name: stg_visits
    columns:
      - { name: practice_id, phi: none }
      - { name: visit_id, phi: none }
      - name: patient_id
        phi: direct
        tests:
          - relationships: { to: stg_patients, field: patient_id }
          - relationships: { to: visits_per_patient, field: patient_key }
          - relationships: { to: visit_types, field: visit_type }
      - { name: visit_type, phi: none }
      - { name: patient_name, phi: direct }
  - name: raw_visits
    columns:
      - { name: practice_id, phi: none }
      - { name: visit_id, phi: none }
      - { name: patient_id, phi: direct }
      - { name: visited_on, phi: quasi }
`;

function columnsProject(): string {
  return writeTempProject({
    ...MINIMAL_PROJECT,
    'tsform.yml': 'name: strict_columns\n',
    'seeds/visit_types.csv': 'code,label\nAMB,Ambulatory\n',
    'models/sources.yml': SOURCES_YML,
    'models/properties.yml': PROPERTIES_YML,
    'models/stg_patients.sql': 'select practice_id, patient_id, birth_date from {{source "ehr" "patients"}}\n',
    'models/stg_visits.sql': "select practice_id, visit_id, patient_id, 'AMB' as visit_type, 1 as visit_count from {{source \"ehr\" \"visits\"}}\n",
    'models/visits_per_patient.sql': 'select practice_id, patient_id, count(*) as visits from {{ref "stg_visits"}} group by 1, 2\n',
    'models/raw_visits.sql': 'select * from {{source "ehr" "visits"}}\n',
  });
}

describe('--strict: every model column is classified and every yml column exists (TSF216, TSF224, TSF219)', () => {
  const yml = 'models/properties.yml';
  const at = (needle: string) => `${yml}:${lineOf(PROPERTIES_YML, needle)}`;
  const dir = columnsProject();

  it('compiles without --strict (these are contracts for CI, not compile errors)', async () => {
    expect((await compile(dir)).code).toBe(0);
  });

  it('a model without a yml entry, a column without phi:, and an output column the yml does not list are TSF216', async () => {
    const { code, found } = await compile(dir, '--strict');
    expect(code).toBe(2);
    expect(where(found, Codes.strictUnclassifiedColumn)).toEqual([
      at('{ name: birth_date }'),
      at('- name: stg_visits'),
      'models/visits_per_patient.sql:1',
    ]);
    const messages = found.filter((d) => d.code === Codes.strictUnclassifiedColumn).map((d) => d.message);
    expect(messages).toEqual([
      "model column 'stg_patients.birth_date' has no phi class: say phi: direct, quasi or none",
      "model 'stg_visits' outputs column 'visit_count', which its yml does not list: add it with its phi class (direct, quasi or none)",
      "model 'visits_per_patient' has no yml entry: list its columns with their phi class (direct, quasi or none) in a models/**/*.yml",
    ]);
  });

  it('a failed --strict in text ends with its error count, not the success line (red-team, 2026-12-07)', async () => {
    const { cli } = await import('../support/cli.ts');
    const r = await cli('compile', '--project-dir', dir, '--strict');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/compile --strict: \d+ error\(s\)/);
    expect(r.out.join('\n')).not.toContain('compiled ');
  });

  it('a yml column the SQL does not output is TSF224 at its yml line', async () => {
    const { found } = await compile(dir, '--strict');
    expect(where(found, Codes.strictColumnNotOutput)).toEqual([at('name: patient_name')]);
    expect(found.find((d) => d.code === Codes.strictColumnNotOutput)!.message).toBe(
      "yml column 'stg_visits.patient_name' is not an output column of the model's SQL: remove it or fix its name",
    );
  });

  it("a relationships field that a model without yml columns, or a seed, does not have is TSF219 at the test's line", async () => {
    const { found } = await compile(dir, '--strict');
    expect(where(found, Codes.strictUnknownTestColumn)).toEqual([at('field: patient_key'), at('field: visit_type }')]);
    const [toModel, toSeed] = found.filter((d) => d.code === Codes.strictUnknownTestColumn).map((d) => d.message);
    expect(toModel).toContain("refers to 'visits_per_patient.patient_key', but 'visits_per_patient' outputs no column 'patient_key' (it outputs 'practice_id', 'patient_id', 'visits')");
    expect(toSeed).toContain("'visit_types' has no column 'visit_type' (it has 'code', 'label')");
  });

  it('select * from a source cannot be checked from the SQL: a TSF225 notice names the model, and its yml is not judged', async () => {
    const { found } = await compile(dir, '--strict');
    const notices = found.filter((d) => d.code === Codes.strictColumnsUnknown);
    expect(notices.map((d) => [d.file, d.line, d.severity])).toEqual([['models/raw_visits.sql', 1, 'warning']]);
    expect(notices[0]!.message).toContain("cannot derive the output columns of 'raw_visits'");
    expect(notices[0]!.message).toContain('--target');
    expect(found.some((d) => d.severity === 'error' && d.message.includes('raw_visits'))).toBe(false);
  });
});

describe('--strict: the tenant column is checked on the parsed output columns (TSF218)', () => {
  it('`select *` over a subquery that drops practice_id no longer passes as "* carries it"', async () => {
    const dir = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': SOURCES_YML,
      'models/properties.yml': 'models:\n  - name: visit_ids\n    columns:\n      - { name: practice_id, phi: none }\n      - { name: visit_id, phi: none }\n',
      'models/visit_ids.sql': 'select * from (select visit_id from {{source "ehr" "visits"}}) s\n',
    });
    const { found } = await compile(dir, '--strict');
    expect(found.filter((d) => d.code === Codes.strictNoTenantColumn).map((d) => [d.file, d.line, d.message])).toEqual([
      ['models/visit_ids.sql', 1, "tenant-scoped model 'visit_ids' does not select the tenant column 'practice_id' in its final select list"],
    ]);
    expect(where(found, Codes.strictColumnNotOutput)).toEqual(['models/properties.yml:4']);
  });
});

describe('--strict --target: DESCRIBE on a built target where the SQL cannot tell', () => {
  it('checks raw_visits against the columns of the built relation, and says so', async () => {
    const dir = columnsProject();
    mkdirSync(join(dir, 'target'), { recursive: true });
    const db = await DuckDBInstance.create(join(dir, 'target/tsform.duckdb'));
    const conn = await db.connect();
    await conn.run('create schema marts; create table marts.raw_visits (practice_id varchar, visit_id varchar, patient_id varchar, ward varchar)');
    conn.closeSync();
    db.closeSync();

    const { found } = await compile(dir, '--strict', '--target', 'duckdb');
    const about = found.filter((d) => d.message.includes('raw_visits'));
    expect(about.map((d) => [d.code, d.file, d.line, d.severity])).toEqual([
      [Codes.strictColumnsUnknown, 'models/raw_visits.sql', 1, 'warning'],
      [Codes.strictUnclassifiedColumn, 'models/properties.yml', lineOf(PROPERTIES_YML, '- name: raw_visits'), 'error'],
      [Codes.strictColumnNotOutput, 'models/properties.yml', lineOf(PROPERTIES_YML, 'name: visited_on'), 'error'],
    ]);
    expect(about[0]!.message).toBe("output columns of 'raw_visits' taken from DESCRIBE on target 'duckdb' (its SQL does not tell them)");
    expect(about[1]!.message).toContain("outputs column 'ward'");
    expect(about[2]!.message).toContain("(DESCRIBE on target 'duckdb')");
  });

  it('without a built database the notice says so, and compile creates no database file', async () => {
    const dir = columnsProject();
    const { found } = await compile(dir, '--strict', '--target', 'duckdb');
    expect(found.filter((d) => d.code === Codes.strictColumnsUnknown).map((d) => d.message)).toEqual([
      expect.stringContaining("target 'duckdb' has no database yet"),
      expect.stringContaining("cannot derive the output columns of 'raw_visits'"),
    ]);
    expect(existsSync(join(dir, 'target/tsform.duckdb'))).toBe(false);
  });
});

describe('--strict: an incremental high-water mark correlated per row (TSF226)', () => {
  const model = (filter: string) => `{{config materialized="incremental" unique_key="visit_id" batch_incremental=true}}
select v.practice_id, v.visit_id
from {{source "ehr" "visits"}} v
{{#if is_incremental}}
${filter}
{{/if}}
`;
  const props = 'models:\n  - name: visits_inc\n    columns:\n      - { name: practice_id, phi: none }\n      - { name: visit_id, phi: none }\n';

  it('is a notice at the line of the sub-select, naming the model and the form to use', async () => {
    const sql = model('where v.visit_id > (select max(t.visit_id) from {{this}} t where t.practice_id = v.practice_id)');
    const dir = writeTempProject({ ...MINIMAL_PROJECT, 'models/sources.yml': SOURCES_YML, 'models/properties.yml': props, 'models/visits_inc.sql': sql });
    const { code, found } = await compile(dir, '--strict');
    const notices = found.filter((d) => d.code === Codes.strictCorrelatedThis);
    expect(notices.map((d) => [d.file, d.line, d.severity])).toEqual([['models/visits_inc.sql', lineOf(sql, 'select max'), 'warning']]);
    expect(notices[0]!.message).toContain("incremental model 'visits_inc'");
    expect(notices[0]!.message).toContain('group by practice_id');
    expect(code).toBe(0);
  });

  it('is not raised for the mark aggregated per practice and joined', async () => {
    const sql = model('left join (select t.practice_id, max(t.visit_id) as hw from {{this}} t group by t.practice_id) h on h.practice_id = v.practice_id\nwhere v.visit_id > coalesce(h.hw, \'\')');
    const dir = writeTempProject({ ...MINIMAL_PROJECT, 'models/sources.yml': SOURCES_YML, 'models/properties.yml': props, 'models/visits_inc.sql': sql });
    const { found } = await compile(dir, '--strict');
    expect(found.filter((d) => d.code === Codes.strictCorrelatedThis)).toEqual([]);
  });
});
