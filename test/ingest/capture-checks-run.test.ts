import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyCaptureProject, openOltpAt, startSmallOltp, type SmallOltp } from './support/capture-project.ts';

// Red-team 2026-12-07, capture findings 5 and 6, through `tsform run` (DuckDB): a row far ahead
// in updated_at is named in the run's notices (practice id and count); a table whose key: no
// unique index covers fails its nodes with TSF424 while the other table's nodes succeed.
describe('capture checks in a run', () => {
  let oltp: SmallOltp;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];
  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures']);
    tenants = (await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 2`)).rows.map((r) => String(r.practice_id));
    project = copyCaptureProject(tenants);
  }, 180_000);
  afterAll(async () => {
    project?.remove();
    await oltp?.stop();
  });
  const run = (): Promise<RunResults> => runWorkspace({ projectDir: project.dir, command: 'run', target: 'duckdb', openOltp: openOltpAt(oltp.server.url) });

  it('a far-future updated_at is a notice; a key no unique index covers fails that table alone with TSF424', async () => {
    await oltp.admin.query(
      `UPDATE oltp.encounters SET updated_at = now() + interval '400 days' WHERE encounter_id = (SELECT min(encounter_id) FROM oltp.encounters WHERE practice_id = $1)`,
      [tenants[0]!],
    );
    const pk = (await oltp.admin.query(`SELECT conname FROM pg_constraint WHERE conrelid = 'oltp.procedures'::regclass AND contype = 'p'`)).rows[0]!.conname;
    await oltp.admin.query(`ALTER TABLE oltp.procedures DROP CONSTRAINT ${String(pk)}`);
    const r = await run();
    const ahead = (r.notices ?? []).filter((n) => n.includes('ahead of the OLTP'));
    expect(ahead, JSON.stringify(r.notices)).toHaveLength(1);
    expect(ahead[0]).toContain('source:ehr.encounters');
    expect(ahead[0]).toContain(`${JSON.stringify(tenants[0])} (1 ahead)`);
    const procedures = r.results.filter((x) => x.node.startsWith('source:ehr.procedures@'));
    expect(procedures).toHaveLength(tenants.length);
    for (const p of procedures) {
      expect(p.status).toBe('error');
      expect(p.code, p.message ?? "").toBe('TSF424');
      expect(p.message).toContain('oltp.procedures');
      expect(p.message).toContain('(procedure_id)');
    }
    const encounters = r.results.filter((x) => x.node.startsWith('source:ehr.encounters@'));
    expect(encounters.map((x) => x.status)).toEqual(tenants.map(() => 'success'));
  }, 240_000);
});
