import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

const RELATIONS = ['marts.practice_daily_activity', 'marts.provider_panel', 'marts.practice_claims_outstanding', 'marts.practice_chronic_panel', 'staging.stg_encounters'];

async function snapshot(dir: string): Promise<Record<string, unknown[]>> {
  const db = await DuckDBAdapter.open({ path: join(dir, 'target/tsform.duckdb'), connections: 1 });
  try {
    const out: Record<string, unknown[]> = {};
    for (const rel of RELATIONS) out[rel] = (await db.query(`SELECT practice_id, count(*) AS n, sum(hash(t)) AS h FROM ${rel} t GROUP BY 1 ORDER BY 1`)).rows;
    return out;
  } finally {
    await db.close();
  }
}

describe('batching', () => {
  const copies: DemoCopy[] = [];
  afterAll(() => copies.forEach((c) => c.remove()));

  it('gives exactly the rows of one statement per practice', async () => {
    const batched = copyDemoProject({ tenants: sampleTenants(20) });
    const single = copyDemoProject({ tenants: sampleTenants(20) });
    copies.push(batched, single);
    const yml = join(single.dir, 'tsform.yml');
    writeFileSync(yml, readFileSync(yml, 'utf8').replace(/batch:\n\s+size: \d+/, 'batch:\n  size: 1'));
    const a = await runWorkspace({ projectDir: batched.dir, command: 'build' });
    const b = await runWorkspace({ projectDir: single.dir, command: 'build' });
    expect(a.results.every((r) => r.status === 'success')).toBe(true);
    expect(b.results.every((r) => r.status === 'success')).toBe(true);
    expect(Math.max(...a.results.map((r) => r.batch_size ?? 1))).toBeGreaterThan(1);
    expect(b.results.every((r) => (r.batch_size ?? 1) === 1)).toBe(true);
    expect(await snapshot(batched.dir)).toEqual(await snapshot(single.dir));
  });
});
