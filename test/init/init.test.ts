import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { afterAll, describe, expect, it } from 'vitest';
import { compileWorkspace, runWorkspace } from '../../src/cli/api.ts';
import { registerInitCommand } from '../../src/cli/init-command.ts';
import { TsformError } from '../../src/errors.ts';
import { INIT_DIR_NOT_EMPTY, scaffoldProject } from '../../src/init/scaffold-project.ts';
import { INIT_PRACTICES, projectNameFrom } from '../../src/init/project-template.ts';
import { REPO_ROOT } from '../fixtures/project-fixture.ts';
import { runRegistered } from '../docs/cli-harness.ts';

/** `tsform init <dir>`: a new tenant-aware project that compiles and builds at once. */

const base = mkdtempSync(join(tmpdir(), 'tsform-init-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const init = (args: string[]) => runRegistered((program, guard, out) => registerInitCommand(program, guard, out), ['init', ...args]);

describe('tsform init', () => {
  it('scaffolds a project that compiles without a diagnostic and builds every node for every practice', async () => {
    const dir = join(base, 'My Clinic Analytics');
    const run = await init([dir]);
    expect(run.err).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.out.at(-2)).toBe(`initialized project 'my_clinic_analytics' in ${dir}`);
    for (const file of ['tsform.yml', 'tenants.yml', 'models/sources.yml', 'models/marts/_marts.yml', 'policies/policies.yml', 'README.md', 'seeds/visit_types.csv']) {
      expect(existsSync(join(dir, file)), file).toBe(true);
    }

    const ws = compileWorkspace(dir, { write: false });
    expect(ws.diagnostics).toEqual([]);
    expect(ws.manifest.project).toBe('my_clinic_analytics');
    expect(ws.manifest.tenant_column).toBe('practice_id');
    expect(ws.project.tenants.map((t) => t.id)).toEqual(INIT_PRACTICES.map((p) => p.id));
    expect(new Set(ws.project.tenants.map((t) => t.timezone)).size).toBe(3);
    expect(Object.keys(ws.manifest.models).sort()).toEqual(['practice_weekly_visits', 'stg_visits']);
    expect(ws.manifest.models.practice_weekly_visits).toMatchObject({ scope: 'tenant', materialized: 'table', schema: 'marts' });
    expect(Object.values(ws.manifest.models.practice_weekly_visits!.columns).every((c) => c.phi === 'none')).toBe(true);
    expect(Object.values(ws.manifest.tests).filter((t) => t.attached_to === 'practice_weekly_visits').length).toBeGreaterThanOrEqual(3);
    expect(ws.project.singularTests.map((t) => t.name)).toEqual(['assert_visits_not_negative']);
    expect(ws.project.policies?.protectSchemas).toEqual(['raw', 'staging', 'marts']);

    const result = await runWorkspace({ projectDir: dir, command: 'build' });
    expect(result.results.length).toBeGreaterThan(0);
    const notOk = result.results.filter((r) => r.status !== 'success');
    expect(notOk).toEqual([]);
    for (const p of INIT_PRACTICES) expect(result.tenants[p.id]?.status, p.id).toBe('success');
    // Every tenant-scoped node (source, models, their tests) ran for every practice.
    const ids: string[] = INIT_PRACTICES.map((p) => p.id).sort();
    for (const model of ['source:clinic.daily_visits', 'stg_visits', 'practice_weekly_visits']) {
      const built = result.results.filter((r) => r.kind === 'build' && r.model === model).map((r) => r.tenant ?? '');
      expect(built.sort(), model).toEqual(ids);
      const tests = result.results.filter((r) => r.kind === 'test' && r.model === model);
      expect(tests.length, model).toBeGreaterThan(0);
      expect(tests.length % ids.length, model).toBe(0);
    }
    expect(result.results.find((r) => r.kind === 'test' && r.node.startsWith('test:assert_visits_not_negative@'))?.status).toBe('success');
  });

  it('ships synthetic landing data only: practice_id on every row, counts, no identifier', () => {
    const dir = join(base, 'data-check');
    scaffoldProject(dir);
    const rows = parse(readFileSync(join(dir, 'data', 'daily_visits.csv')), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual(['practice_id', 'clinic_day', 'visit_type', 'visits', 'updated_at']);
    const ids = new Set<string>(INIT_PRACTICES.map((p) => p.id));
    expect(rows.every((r) => ids.has(r.practice_id!))).toBe(true);
    expect(new Set(rows.map((r) => r.practice_id)).size).toBe(INIT_PRACTICES.length);
    expect(rows.every((r) => /^\d+$/.test(r.visits!))).toBe(true);
    // Identical on every init: no randomness.
    const again = join(base, 'data-check-2');
    scaffoldProject(again);
    expect(readFileSync(join(again, 'data', 'daily_visits.csv'), 'utf8')).toBe(readFileSync(join(dir, 'data', 'daily_visits.csv'), 'utf8'));
  });

  it('refuses a non-empty directory with exit 2 and a coded error, writing nothing', async () => {
    const dir = join(base, 'occupied');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine\n');
    const run = await init([dir]);
    expect(run.code).toBe(2);
    expect(run.err).toHaveLength(1);
    expect(run.err[0]).toMatch(new RegExp(`^error ${INIT_DIR_NOT_EMPTY}: tsform init: '.*occupied' is not empty \\(notes\\.txt\\); choose a new or empty directory, nothing was written$`));
    expect(readdirSync(dir)).toEqual(['notes.txt']);

    // An existing project is never overwritten either.
    const project = join(base, 'existing');
    scaffoldProject(project);
    const before = readFileSync(join(project, 'tsform.yml'), 'utf8');
    expect(() => scaffoldProject(project)).toThrow(TsformError);
    expect((await init([project])).code).toBe(2);
    expect(readFileSync(join(project, 'tsform.yml'), 'utf8')).toBe(before);
  });

  it('accepts an empty directory or one holding only .git', async () => {
    const empty = join(base, 'empty');
    mkdirSync(empty);
    expect((await init([empty])).code).toBe(0);
    const gitOnly = join(base, 'git-only');
    mkdirSync(join(gitOnly, '.git'), { recursive: true });
    expect((await init([gitOnly, '--name', 'clinic_reports'])).code).toBe(0);
    expect(readFileSync(join(gitOnly, 'tsform.yml'), 'utf8')).toContain('name: clinic_reports');
  });

  it('derives a simple project name from the directory', () => {
    expect(projectNameFrom('My Clinic-Analytics')).toBe('my_clinic_analytics');
    expect(projectNameFrom('2024 reports')).toBe('p_2024_reports');
    expect(projectNameFrom('...')).toBe('analytics');
  });
});

describe('tsform init: a project that uses tsform from another repository', () => {
  it('writes a package.json depending on this checkout (file:), and the printed next step works', async () => {
    const dir = join(base, 'from elsewhere');
    const run = await init([dir]);
    expect(run.code).toBe(0);
    expect(run.out.at(-1)).toBe(`next: cd '${dir}' && npm install && npx tsform build`);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; private: boolean; dependencies: Record<string, string> };
    expect(pkg).toMatchObject({ name: 'from_elsewhere', private: true });
    const spec = pkg.dependencies.tsform!;
    expect(spec).toMatch(/^file:\//);
    // The dependency resolves to this checkout: the package whose bin is tsform.
    const target = spec.slice('file:'.length);
    expect(realpathSync(target)).toBe(realpathSync(resolve(REPO_ROOT)));
    expect(JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'))).toMatchObject({ name: 'tsform', bin: { tsform: 'bin/tsform.mjs' } });
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toContain('node_modules/');
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain('npm install');

    // `npm install` of a file: dependency links node_modules/tsform to the folder and its bin to
    // node_modules/.bin; done here by hand so the test needs no network and no npm cache.
    mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(target, join(dir, 'node_modules', 'tsform'));
    symlinkSync(join('..', 'tsform', 'bin', 'tsform.mjs'), join(dir, 'node_modules', '.bin', 'tsform'));
    const npx = promisify(execFile);
    const env = { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' };
    const version = await npx('npx', ['tsform', '--version'], { cwd: dir, env });
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    const compiled = await npx('npx', ['tsform', 'compile'], { cwd: join(dir, 'models'), env });
    expect(compiled.stdout).toContain('compiled 2 models');
    expect(compiled.stderr).toContain(`using the project in ${realpathSync(dir)}`);
  });

  it('--tsform <spec> puts a git URL (or any npm spec) in package.json instead', async () => {
    const dir = join(base, 'git-dep');
    expect((await init([dir, '--tsform', 'git+https://example.org/tsform.git#main'])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies).toEqual({ tsform: 'git+https://example.org/tsform.git#main' });
  });
});

describe('tsform init --name', () => {
  it('rejects a name that is not a simple identifier before writing anything', async () => {
    const dir = join(base, 'bad-name');
    const run = await init([dir, '--name', 'a: b']);
    expect(run.code).toBe(2);
    expect(run.err[0]).toMatch(/^error TSF112: tsform init: project name "a: b" must match/);
    expect(existsSync(dir)).toBe(false);
  });
});
