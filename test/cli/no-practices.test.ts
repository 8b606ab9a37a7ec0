import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/**
 * Red-team, 2026-12-07: with tenants.yml missing (or `tenants: []`), `run --full-refresh` dropped
 * every staging, mart and pseudonymized table and rebuilt none (exit 3); `--tenant ""` (an unset
 * $PRACTICE) ran nothing with exit 0. Both are refused now, before the warehouse is touched.
 */
describe('a run with no practice', () => {
  let demo: DemoCopy;
  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
    expect((await cli('run', '--project-dir', demo.dir)).code).toBe(0);
  });
  afterAll(() => demo.remove());

  async function tables(): Promise<number> {
    const db = await DuckDBInstance.create(join(demo.dir, 'target/tsform.duckdb'));
    const c = await db.connect();
    const r = await c.runAndReadAll(`select count(*) from information_schema.tables where table_schema in ('staging', 'marts', 'pseudo')`);
    c.closeSync();
    db.closeSync();
    return Number(r.getRows()[0]![0]);
  }

  it.each([
    ['tenants.yml removed', () => rmSync(join(demo.dir, 'tenants.yml'))],
    ['an empty list', () => writeFileSync(join(demo.dir, 'tenants.yml'), 'tenants: []\n')],
  ])('%s: run --full-refresh is TSF311 and drops nothing', async (_what, edit) => {
    const before = await tables();
    expect(before).toBeGreaterThan(5);
    const original = join(demo.dir, 'tenants.yml');
    const keep = readFileSync(original, 'utf8');
    edit();
    try {
      const r = await cli('run', '--project-dir', demo.dir, '--full-refresh');
      expect(r.code).toBe(2);
      expect(r.err).toContain('TSF311');
      expect(await tables()).toBe(before);
    } finally {
      writeFileSync(original, keep);
    }
  });

  it.each([[''], [','], [' , ']])('--tenant %j is TSF303', async (arg) => {
    const r = await cli('run', '--project-dir', demo.dir, '--tenant', arg);
    expect(r.code).toBe(2);
    expect(r.err).toContain('TSF303');
  });
});
