import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareLsn } from '../../../src/adapters/logical-replication.ts';
import type { RunResults } from '../../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../../src/cli/api.ts';
import { REPO_ROOT } from '../../support/demo-project.ts';
import { openOltpAt, rawDiffers, startSmallOltp, type SmallOltp } from '../support/capture-project.ts';
import { logicalProject } from './support/logical-fixture.ts';

/** Polls `check` until it returns true; the deadline only bounds a hung test, nothing is asserted on time. */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 60_000): Promise<void> {
  const end = performance.now() + deadlineMs;
  while (performance.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`still not true: ${what}`);
}

describe('tsform capture --follow (PostgreSQL warehouse), then run --select state:captured+', () => {
  let oltp: SmallOltp;
  let project: ReturnType<typeof logicalProject>;
  let tenants: string[];
  let child: ChildProcess | undefined;
  let out = '';

  beforeAll(async () => {
    oltp = await startSmallOltp(['encounters', 'procedures'], { logical: {} });
    tenants = (await oltp.admin.query(`SELECT DISTINCT practice_id FROM oltp.encounters ORDER BY 1 LIMIT 4`)).rows.map((r) => String(r.practice_id));
    project = logicalProject(tenants, 'logical_follow');
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    project?.remove();
    await oltp?.stop();
  });

  const slotLsn = async (): Promise<string> => String((await oltp.admin.query(`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE database = current_database()`)).rows[0]?.l ?? '0/0');
  const raw = () => Promise.all(['encounters', 'procedures'].map((t) => rawDiffers(oltp.admin, oltp.admin, t, tenants))).then((d) => d.flat());

  it('keeps raw equal to the OLTP while it changes, confirms the slot while idle, stops cleanly on SIGTERM; the next run builds only the practices that changed', async () => {
    const env = { ...process.env, TSFORM_OLTP_URL: oltp.server.url, TSFORM_PG_URL: oltp.server.url };
    child = spawn(process.execPath, [join(REPO_ROOT, 'bin/tsform.mjs'), 'capture', '--follow', '--project-dir', project.dir, '--target', 'postgres'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await eventually(async () => out.includes('following'), 'capture --follow started');
    await eventually(async () => (await oltp.admin.describe('raw', 'procedures')) !== undefined && (await raw()).length === 0, 'the initial copy in raw');

    // models built once, so that state:captured has a last model run to compare with
    const first = await runWorkspace({ projectDir: project.dir, command: 'run', target: 'postgres', select: ['state:captured+'], openOltp: openOltpAt(oltp.server.url), env });
    expect(first.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code ?? ''} ${r.message ?? ''}`)).toEqual([]);
    // the initial copy wrote every practice's slices
    expect([...new Set(first.results.map((r) => r.tenant).filter(Boolean))].sort()).toEqual([...tenants].sort());

    const [a, b] = tenants as [string, string];
    await oltp.admin.transaction(async (s) => {
      await s.query(`SELECT set_config('tsform.hard_delete', 'on', true)`);
      await s.query(`DELETE FROM oltp.encounters WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 LIMIT 2)`, [a]);
    });
    await oltp.admin.query(`UPDATE oltp.procedures SET description = 'followed' WHERE practice_id = $1 AND procedure_id IN (SELECT procedure_id FROM oltp.procedures WHERE practice_id = $1 LIMIT 3)`, [b]);
    await eventually(async () => (await raw()).length === 0, 'raw follows the OLTP');
    expect(out).toMatch(new RegExp(`${a}\\toltp.encounters\\t2 change\\(s\\): 0 upserted, 2 removed`));

    // WAL written only by a table outside the publication: the idle consumer still confirms past it
    await oltp.admin.query(`CREATE TABLE public.unrelated AS SELECT g AS x, md5(g::text) AS y FROM generate_series(1, 20000) g`);
    const after = String((await oltp.admin.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0]!.l);
    await eventually(async () => compareLsn(await slotLsn(), after) >= 0, 'the slot confirmed past WAL it had nothing to send for');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped at');

    // only the two practices that changed are built
    const run: RunResults = await runWorkspace({ projectDir: project.dir, command: 'run', target: 'postgres', select: ['state:captured+'], openOltp: openOltpAt(oltp.server.url), env });
    expect(run.results.filter((r) => r.status !== 'success')).toEqual([]);
    expect([...new Set(run.results.map((r) => r.tenant).filter(Boolean))].sort()).toEqual([a, b].sort());
    const again = await runWorkspace({ projectDir: project.dir, command: 'run', target: 'postgres', select: ['state:captured+'], openOltp: openOltpAt(oltp.server.url), env });
    expect(again.results.filter((r) => r.tenant)).toEqual([]);
  }, 180_000);
});
