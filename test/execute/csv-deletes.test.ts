import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/**
 * Issue 14 on the demo's own loader: the demo's stg_encounters is incremental over a CSV source.
 * A row removed from the extract leaves raw (the slice is reloaded) and the incremental model
 * (its practice is rebuilt), and nothing else is rebuilt.
 */
describe('a row removed from a CSV extract leaves the incremental models built on it', () => {
  let demo: DemoCopy;
  let victim: string;
  let removed: string;
  const file = () => join(demo.dir, 'data/ehr/encounters.csv.gz');

  beforeAll(() => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3) });
    victim = demo.tenantIds[1]!;
  });
  afterAll(() => demo.remove());

  const run = (): Promise<RunResults> => runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters'] });
  const count = async (sql: string, params: string[]): Promise<number> => {
    const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      return Number((await db.query(sql, params)).rows[0]!.n);
    } finally {
      await db.close();
    }
  };

  it('rebuilds only the practice that lost a row, and the row is gone', async () => {
    const first = await run();
    expect(first.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    const lines = gunzipSync(readFileSync(file())).toString('utf8').split('\n');
    const header = lines[0]!.split(',');
    const idIdx = header.indexOf('encounter_id');
    const i = lines.findIndex((l) => l.startsWith(`${victim},`));
    removed = lines[i]!.split(',')[idIdx]!;
    expect(await count('SELECT count(*) AS n FROM staging.stg_encounters WHERE encounter_id = $1', [removed])).toBe(1);
    writeFileSync(file(), gzipSync(lines.filter((_, j) => j !== i).join('\n')));

    const second = await run();
    expect(second.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    for (const rel of ['raw.encounters', 'staging.stg_encounters']) {
      expect(await count(`SELECT count(*) AS n FROM ${rel} WHERE encounter_id = $1`, [removed]), rel).toBe(0);
    }
    const notes = new Set(second.results.filter((r) => r.model === 'stg_encounters').flatMap((r) => r.notes ?? []));
    expect([...notes].filter((n) => n.includes('rebuilt in full'))).toEqual(['1 practice(s) rebuilt in full: rows were deleted upstream since their slice was built']);
    // an unchanged extract rebuilds nothing
    const third = await run();
    expect(third.results.flatMap((r) => r.notes ?? []).filter((n) => n.includes('rebuilt in full'))).toEqual([]);
  });
});
