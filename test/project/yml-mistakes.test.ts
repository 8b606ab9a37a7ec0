import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { brief, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

/**
 * Red-team, 2026-12-07: a column listed twice in a model's yml (its second class and tests
 * beside the first's) and dbt's test options (`where:`, `severity:`) under not_null or unique
 * were accepted without a word.
 */
describe('yml mistakes that were accepted silently', () => {
  const model = { 'models/m.sql': 'select 1 as a\n' };

  it('a column listed twice is TSF102 at the second entry', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      ...model,
      'models/m.yml': 'models:\n  - name: m\n    columns:\n      - { name: a, phi: quasi }\n      - { name: A, phi: none }\n',
    });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics)).toEqual([{ code: Codes.yamlShape, file: 'models/m.yml', line: 5 }]);
    expect(diagnostics[0]!.message).toContain("column 'A' is listed twice (first at line 4)");
  });

  it.each([
    ['unique with where and severity', '- unique: { where: "1=1", severity: warn }'],
    ['not_null with config', '- not_null: { config: { severity: warn } }'],
    ['accepted_values with quote', "- accepted_values: { values: ['x'], quote: false }"],
  ])('%s is TSF117, not ignored', (_what, test) => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      ...model,
      'models/m.yml': `models:\n  - name: m\n    columns:\n      - name: a\n        tests:\n          ${test}\n`,
    });
    expect(brief(loadProject(d).diagnostics).map((x) => x.code)).toContain(Codes.unknownKey);
  });

  it('plain tests still load', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      ...model,
      'models/m.yml': "models:\n  - name: m\n    columns:\n      - name: a\n        tests:\n          - unique\n          - not_null:\n          - accepted_values: { values: ['x'] }\n",
    });
    expect(loadProject(d).diagnostics).toEqual([]);
  });
});

describe('seed headers', () => {
  it('columns differing only in case are one column to DuckDB: TSF109 at line 1', async () => {
    const { readSeedCsv } = await import('../../src/project/seed-csv.ts');
    const { problems } = readSeedCsv('Name,name\na,b\n', 'seeds/caseco.csv');
    expect(problems.map((p) => [p.code, p.file, p.line])).toEqual([[Codes.raggedCsv, 'seeds/caseco.csv', 1]]);
    expect(problems[0]!.message).toContain("repeats column 'name'");
    expect(readSeedCsv('name,other\na,b\n', 'seeds/ok.csv').problems).toEqual([]);
  });
});

describe('YAML aliases', () => {
  it.each([
    ['an alias to no anchor', 'models:\n  - *undefined\n'],
    ['an alias to an anchor', 'models:\n  - &m { name: m }\n  - *m\n'],
  ])('%s is TSF101 at its line, not the YAML library\'s fields as unknown keys', (_what, yml) => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'models/m.sql': 'select 1 as a\n', 'models/m.yml': yml });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics).map((x) => x.code)).toContain(Codes.yamlSyntax);
    expect(diagnostics.map((x) => x.message).join('\n')).not.toMatch(/unknown key '(source|range)'/);
  });
});

describe('model files', () => {
  it.each([
    ['CR-only line endings', { 'models/m.sql': 'select 1 as a\r-- note\rfrom x\r' }, Codes.templateSyntax, 'models/m.sql'],
    ['an upper-case .SQL extension', { 'models/m.SQL': 'select 1 as a\n' }, Codes.invalidIdentifier, 'models/m.SQL'],
    ['a name longer than 52 bytes', { [`models/${'m'.repeat(53)}.sql`]: 'select 1 as a\n' }, Codes.invalidIdentifier, `models/${'m'.repeat(53)}.sql`],
  ])('%s: an error at the file, not ignored', (_what, files, code, file) => {
    const d = writeTempProject({ ...MINIMAL_PROJECT, ...files });
    expect(brief(loadProject(d).diagnostics)).toEqual([{ code, file, line: 1 }]);
  });
});
