import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace, type RunRequest } from '../../src/cli/api.ts';
import { runCli } from '../../src/cli/program.ts';
import { copyCaptureProject, openOltpAt, rawDiffers, startSmallOltp, withFaults, type SmallOltp } from './support/capture-project.ts';

/** The same capture nodes with a PostgreSQL warehouse (here the OLTP's own database, schema raw). */
describe('capture in a run: PostgreSQL OLTP → PostgreSQL warehouse', () => {
  let oltp: SmallOltp;
  let project: ReturnType<typeof copyCaptureProject>;
  let tenants: string[];

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures']);
    const { rows } = await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 5`);
    tenants = rows.map((r) => String(r.practice_id));
    project = copyCaptureProject(tenants);
    mkdirSync(join(project.dir, 'policies'), { recursive: true });
    writeFileSync(join(project.dir, 'policies/policies.yml'), 'protect:\n  schemas: [raw, marts]\ngrants:\n  practice_roles: [marts]\n');
    process.env.TSFORM_PG_URL = oltp.server.url;
  });
  afterAll(async () => {
    delete process.env.TSFORM_PG_URL;
    project?.remove();
    await oltp?.stop();
  });

  const run = (extra: Partial<RunRequest> = {}): Promise<RunResults> =>
    runWorkspace({ projectDir: project.dir, command: 'run', target: 'postgres', openOltp: openOltpAt(oltp.server.url), ...extra });
  const allEqual = async (ids: readonly string[]) => [...(await rawDiffers(oltp.admin, oltp.admin, 'encounters', ids)), ...(await rawDiffers(oltp.admin, oltp.admin, 'procedures', ids))];

  it('one practice\'s statement timeout fails it alone; the next run catches it up; purge removes an offboarded practice in one transaction', async () => {
    const slow = tenants[1]!;
    const faulty = withFaults(await PgOltpSource.open(oltp.server.url), { [slow]: 'timeout' });
    const first = await run({ openOltp: async () => faulty });
    const failed = first.results.filter((r) => r.status !== 'success');
    expect(failed.filter((r) => r.status === 'error').map((r) => [r.node, r.code])).toEqual([
      [`source:ehr.encounters@${slow}`, 'TSF411'],
      [`source:ehr.procedures@${slow}`, 'TSF411'],
    ]);
    expect(failed.every((r) => r.tenant === slow)).toBe(true);
    const others = tenants.filter((t) => t !== slow);
    expect(await allEqual(others)).toEqual([]);
    // the raw tables capture created carry row-level security from the transaction that made them
    const rls = await oltp.admin.query(
      `SELECT c.relname::text AS t, c.relrowsecurity AND c.relforcerowsecurity AS forced, array_agg(p.polname::text ORDER BY p.polname) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_policy p ON p.polrelid = c.oid
        WHERE n.nspname = 'raw' AND c.relkind = 'r' GROUP BY 1, 2 ORDER BY 1`,
    );
    const policies = ['tsform_group_isolation', 'tsform_owner', 'tsform_practice_isolation'];
    expect(rls.rows).toEqual([
      { t: 'encounters', forced: true, policies },
      { t: 'procedures', forced: true, policies },
    ]);

    const second = await run();
    expect(second.results.filter((r) => r.status !== 'success')).toEqual([]);
    expect(await allEqual(tenants)).toEqual([]);

    const gone = tenants[4]!;
    project.setTenants(tenants.slice(0, 4));
    const third = await run();
    expect(third.notices).toContainEqual(expect.stringContaining(`tsform purge --tenant ${gone} --yes`));
    const purged: string[] = [];
    expect(await runCli(['node', 'tsform', 'purge', '--project-dir', project.dir, '--target', 'postgres', '--tenant', gone, '--yes'], (l) => purged.push(l))).toBe(0);
    // PostgreSQL's files are not rewritten (that locks each table): the note names the command.
    expect(purged).toContainEqual(expect.stringMatching(/^notice: PostgreSQL keeps the deleted rows' bytes .*: VACUUM \(FULL\) .*raw\.encounters/));
    for (const rel of ['raw.encounters', 'raw.procedures', 'marts.stg_encounters', 'marts.practice_encounter_counts']) {
      const n = await oltp.admin.query(`SELECT count(*) AS n FROM ${rel} WHERE practice_id = $1`, [gone]);
      expect(Number(n.rows[0]!.n), rel).toBe(0);
    }
    expect(await allEqual(tenants.slice(0, 4))).toEqual([]);
    // no login left for a practice that is gone, and no membership row
    expect((await oltp.admin.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [`practice_${gone}`])).rows[0]!.n).toBe(0);
    expect((await oltp.admin.query('SELECT count(*)::int AS n FROM tsform_security.members WHERE practice_id = $1', [gone])).rows[0]!.n).toBe(0);
    expect((await oltp.admin.query('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1', [`practice_${tenants[0]}`])).rows[0]!.n).toBe(1);
  });
});
