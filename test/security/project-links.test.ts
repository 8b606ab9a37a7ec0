import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { compileDir, removeTempProjects, REPO_ROOT, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * A pull request can commit a symbolic link, and CI runs tsform with the production warehouse's
 * credentials in its environment. What a link outside the project names must never be read:
 * not into diagnostics, the manifest or a model. The "secret" below stands for such a file.
 */
const SECRET = 'hunter2-postgres-password';
const PROJECT = {
  'tsform.yml': 'name: links\n',
  'tenants.yml': 'tenants:\n  - { id: acme, name: Acme, timezone: UTC }\n',
  'models/daily.sql': 'select 1 as n\n',
};

describe('project files that are symbolic links', () => {
  let dir: string;
  let elsewhere: string;
  const made: string[] = [];
  beforeEach(() => {
    dir = writeTempProject(PROJECT);
    elsewhere = mkdtempSync(join(tmpdir(), 'tsform-elsewhere-'));
    made.push(elsewhere);
  });
  afterAll(() => {
    removeTempProjects();
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  const outside = (name: string, text: string): string => {
    writeFileSync(join(elsewhere, name), text);
    return join(elsewhere, name);
  };
  const replaceWithLink = (rel: string, target: string) => {
    rmSync(join(dir, rel), { recursive: true, force: true });
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    symlinkSync(target, join(dir, rel));
  };
  const errors = () => compileDir(dir).diagnostics.filter((d) => d.severity === 'error');

  // Each outside file is shaped as the file it replaces, so that reading it would have shown or used its text.
  const cases: [string, string][] = [
    ['tenants.yml', `tenants:\n  - { id: "${SECRET}", name: x, timezone: UTC }\n`],
    ['tsform.yml', `name: ${SECRET}\n`],
    ['models/leak.sql', `select '${SECRET}' as n\n`],
    ['macros/leak.hbs', `'${SECRET}'`],
    ['seeds/leak.csv', `secret\n${SECRET}\n`],
    ['tests/leak.sql', `select '${SECRET}' from {{ref "daily"}}\n`],
    ['policies/policies.yml', `${SECRET}: [\n`],
    ['models/nested/deeper/leak.yml', `models:\n  - name: ${SECRET}\n`],
  ];
  for (const [rel, text] of cases) {
    it(`${rel} linked to a file outside the project is TSF122, and not read`, () => {
      replaceWithLink(rel, outside('f', text));
      const compiled = compileDir(dir);
      expect(compiled.diagnostics.filter((d) => d.code === 'TSF122')).toMatchObject([{ severity: 'error', file: rel }]);
      expect(JSON.stringify(compiled.diagnostics)).not.toContain(SECRET);
      expect(JSON.stringify(compiled.project)).not.toContain(SECRET);
    });
  }

  it('a linked folder (models/ -> elsewhere) is TSF122 and none of its files are read', () => {
    mkdirSync(join(elsewhere, 'm'));
    writeFileSync(join(elsewhere, 'm', 'leak.sql'), `select '${SECRET}' as n\n`);
    replaceWithLink('models', join(elsewhere, 'm'));
    const compiled = compileDir(dir);
    expect(errors()).toMatchObject([{ code: 'TSF122', file: 'models' }]);
    expect(compiled.project.models).toEqual([]);
  });

  it('a folder linked outside below models/ is TSF122, and none of its files are read (Node 22 follows such links when it lists recursively)', () => {
    mkdirSync(join(elsewhere, 'm'));
    writeFileSync(join(elsewhere, 'm', 'leak.sql'), `select '${SECRET}' as n\n`);
    writeFileSync(join(elsewhere, 'm', 'leak.yml'), `models:\n  - name: ${SECRET}\n`);
    mkdirSync(join(dir, 'models/nested'));
    symlinkSync(join(elsewhere, 'm'), join(dir, 'models/nested/ext'));
    const compiled = compileDir(dir);
    expect(errors()).toMatchObject([{ code: 'TSF122', file: 'models/nested/ext' }]);
    expect(compiled.project.models.map((m) => m.name)).toEqual(['daily']);
    expect(JSON.stringify(compiled.project)).not.toContain(SECRET);
  });

  it('a relative link that climbs out (models/x.sql -> ../../elsewhere) is TSF122 too', () => {
    const target = outside('x.sql', `select '${SECRET}' as n\n`);
    symlinkSync(relative(join(dir, 'models'), target), join(dir, 'models/x.sql'));
    expect(errors()).toMatchObject([{ code: 'TSF122', file: 'models/x.sql' }]);
  });

  it('the CLI prints the refusal, never the linked text, and exits non-zero', () => {
    replaceWithLink('tenants.yml', outside('t.yml', `tenants:\n  - { id: "${SECRET}", name: x, timezone: UTC }\n`));
    const cli = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/tsform.mjs'), 'compile', '--project-dir', dir], { encoding: 'utf8' });
    expect(cli.status).not.toBe(0);
    expect(cli.stdout + cli.stderr).toContain('tenants.yml: error TSF122');
    expect(cli.stdout + cli.stderr).not.toContain(SECRET);
  });

  it('links that stay inside the project are followed: a file, tsform.yml itself; a folder link is a warning', () => {
    mkdirSync(join(dir, 'common'));
    writeFileSync(join(dir, 'common', 'weekly.sql'), 'select 2 as n\n');
    symlinkSync('../common/weekly.sql', join(dir, 'models/weekly.sql'));
    renameSync(join(dir, 'tsform.yml'), join(dir, 'common', 'tsform.yml'));
    symlinkSync('common/tsform.yml', join(dir, 'tsform.yml'));
    symlinkSync('../common', join(dir, 'models/common_folder'));
    symlinkSync('missing.sql', join(dir, 'models/dangling.sql'));
    const compiled = compileDir(dir);
    expect(errors()).toEqual([]);
    expect(compiled.project.config.name).toBe('links');
    expect(compiled.project.models.map((m) => m.name).sort()).toEqual(['daily', 'weekly']);
    expect(compiled.diagnostics.filter((d) => d.code === 'TSF122').sort((a, b) => a.file!.localeCompare(b.file!))).toMatchObject([
      { severity: 'warning', file: 'models/common_folder' },
      { severity: 'warning', file: 'models/dangling.sql' },
    ]);
  });
});
