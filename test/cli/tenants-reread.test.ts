import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { compileWorkspace, openAdapter, resolveTarget, runWorkspace } from '../../src/cli/api.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { editTenants } from '../support/research-fixture.ts';

/**
 * A run reads tenants.yml again once it holds its practices' locks, and compiles again when the
 * file changed meanwhile (a purge or an edit while it waited): it never builds a practice the
 * file no longer lists. The wait is a lock whose taking edits the file (PostgreSQL's case is
 * test/cli/leftover-partitions-postgres.test.ts, with a real purge). Counts and ids only.
 */
describe('tenants.yml or tsform.yml changed while a run waited for its locks', () => {
  let demo: DemoCopy;
  let adapter: Adapter;
  let gone: string;
  let kept: string;
  let listed: string;
  const tenantsFile = () => join(demo.dir, 'tenants.yml');
  const rowsOf = async (tenant: string) => Number((await adapter.query('SELECT count(*) AS n FROM staging.stg_patients WHERE practice_id = $1', [tenant])).rows[0]!.n);

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(1) });
    [kept, gone] = [...demo.tenantIds].sort() as [string, string];
    listed = readFileSync(tenantsFile(), 'utf8');
    const ws = compileWorkspace(demo.dir, { write: false });
    adapter = await openAdapter(ws.project, resolveTarget(ws.project, undefined));
  });
  afterAll(async () => {
    await adapter?.close();
    demo?.remove();
  });

  /** Each taking of the locks runs `onLock` first, as another process would while this one waits. */
  function locksThatRun(onLock: () => void): { taken: () => number } {
    let taken = 0;
    adapter.tryLockTenants = async () => {
      taken++;
      onLock();
      return { held: [], release: async () => undefined };
    };
    return { taken: () => taken };
  }

  it('a practice removed from the file while the run waited is not built; the run says it compiled again', async () => {
    locksThatRun(() => undefined);
    await runWorkspace({ projectDir: demo.dir, command: 'run', adapter });
    expect(await rowsOf(gone)).toBeGreaterThan(0);
    await adapter.query('DELETE FROM staging.stg_patients WHERE practice_id = $1', [gone]);
    let edited = false;
    const locks = locksThatRun(() => {
      if (!edited) editTenants(demo.dir, (ts) => ts.filter((t) => t.id !== gone));
      edited = true;
    });
    const r = await runWorkspace({ projectDir: demo.dir, command: 'run', adapter });
    expect(locks.taken()).toBe(2);
    expect(r.results.filter((u) => u.tenant === gone)).toEqual([]);
    expect(r.results.filter((u) => u.tenant === kept && u.status === 'success').length).toBeGreaterThan(0);
    expect(await rowsOf(gone)).toBe(0);
    expect(r.notices?.filter((n) => /tenants\.yml, tsform\.yml or the policies changed while this run waited/.test(n))).toHaveLength(1);
  }, 300_000);

  it('a tsform.yml changed while the run waited (a linkage setting before a retokenize, a var) is what the run builds with', async () => {
    writeFileSync(tenantsFile(), listed);
    const config = join(demo.dir, 'tsform.yml');
    const original = readFileSync(config, 'utf8');
    try {
      let edited = false;
      const locks = locksThatRun(() => {
        if (!edited) writeFileSync(config, original.replace('panel_months: 12', 'panel_months: 7'));
        edited = true;
      });
      const r = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['provider_panel'], tenants: [kept], adapter });
      expect(locks.taken()).toBe(2);
      expect(r.notices?.some((n) => /changed while this run waited/.test(n))).toBe(true);
      const manifest = JSON.parse(readFileSync(join(demo.dir, 'target/manifest.json'), 'utf8')) as { models: Record<string, { compiled_sql: string }> };
      expect(manifest.models.provider_panel!.compiled_sql).toMatch(/- 7 \* interval '1 month'/);
    } finally {
      writeFileSync(config, original);
    }
  }, 300_000);

  it('a --tenant run of a practice removed meanwhile stops with a compile error naming it, nothing built', async () => {
    writeFileSync(tenantsFile(), listed);
    locksThatRun(() => editTenants(demo.dir, (ts) => ts.filter((t) => t.id !== gone)));
    const err = await runWorkspace({ projectDir: demo.dir, command: 'run', tenants: [gone], adapter }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.unknownTenant);
    expect(await rowsOf(gone)).toBe(0);
  }, 300_000);

  it('a file that changes at every taking of the locks stops the run with TSF412 before any node, after three reads', async () => {
    writeFileSync(tenantsFile(), listed);
    let n = 0;
    const locks = locksThatRun(() => writeFileSync(tenantsFile(), `${listed}# edit ${++n}\n`));
    const err = await runWorkspace({ projectDir: demo.dir, command: 'run', tenants: [gone], adapter }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.tenantLocked);
    expect((err as TsformError).message).toMatch(/tenants\.yml, tsform\.yml or the policies changed each of the 3 times/);
    expect(locks.taken()).toBe(3);
    expect(await rowsOf(gone)).toBe(0);
  }, 300_000);
});
