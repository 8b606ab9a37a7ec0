import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { brief, MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

/**
 * Red-team: `mart:` for `marts:` under tsform.yml `models:` matched no folder, and the marts took
 * the project's defaults (schema, scope, pseudonymized) without a word. A folder key that holds
 * no model is TSF117 at its line, with the closest folder that does.
 */
describe('folder keys under tsform.yml models:', () => {
  const models = {
    ...MINIMAL_PROJECT,
    'models/staging/stg_visits.sql': 'select 1 as practice_id\n',
    'models/marts/finance/revenue.sql': 'select 1 as practice_id\n',
  };

  it('a folder with no model is TSF117 at its key, with did-you-mean', () => {
    const d = writeTempProject({ ...models, 'tsform.yml': 'name: g\nmodels:\n  staging:\n    schema: staging\n  mart:\n    schema: marts\n' });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics)).toEqual([{ code: Codes.unknownKey, file: 'tsform.yml', line: 5 }]);
    expect(diagnostics[0]!.message).toBe("models: folder 'mart' holds no model under models/ (did you mean 'marts'?); its defaults would apply to nothing");
  });

  it('a nested folder is checked as a path, at its own key', () => {
    const d = writeTempProject({ ...models, 'tsform.yml': 'name: g\nmodels:\n  marts:\n    schema: marts\n    finanse:\n      tags: [finance]\n' });
    const diagnostics = loadProject(d).diagnostics;
    expect(brief(diagnostics)).toEqual([{ code: Codes.unknownKey, file: 'tsform.yml', line: 5 }]);
    expect(diagnostics[0]!.message).toContain("folder 'marts/finanse' holds no model under models/ (did you mean 'marts/finance'?)");
  });

  it('folders holding models directly or below, and settings for every model, are taken', () => {
    const d = writeTempProject({
      ...models,
      'tsform.yml': 'name: g\nmodels:\n  materialized: view\n  staging:\n    schema: staging\n  marts:\n    schema: marts\n    finance:\n      tags: [finance]\n',
    });
    const project = loadProject(d);
    expect(project.diagnostics).toEqual([]);
    expect(project.config.folders.map((f) => f.path).sort()).toEqual(['', 'marts', 'marts/finance', 'staging']);
  });
});
