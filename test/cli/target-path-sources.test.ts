import { existsSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactDir } from '../../src/cli/target-path.ts';
import { Codes } from '../../src/errors.ts';
import { cli } from '../support/cli.ts';
import { removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

/**
 * Red-team: `--target-path models` was accepted; compile wrote compiled/*.sql under models/ and
 * the next compile was TSF104 for every model. A folder the project is read from, or anything
 * under it, is refused like the project folder itself (TSF306), before anything is written.
 */
describe('--target-path inside what the project is read from', () => {
  let dir: string;
  beforeAll(async () => {
    dir = writeTempProject({});
    expect((await cli('init', dir)).code).toBe(0);
  });
  afterAll(removeTempProjects);

  it.each(['models', 'seeds', 'macros', 'tests', 'policies', 'data', 'models/marts/out', './seeds/../models', 'tsform.yml'])(
    '%s is TSF306 and compile writes nothing',
    async (bad) => {
      const before = readdirSync(join(dir, 'models'), { recursive: true }).sort();
      const r = await cli('compile', '--project-dir', dir, '--target-path', bad);
      expect(r.code).toBe(2);
      expect(r.err).toContain('TSF306');
      expect(r.err).toContain('which the project is read from');
      expect(readdirSync(join(dir, 'models'), { recursive: true }).sort()).toEqual(before);
      expect(existsSync(join(dir, bad, 'manifest.json'))).toBe(false);
    },
  );

  it('a link to models/ is followed, and refused', () => {
    symlinkSync(join(dir, 'models'), join(dir, 'out-link'));
    expect(() => artifactDir(dir, 'out-link')).toThrow(expect.objectContaining({ code: Codes.badTargetPath }));
  });

  it('a folder of its own is taken, and the next compile still succeeds', async () => {
    expect(artifactDir(dir, 'target-ci')).toBe(join(dir, 'target-ci'));
    expect(artifactDir(dir, 'models-out')).toBe(join(dir, 'models-out'));
    expect((await cli('compile', '--project-dir', dir, '--target-path', 'target-ci')).code).toBe(0);
    expect((await cli('compile', '--project-dir', dir)).code).toBe(0);
  });
});
