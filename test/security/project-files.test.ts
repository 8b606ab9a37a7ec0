import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { runWorkspace } from '../../src/cli/api.ts';
import { Codes } from '../../src/errors.ts';
import { escapesProject, fileInsideProject } from '../../src/project/project-path.ts';
import { demoCopyErrors } from '../support/compile-errors.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/**
 * A source's `loader: csv:` path is read by the tsform process. Before these checks it was joined
 * to the project directory as written, so `../../home/ci/.pgpass`, an absolute path, or a symlink
 * committed in data/ loaded any file the process could read into raw, where a shared model could
 * copy it to every practice. Now the path must stay in the project, symlinks followed.
 */

const SOURCES = (csv: string) => `sources:\n  - name: ext\n    schema: ext\n    scope: shared\n    loader:\n      csv: ${csv}\n    tables:\n      - name: lines\n`;

const dirs: string[] = [];
let demo: DemoCopy | undefined;
afterEach(() => {
  demo?.remove();
  demo = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("a source's CSV path leading outside the project", () => {
  for (const csv of ['../outside/{table}.csv', 'data/../../{table}.csv', '/etc/{table}', '"C:/secrets/{table}.csv"']) {
    it(`loader csv: ${csv} is TSF205 at the table`, () => {
      const errors = demoCopyErrors({ 'models/zz_ext.yml': SOURCES(csv) });
      expect(errors.map((d) => ({ code: d.code, file: d.file, line: d.line }))).toEqual([{ code: Codes.invalidConfig, file: 'models/zz_ext.yml', line: 8 }]);
    });
  }

  it('paths that stay inside are the project', () => {
    expect(escapesProject('data/ehr/patients.csv.gz')).toBe(false);
    expect(escapesProject('data/../data/x.csv')).toBe(false);
  });

  it('a symlink leading outside resolves to nothing; one inside, or a missing file, to its path', () => {
    const root = mkdtempSync(join(tmpdir(), 'tsform-proj-'));
    const outside = mkdtempSync(join(tmpdir(), 'tsform-out-'));
    dirs.push(root, outside);
    writeFileSync(join(outside, 'secret.csv'), 'a\n1\n');
    writeFileSync(join(root, 'real.csv'), 'a\n1\n');
    symlinkSync(join(outside, 'secret.csv'), join(root, 'leak.csv'));
    symlinkSync(join(root, 'real.csv'), join(root, 'alias.csv'));
    expect(fileInsideProject(root, 'leak.csv')).toBeUndefined();
    expect(fileInsideProject(root, 'alias.csv')).toMatch(/real\.csv$/);
    expect(fileInsideProject(root, 'missing.csv')).toBe(join(root, 'missing.csv'));
  });

  it('a run refuses a symlinked extract (TSF418) and loads nothing from it', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'tsform-out-'));
    dirs.push(outside);
    demo = copyDemoProject();
    const providers = join(demo.dir, 'data/ehr/providers.csv.gz');
    writeFileSync(join(outside, 'providers.csv.gz'), gzipSync('practice_id,provider_id\n'));
    rmSync(providers);
    symlinkSync(join(outside, 'providers.csv.gz'), providers);
    const results = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['source:ehr.providers'] });
    const failed = results.results.filter((r) => r.status === 'error');
    expect(failed.length).toBeGreaterThan(0);
    expect(new Set(failed.map((r) => r.code))).toEqual(new Set([Codes.invalidRunSetting]));
    expect(failed[0]!.message).toContain('leads outside the project');
    expect(results.results.filter((r) => r.status === 'success')).toEqual([]);
  });
});
