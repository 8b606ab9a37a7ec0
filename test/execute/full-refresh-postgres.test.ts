import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayDatabase, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * `--full-refresh` on PostgreSQL creates the per-practice tables again, and PostgreSQL refuses
 * to drop a table a view reads: the demo's own view `marts.practice_patient_roster` made every
 * full refresh of the demo fail. A table that views the run rebuilds read keeps its relation
 * when its shape is unchanged (so the views are never dropped), and is dropped with them when
 * it changed; a view the run does not rebuild (not selected, or not tsform's, or a view over
 * such a view) refuses the refresh with TSF310 before anything is dropped.
 */

let server: ThrowawayPostgres;
let demo: DemoCopy;
let db: ThrowawayDatabase;
const env = () => ({ ...process.env, TSFORM_PG_URL: db.url });

beforeAll(async () => {
  server = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: sampleTenants(2) });
  db = await server.createDatabase();
  const run = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env() });
  expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
}, 300_000);
afterAll(async () => {
  demo?.remove();
  await server?.stop();
});

async function sql<T = Record<string, unknown>>(text: string): Promise<T[]> {
  const a = await createPostgresAdapter({ url: db.url, poolSize: 1 });
  try {
    return (await a.query(text)).rows as T[];
  } finally {
    await a.close();
  }
}

const count = async (rel: string) => Number((await sql<{ n: unknown }>(`SELECT count(*) AS n FROM ${rel}`))[0]!.n);
const oidOf = async (rel: string) => String((await sql<{ o: unknown }>(`SELECT '${rel}'::regclass::oid AS o`))[0]!.o);

describe('--full-refresh on PostgreSQL with views over the rebuilt tables', () => {
  it('a whole-project full refresh rebuilds the tables and the view that reads them', async () => {
    const before = {
      roster: await count('marts.practice_patient_roster'),
      patients: await count('staging.stg_patients'),
      table: await oidOf('staging.stg_patients'),
      activity: await oidOf('marts.practice_daily_activity'),
    };
    expect(before.roster).toBeGreaterThan(0);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), fullRefresh: true });
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    expect(await count('marts.practice_patient_roster')).toBe(before.roster);
    expect(await count('staging.stg_patients')).toBe(before.patients);
    // A table views read keeps its relation when its shape is unchanged (the views over it are
    // never dropped: see the last case); one that no view reads is created again.
    expect(await oidOf('staging.stg_patients')).toBe(before.table);
    expect(await oidOf('marts.practice_daily_activity')).not.toBe(before.activity);
  }, 300_000);

  it('refuses (TSF310) when the view that reads a table is not part of the run, and drops nothing', async () => {
    const table = await oidOf('staging.stg_patients');
    const err = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), fullRefresh: true, select: ['stg_patients'] }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code).toBe('TSF310');
    expect(err?.message).toContain('marts.practice_patient_roster (reads staging.stg_patients)');
    expect(await oidOf('staging.stg_patients')).toBe(table);
    expect(await count('marts.practice_patient_roster')).toBeGreaterThan(0);
    // selecting the view too is what the message asks for, and works
    const ok = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), fullRefresh: true, select: ['stg_patients+'] });
    expect(ok.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    expect(await oidOf('staging.stg_patients')).toBe(table);
  }, 300_000);

  it("refuses for a view that is not tsform's, directly or through another view, and drops nothing", async () => {
    await sql(`CREATE VIEW public.analyst_encounters AS SELECT practice_id, count(*) AS n FROM staging.stg_encounters GROUP BY practice_id`);
    await sql(`CREATE VIEW public.analyst_roster_sizes AS SELECT count(*) AS n FROM marts.practice_patient_roster`);
    const tables = { encounters: await oidOf('staging.stg_encounters'), patients: await oidOf('staging.stg_patients') };
    const err = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), fullRefresh: true }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code).toBe('TSF310');
    expect(err?.message).toContain('public.analyst_encounters (reads staging.stg_encounters)');
    // through the roster view, which the run would rebuild, to a view it would not
    expect(err?.message).toContain('public.analyst_roster_sizes (reads staging.stg_');
    expect(await oidOf('staging.stg_encounters')).toBe(tables.encounters);
    expect(await oidOf('staging.stg_patients')).toBe(tables.patients);
    expect(await count('public.analyst_roster_sizes')).toBe(1);
  }, 300_000);

  it('a view another session is creating while the refresh checks is seen and refuses it; it is never dropped unseen by the CASCADE', async () => {
    await sql(`DROP VIEW IF EXISTS public.analyst_roster_sizes`);
    await sql(`DROP VIEW IF EXISTS public.analyst_encounters`);
    const table = await oidOf('staging.stg_patients');
    // Session B creates a view over stg_patients and keeps its transaction open: the refresh
    // starts while the view is not yet visible to anyone. The whole-project refresh rebuilds the
    // roster view, so it drops stg_patients with CASCADE: B's view would go with it unchecked.
    const b = await createPostgresAdapter({ url: db.url, poolSize: 1 });
    let commitB!: () => void;
    const gate = new Promise<void>((r) => (commitB = r));
    let created!: () => void;
    const viewCreated = new Promise<void>((r) => (created = r));
    const sessionB = b.transaction(async (s) => {
      await s.query(`CREATE VIEW public.late_reader AS SELECT count(*) AS n FROM staging.stg_patients`);
      created();
      await gate;
    });
    try {
      await viewCreated;
      const refresh = runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), fullRefresh: true }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message?: string },
      );
      // the refresh reaches its drop step (describing and planning take a moment), then B commits
      await new Promise((r) => setTimeout(r, 3000));
      commitB();
      await sessionB;
      const err = await refresh;
      expect(err?.code).toBe('TSF310');
      expect(err?.message).toContain('public.late_reader (reads staging.stg_patients)');
      expect(await count('public.late_reader')).toBe(1);
      expect(await oidOf('staging.stg_patients')).toBe(table);
    } finally {
      commitB();
      await sessionB.catch(() => undefined);
      await b.close();
      await sql(`DROP VIEW IF EXISTS public.late_reader`);
    }
  }, 300_000);

  it('the view over a refreshed table is never missing while the refresh runs (its readers see it throughout)', async () => {
    // The refresh used to drop stg_patients with CASCADE at its first write and the roster view
    // with it, until the view's own step ran (or for good, had the run stopped in between).
    const watcher = await createPostgresAdapter({ url: db.url, poolSize: 1 });
    let running = true;
    let looks = 0;
    let missing = 0;
    const watch = (async () => {
      while (running) {
        const { rows } = await watcher.query(`SELECT to_regclass('marts.practice_patient_roster') IS NULL AS gone`);
        looks++;
        if (rows[0]?.gone === true) missing++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const table = await oidOf('staging.stg_patients');
    try {
      const run = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(), fullRefresh: true });
      expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
    } finally {
      running = false;
      await watch;
      await watcher.close();
    }
    expect(looks).toBeGreaterThan(10);
    expect(missing).toBe(0);
    expect(await oidOf('staging.stg_patients')).toBe(table);
  }, 300_000);
});
