import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/**
 * Issue 15, item 9: `--full-refresh --tenant <sample>` was refused (TSF304). It now rebuilds the
 * selected practices' slices from the full SELECT, in the table as it is; every other practice's
 * rows are left exactly as they were.
 */

describe('--full-refresh for a sample of practices', () => {
  let demo: DemoCopy;
  let a: string;
  let b: string;
  const db = () => DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
  const counts = async () => {
    const duck = await db();
    try {
      const { rows } = await duck.query('SELECT practice_id, count(*) AS n FROM "staging"."stg_encounters" GROUP BY practice_id');
      return Object.fromEntries(rows.map((r) => [String(r.practice_id), Number(r.n)]));
    } finally {
      await duck.close();
    }
  };

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3) });
    [a, b] = [...demo.tenantIds].sort() as [string, string];
    const r = await cli('run', '--project-dir', demo.dir, '--select', '+stg_encounters', '--log-format', 'json');
    expect(r.code, r.err).toBe(0);
  });
  afterAll(() => demo.remove());

  it('restores what an incremental run cannot, for the selected practice only', async () => {
    const built = await counts();
    expect(built[a]).toBeGreaterThan(1);
    expect(built[b]).toBeGreaterThan(1);
    // Rows lost from the incremental table (below its high-water mark) for two practices.
    const duck = await db();
    try {
      for (const t of [a, b]) {
        await duck.query('DELETE FROM "staging"."stg_encounters" WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM "staging"."stg_encounters" WHERE practice_id = $1 ORDER BY started_at LIMIT 1)', [t]);
      }
    } finally {
      await duck.close();
    }
    const incremental = await cli('run', '--project-dir', demo.dir, '--select', 'stg_encounters', '--tenant', a, '--log-format', 'json');
    expect(incremental.code).toBe(0);
    expect((await counts())[a]).toBe(built[a]! - 1);

    const refresh = await cli('run', '--project-dir', demo.dir, '--select', 'stg_encounters', '--tenant', a, '--full-refresh', '--log-format', 'json');
    expect(refresh.code, refresh.err).toBe(0);
    expect(refresh.err).not.toContain('TSF304');
    const after = await counts();
    expect(after[a]).toBe(built[a]);
    // Not selected: untouched (neither rebuilt nor dropped).
    expect(after[b]).toBe(built[b]! - 1);
    expect(Object.keys(after).sort()).toEqual(Object.keys(built).sort());
  });
});
