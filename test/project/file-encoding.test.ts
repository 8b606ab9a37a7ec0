import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Codes } from '../../src/errors.ts';
import { loadProject } from '../../src/project/load-project.ts';
import { MINIMAL_PROJECT, removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * Red-team, 2026-12-07 (an analyst's first hour): a model saved as Latin-1 compiled in silence
 * with U+FFFD in place of its bytes (`where visit_type = 'caf\xe9'` matched nothing). A project
 * file that is not UTF-8 is now an error at the first line holding such bytes.
 */
afterAll(removeTempProjects);

describe('project files that are not UTF-8', () => {
  it.each([
    ['models/m.sql', Codes.templateSyntax],
    ['macros/mac.hbs', Codes.templateSyntax],
    ['tests/t.sql', Codes.templateSyntax],
    ['seeds/s.csv', Codes.raggedCsv],
  ])('%s in Latin-1 is an error at the line of the first such byte', (file, code) => {
    const dir = writeTempProject({ ...MINIMAL_PROJECT, 'models/base.sql': 'select 1 as practice_id\n' });
    const latin1 = file.endsWith('.csv') ? Buffer.from('code,label\nAMB,caf\xe9\n', 'latin1') : Buffer.from("select 1 as practice_id\n-- two\nwhere x = 'caf\xe9'\n", 'latin1');
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), latin1);
    const found = loadProject(dir).diagnostics.filter((d) => d.message.includes('not UTF-8'));
    expect(found).toEqual([expect.objectContaining({ code, file, line: file.endsWith('.csv') ? 2 : 3, severity: 'error' })]);
  });

  it('UTF-8 text, with a BOM or accents, is read as it is', () => {
    const dir = writeTempProject({ ...MINIMAL_PROJECT, 'models/m.sql': "\ufeffselect 1 as practice_id, 'café' as v\n" });
    expect(loadProject(dir).diagnostics.filter((d) => d.message.includes('not UTF-8'))).toEqual([]);
  });
});
