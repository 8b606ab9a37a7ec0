import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareSlimCi, runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

describe('a pull request that changes one staging model', () => {
  let prod: DemoCopy;
  let pr: DemoCopy;
  let state: string;
  beforeAll(async () => {
    prod = copyDemoProject({ tenants: sampleTenants(6) });
    const built = await runWorkspace({ projectDir: prod.dir, command: 'build' });
    expect(built.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    state = join(prod.dir, 'prod-artifacts');
    mkdirSync(state);
    copyFileSync(join(prod.dir, 'target/manifest.json'), join(state, 'manifest.json'));
    copyFileSync(join(prod.dir, 'target/tsform.duckdb'), join(state, 'tsform.duckdb'));

    pr = copyDemoProject({ tenants: sampleTenants(6) });
    const model = join(pr.dir, 'models/staging/stg_providers.sql');
    writeFileSync(model, readFileSync(model, 'utf8').replace('  speciality\n', '  speciality,\n  upper(speciality) as speciality_upper\n'));
  });
  afterAll(() => {
    prod.remove();
    pr.remove();
  });

  it('state:modified+ selects exactly the changed model and its downstream', () => {
    const { plan } = prepareSlimCi({ projectDir: pr.dir, command: 'build', select: ['state:modified+'], state });
    expect(plan.steps.map((s) => s.id).sort()).toEqual(['provider_panel', 'stg_providers']);
    const { plan: unchanged } = prepareSlimCi({ projectDir: prod.dir, command: 'build', select: ['state:modified+'], state });
    expect(unchanged.steps).toEqual([]);
  });

  it('builds and tests only those, for the sample practices, reading unchanged upstream from production', async () => {
    const run = await runWorkspace({ projectDir: pr.dir, command: 'build', select: ['state:modified+'], state, defer: true, tenants: ['tag:ci-sample'] });
    const manifest = JSON.parse(readFileSync(join(pr.dir, 'target/manifest.json'), 'utf8'));
    // The unselected upstream (the raw source) is read from the production database.
    expect(manifest.models.stg_providers.compiled_sql).toContain('"prod"."raw"."providers"');
    expect(manifest.models.provider_panel.compiled_sql).not.toContain('"prod"."staging"."stg_providers"');
    expect(new Set(run.results.map((r) => r.model))).toEqual(new Set(['stg_providers', 'provider_panel']));
    const tenants = new Set(run.results.map((r) => r.tenant));
    expect([...tenants].every((t) => ['p_79a06fd69f', 'p_41e2a44c47', 'p_86880e5887'].includes(t!))).toBe(true);
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.message}`)).toEqual([]);
  });
});
