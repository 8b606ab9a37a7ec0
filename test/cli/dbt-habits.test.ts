import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/** Issue 15: what a dbt user reaches for — --vars, --fail-fast, ls --output json --resource-type, clean. */


describe('dbt habits', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({
      tenants: sampleTenants(2),
      files: {
        // fails for every practice: --fail-fast stops the run at it
        'models/marts/always_fails.sql': `select practice_id, cast('not a number' as integer) as v from {{ref "stg_providers"}}\n`,
      },
    });
  });
  afterAll(() => demo.remove());

  const compiled = (model: string) => readFileSync(join(demo.dir, `target/compiled/${model}.sql`), 'utf8');

  it('--vars overrides tsform.yml vars (YAML or JSON), and refuses what is not a mapping or privacy_k', async () => {
    expect((await cli('compile', '--project-dir', demo.dir)).code).toBe(0);
    expect(compiled('provider_panel')).toContain(`- 12 * interval`);
    for (const vars of ['{panel_months: 3}', '{"panel_months": 3}']) {
      expect((await cli('compile', '--project-dir', demo.dir, '--vars', vars)).code).toBe(0);
      expect(compiled('provider_panel')).toContain(`- 3 * interval`);
    }
    const list = await cli('compile', '--project-dir', demo.dir, '--vars', '[1, 2]');
    expect(list.code).toBe(2);
    expect(list.err).toContain("expected a mapping");
    const k = await cli('compile', '--project-dir', demo.dir, '--vars', '{privacy_k: 2}');
    expect(k.code).toBe(2);
    expect(k.err).toContain('privacy_k comes from privacy.k');
  });

  it('ls --output json --resource-type: one JSON object per node, only those kinds', async () => {
    const seeds = await cli('ls', '--project-dir', demo.dir, '--resource-type', 'seed', '--output', 'json');
    expect(seeds.code).toBe(0);
    const parsed = seeds.out.map((l) => JSON.parse(l) as { name: string; resource_type: string });
    expect(parsed.length).toBeGreaterThan(0);
    expect(new Set(parsed.map((p) => p.resource_type))).toEqual(new Set(['seed']));
    const tests = await cli('ls', '--project-dir', demo.dir, '--select', 'stg_encounters', '--resource-type', 'test', '--output', 'json');
    const names = tests.out.map((l) => (JSON.parse(l) as { name: string }).name);
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.startsWith('test:'))).toBe(true);
    expect(names.some((n) => n.includes('stg_encounters'))).toBe(true);
    expect((await cli('ls', '--project-dir', demo.dir, '--resource-type', 'macro')).code).toBe(2);
  });

  it('--fail-fast: the first failure stops the run; what did not run is interrupted; exit 1', async () => {
    const r = await cli('build', '--project-dir', demo.dir, '--fail-fast', '--threads', '1', '--log-format', 'json');
    expect(r.code).toBe(1);
    expect(r.err).toContain('--fail-fast: a node failed');
    const run = readRunResults(join(demo.dir, 'target/run_results.json'));
    expect(run.interrupted).toBe(true);
    expect(run.results.some((x) => x.model === 'always_fails' && x.status === 'error')).toBe(true);
    const interrupted = run.results.filter((x) => x.status === 'interrupted');
    expect(interrupted.length).toBeGreaterThan(0);
    expect(interrupted[0]!.message).toBe('interrupted: --fail-fast stopped the run after the first failure');
  });

  it('clean removes what tsform wrote into target/ and keeps the DuckDB files', async () => {
    expect((await cli('compile', '--project-dir', demo.dir)).code).toBe(0);
    mkdirSync(join(demo.dir, 'target/docs'), { recursive: true });
    writeFileSync(join(demo.dir, 'target/docs/index.html'), '<html></html>');
    const had = ['tsform.duckdb', 'vault.duckdb'].filter((f) => existsSync(join(demo.dir, 'target', f)));
    expect(had).toContain('tsform.duckdb');
    const r = await cli('clean', '--project-dir', demo.dir);
    expect(r.code).toBe(0);
    expect(r.out).toEqual(expect.arrayContaining(['removed target/manifest.json', 'removed target/compiled', 'removed target/docs']));
    for (const f of ['manifest.json', 'compiled', 'docs', 'run_results.json']) expect(existsSync(join(demo.dir, 'target', f)), f).toBe(false);
    for (const f of had) expect(existsSync(join(demo.dir, 'target', f)), f).toBe(true);
  });

  it('clean leaves what tsform did not write: notes and database copies in target/, another folder named as the target path', async () => {
    // Before: `clean --target-path ../sibling` emptied that folder, and a plain clean deleted
    // target/my_notes.txt and a copy of the warehouse (red-team, 2026-12-07).
    writeFileSync(join(demo.dir, 'target/my_notes.txt'), 'notes');
    writeFileSync(join(demo.dir, 'target/prod-copy.duckdb'), 'not ours');
    const sibling = join(demo.dir, '..', `sibling-${process.pid}`);
    mkdirSync(join(sibling, 'models'), { recursive: true });
    writeFileSync(join(sibling, 'tsform.yml'), 'name: x\n');
    writeFileSync(join(sibling, 'manifest.json'), '{}');
    const r = await cli('clean', '--project-dir', demo.dir);
    expect(r.code).toBe(0);
    expect(r.out).toEqual(expect.arrayContaining(['kept target/my_notes.txt (not written by tsform)', 'kept target/prod-copy.duckdb (not written by tsform)']));
    for (const f of ['my_notes.txt', 'prod-copy.duckdb']) expect(existsSync(join(demo.dir, 'target', f)), f).toBe(true);
    const away = await cli('clean', '--project-dir', demo.dir, '--target-path', `../sibling-${process.pid}`);
    expect(away.code).toBe(0);
    for (const f of ['models', 'tsform.yml']) expect(existsSync(join(sibling, f)), f).toBe(true);
    // tsform's own artifact names there are what `--target-path` asked it to clean
    expect(existsSync(join(sibling, 'manifest.json'))).toBe(false);
    rmSync(sibling, { recursive: true, force: true });
  });
});
