import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/** Issue 15: `--target-path` and $TSFORM_TARGET_PATH, as dbt's, for where artifacts go. */

describe('--target-path', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 2) });
  });
  afterAll(() => demo.remove());
  afterEach(() => {
    delete process.env.TSFORM_TARGET_PATH;
  });

  it('compile writes manifest.json and compiled/ there, relative to the project folder, and nothing into target/', async () => {
    const r = await cli('compile', '--project-dir', demo.dir, '--target-path', 'target-ci');
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toContain('→ target-ci/manifest.json');
    expect(existsSync(join(demo.dir, 'target-ci/manifest.json'))).toBe(true);
    expect(existsSync(join(demo.dir, 'target-ci/compiled/stg_encounters.sql'))).toBe(true);
    expect(existsSync(join(demo.dir, 'target/manifest.json'))).toBe(false);
  });

  it('$TSFORM_TARGET_PATH is the default; the flag wins over it', async () => {
    process.env.TSFORM_TARGET_PATH = 'from-env';
    expect((await cli('compile', '--project-dir', demo.dir)).code).toBe(0);
    expect(existsSync(join(demo.dir, 'from-env/manifest.json'))).toBe(true);
    expect((await cli('compile', '--project-dir', demo.dir, '--target-path', 'from-flag')).code).toBe(0);
    expect(existsSync(join(demo.dir, 'from-flag/manifest.json'))).toBe(true);
  });

  it('a run writes run_results.json there; the warehouse stays where tsform.yml puts it', async () => {
    const r = await cli('seed', '--project-dir', demo.dir, '--target-path', 'target-run', '--log-format', 'json');
    expect(r.code).toBe(0);
    const run = JSON.parse(readFileSync(join(demo.dir, 'target-run/run_results.json'), 'utf8')) as { command: string };
    expect(run.command).toBe('seed');
    expect(existsSync(join(demo.dir, 'target-run/manifest.json'))).toBe(true);
    expect(existsSync(join(demo.dir, 'target/run_results.json'))).toBe(false);
    expect(existsSync(join(demo.dir, 'target-run/tsform.log'))).toBe(true);
    expect(existsSync(join(demo.dir, 'target/tsform.log'))).toBe(false);
    expect(existsSync(join(demo.dir, 'target/tsform.duckdb'))).toBe(true);
  });

  it('docs generate and clean follow it; clean leaves target/ alone', async () => {
    expect((await cli('docs', 'generate', '--project-dir', demo.dir, '--target-path', 'target-ci')).code).toBe(0);
    expect(existsSync(join(demo.dir, 'target-ci/docs/index.html'))).toBe(true);
    const r = await cli('clean', '--project-dir', demo.dir, '--target-path', 'target-ci');
    expect(r.code).toBe(0);
    expect(r.out).toEqual(expect.arrayContaining(['removed target-ci/manifest.json', 'removed target-ci/docs']));
    expect(existsSync(join(demo.dir, 'target-ci/manifest.json'))).toBe(false);
    expect(existsSync(join(demo.dir, 'target/tsform.duckdb'))).toBe(true);
    expect(existsSync(join(demo.dir, 'models'))).toBe(true);
  });

  it('the project folder or one above it is refused (TSF306) before anything is written or removed', async () => {
    for (const bad of ['.', '..', demo.dir, `${demo.dir}/`, 'models/..']) {
      for (const cmd of [['clean'], ['compile'], ['ls']]) {
        const r = await cli(...cmd, '--project-dir', demo.dir, '--target-path', bad);
        expect(r.code, `${cmd} ${bad}`).toBe(2);
        expect(r.err).toContain('TSF306');
      }
    }
    process.env.TSFORM_TARGET_PATH = '.';
    const r = await cli('clean', '--project-dir', demo.dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain('TSF306');
    for (const f of ['tsform.yml', 'models', 'tenants.yml']) expect(existsSync(join(demo.dir, f)), f).toBe(true);
  });
});
