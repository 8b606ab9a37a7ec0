import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { brief, compileDir, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

/**
 * Red-team: a model described by two yml entries compiled (with --strict too); the manifest kept
 * the last entry's columns, so the first entry's PHI classes vanished, while the strict checks
 * read the first and the class gate both. Each properties entry is now one of a kind.
 */
describe('a model, seed or source table described twice', () => {
  const files = {
    ...MINIMAL_PROJECT,
    'models/staging/stg_visits.sql': 'select 1 as practice_id, 2 as patient_ssn\n',
    'models/staging/_staging.yml': 'models:\n  - name: stg_visits\n    columns:\n      - { name: patient_ssn, phi: direct }\n',
  };

  it('a second model entry in another yml is TSF104 at its line, naming the first', () => {
    const d = writeTempProject({ ...files, 'models/zz.yml': '# more\nmodels:\n  - name: stg_visits\n    description: again\n' });
    const { diagnostics } = compileDir(d);
    expect(brief(diagnostics.filter((x) => x.code === Codes.duplicateModel))).toEqual([{ code: Codes.duplicateModel, file: 'models/zz.yml', line: 3 }]);
    expect(diagnostics.find((x) => x.code === Codes.duplicateModel)!.message).toBe(
      "model 'stg_visits' is described twice in yml (first at models/staging/_staging.yml:2); keep one entry",
    );
    expect(diagnostics.some((x) => x.severity === 'error')).toBe(true);
  });

  it('a second entry in the same yml is TSF104 too; the first entry is the one kept', () => {
    const d = writeTempProject({ ...files, 'models/staging/_staging.yml': `${files['models/staging/_staging.yml']}  - name: stg_visits\n    description: again\n` });
    const project = loadProject(d);
    expect(brief(project.diagnostics)).toEqual([{ code: Codes.duplicateModel, file: 'models/staging/_staging.yml', line: 5 }]);
    expect(project.properties.map((p) => p.columns.map((c) => [c.name, c.phi]))).toEqual([[['patient_ssn', 'direct']]]);
  });

  it('a seed described twice is TSF104 at the second entry', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'seeds/visit_types.csv': 'visit_type,is_telehealth\noffice,false\n',
      'models/seeds.yml': 'seeds:\n  - name: visit_types\n    column_types: { is_telehealth: BOOLEAN }\n',
      'models/seeds2.yml': 'seeds:\n  - name: visit_types\n    column_types: { is_telehealth: VARCHAR }\n',
    });
    const project = loadProject(d);
    expect(brief(project.diagnostics)).toEqual([{ code: Codes.duplicateModel, file: 'models/seeds2.yml', line: 2 }]);
    expect(project.diagnostics[0]!.message).toContain('(first at models/seeds.yml:2)');
    expect(project.seeds[0]!.columnTypes).toEqual({ is_telehealth: 'BOOLEAN' });
  });

  it('a source table declared twice names the first file and line', () => {
    const src = 'sources:\n  - name: clinic\n    tables:\n      - name: visits\n';
    const d = writeTempProject({ ...MINIMAL_PROJECT, 'models/a.yml': src, 'models/b.yml': `\n${src}` });
    const project = loadProject(d);
    expect(brief(project.diagnostics)).toEqual([{ code: Codes.duplicateSource, file: 'models/b.yml', line: 5 }]);
    expect(project.diagnostics[0]!.message).toContain('(first at models/a.yml:4)');
  });
});

describe('errors about a refused file stand alone', () => {
  it('a model named like a seed is TSF104, without a false "no seeds/<name>.csv" for its properties', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/marts/visit_types.sql': 'select 1 as practice_id\n',
      'seeds/visit_types.csv': 'visit_type,is_telehealth\noffice,false\n',
      'models/seeds.yml': 'seeds:\n  - name: visit_types\n    column_types: { is_telehealth: BOOLEAN }\n',
    });
    expect(brief(loadProject(d).diagnostics)).toEqual([{ code: Codes.duplicateModel, file: 'seeds/visit_types.csv', line: 1 }]);
  });

  it('a model name starting with a digit says so, and its properties are no orphans', () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/marts/1weekly.sql': 'select 1 as practice_id\n',
      'models/marts/_marts.yml': 'models:\n  - name: 1weekly\n',
    });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics)).toEqual([{ code: Codes.invalidIdentifier, file: 'models/marts/1weekly.sql', line: 1 }]);
    expect(diagnostics[0]!.message).toBe("model name '1weekly' must not start with a digit");
  });
});
