import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { plainTypeName } from '../../src/project/type-names.ts';
import { brief, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

/**
 * Red-team: `BOOLEANN` in a seed's column_types or `INTEGR` as a source column's data_type passed
 * compile --strict and failed at run time with the engine's error, truncated and without the yml
 * line. Both are now TSF205 at their line, with the closest type name both engines read.
 */
describe('type names in yml', () => {
  it("a seed's column_types entry of an unknown type is TSF205 at its line, with did-you-mean", () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'seeds/visit_types.csv': 'visit_type,is_telehealth\noffice,false\n',
      'models/seeds.yml': 'seeds:\n  - name: visit_types\n    column_types:\n      visit_type: VARCHAR\n      is_telehealth: BOOLEANN\n',
    });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics)).toEqual([{ code: Codes.invalidConfig, file: 'models/seeds.yml', line: 5 }]);
    expect(diagnostics[0]!.message).toContain("seed 'visit_types': column_types 'is_telehealth': unknown type 'BOOLEANN' (did you mean 'BOOLEAN'?)");
  });

  it("a source column's data_type of an unknown type is TSF205 at its line", () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/sources.yml': 'sources:\n  - name: clinic\n    tables:\n      - name: daily_visits\n        columns:\n          - { name: clinic_day, data_type: DATE }\n          - { name: visits, data_type: INTEGR }\n',
    });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics)).toEqual([{ code: Codes.invalidConfig, file: 'models/sources.yml', line: 7 }]);
    expect(diagnostics[0]!.message).toContain("clinic.daily_visits.visits: data_type: unknown type 'INTEGR' (did you mean 'INTEGER'?)");
  });

  it("a model column's data_type documents only and is not checked", () => {
    const d = writeTempProject({
      ...MINIMAL_PROJECT,
      'models/m.sql': 'select 1 as a\n',
      'models/m.yml': 'models:\n  - name: m\n    columns:\n      - { name: a, data_type: STRUCT(x INT) }\n',
    });
    expect(loadProject(d).diagnostics).toEqual([]);
  });

  it.each(['BIGINT', 'integer', 'DOUBLE PRECISION', 'numeric(10, 2)', 'DECIMAL(18,4)', 'varchar(20)', 'TEXT[]', 'timestamp with time zone', 'TIMESTAMPTZ', 'DATE', 'BOOLEAN', 'UUID', 'JSON'])(
    '%s is read by both engines',
    (t) => expect(plainTypeName(t)).toHaveProperty('type'),
  );

  it.each([
    ['DOUBLE', 'write DOUBLE PRECISION'],
    ['JSONB', 'write JSON'],
    ['HUGEINT', 'write NUMERIC(38,0)'],
    ['INTEGER(3)', 'takes no length'],
    ['VARCHAR(3,2)', 'takes one number'],
    ['int); drop table x; --', 'is not a plain SQL type name'],
  ])('%s is refused: %s', (t, why) => {
    const r = plainTypeName(t);
    expect('problem' in r && r.problem).toContain(why);
  });
});
