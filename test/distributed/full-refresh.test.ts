import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { runDistributed } from '../../src/cli/coordinator.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { startWorker } from '../support/workers.ts';

/**
 * `tsform run --distributed --full-refresh`: the coordinator drops the per-practice tables once,
 * before any job, and the workers rebuild their practices' slices from the full SELECT. What
 * could break it: a worker dropping a table another worker has written (a job of all
 * practices, or every job), a coordinator restarted mid-refresh dropping the tables again
 * (the practices already rebuilt would be lost), a full refresh resuming an unfinished nightly
 * run of the same selection (its jobs would not refresh), and an incremental model keeping a
 * row its source no longer has.
 */

const RELATIONS = ['staging.stg_encounters', 'staging.stg_patients', 'marts.practice_daily_activity', 'marts.provider_panel', 'marts.practice_patient_roster'];

let server: ThrowawayPostgres;
let demo: DemoCopy;
let reference: Record<string, string[]>;
beforeAll(async () => {
  server = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: sampleTenants(4) });
  const config = join(demo.dir, 'tsform.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, 'batch:\n  size: 1'));
  // What one process builds from scratch: the truth a full refresh must reach.
  const single = await server.createDatabase();
  const one = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(single.url) });
  expect(one.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);
  reference = await snapshot(single.url);
}, 300_000);
afterAll(async () => {
  demo?.remove();
  await server?.stop();
});

const env = (url: string) => ({ ...process.env, TSFORM_PG_URL: url });

async function snapshot(url: string): Promise<Record<string, string[]>> {
  const db = await createPostgresAdapter({ url, poolSize: 1 });
  try {
    const out: Record<string, string[]> = {};
    for (const rel of RELATIONS) out[rel] = (await db.query(`SELECT * FROM ${rel}`)).rows.map((r) => JSON.stringify(r)).sort();
    return out;
  } finally {
    await db.close();
  }
}

/** A row no source has, in every practice's slice of the incremental stg_encounters: only a rebuild removes it. */
async function plantStaleRows(url: string): Promise<number> {
  const db = await createPostgresAdapter({ url, poolSize: 1 });
  try {
    const r = await db.query(
      `INSERT INTO staging.stg_encounters SELECT * FROM staging.stg_encounters e
        WHERE e.encounter_id IN (SELECT min(encounter_id) FROM staging.stg_encounters GROUP BY practice_id)`,
    );
    await db.query(`UPDATE staging.stg_encounters SET encounter_id = 'stale-' || encounter_id WHERE ctid IN (SELECT max(ctid) FROM staging.stg_encounters GROUP BY practice_id)`);
    return r.rowsChanged;
  } finally {
    await db.close();
  }
}

async function staleCount(url: string): Promise<number> {
  const db = await createPostgresAdapter({ url, poolSize: 1 });
  try {
    return Number((await db.query(`SELECT count(*) AS n FROM staging.stg_encounters WHERE encounter_id LIKE 'stale-%'`)).rows[0]!.n);
  } finally {
    await db.close();
  }
}

const failures = (run: { results: { status: string; node: string; code?: string }[] }) => run.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code}`);

describe('tsform run --distributed --full-refresh', () => {
  it('rebuilds every practice as one process builds from scratch; a nightly run keeps the stale rows, the full refresh removes them', async () => {
    const db = await server.createDatabase();
    const w1 = startWorker(demo.dir, 'a', db.url, ['--exit-when-idle', '6']);
    expect(failures(await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) }, { pollMs: 100 }))).toEqual([]);
    await w1.exited;
    expect(await plantStaleRows(db.url)).toBe(demo.tenantIds.length);

    const w2 = startWorker(demo.dir, 'b', db.url, ['--exit-when-idle', '6']);
    expect(failures(await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) }, { pollMs: 100 }))).toEqual([]);
    await w2.exited;
    expect(await staleCount(db.url)).toBe(demo.tenantIds.length);

    const workers = [startWorker(demo.dir, 'c', db.url, ['--exit-when-idle', '6']), startWorker(demo.dir, 'd', db.url, ['--exit-when-idle', '6'])];
    const refresh = await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), fullRefresh: true }, { pollMs: 100 });
    await Promise.all(workers.map((w) => w.exited));
    expect(failures(refresh)).toEqual([]);
    // a full refresh opens its own run: it did not resume (and skip) a nightly run of the same selection
    expect(refresh.notices?.some((n) => /resumed distributed run/.test(n)) ?? false).toBe(false);
    expect(await staleCount(db.url)).toBe(0);
    expect(await snapshot(db.url)).toEqual(reference);
    const jobs = workers.flatMap((w) => w.events.filter((e) => e.kind === 'job_end'));
    expect(jobs.length).toBe(demo.tenantIds.length);
  }, 600_000);

  it('a coordinator stopped mid-refresh and started again does not drop what the first one rebuilt', async () => {
    const db = await server.createDatabase();
    const w1 = startWorker(demo.dir, 'e', db.url, ['--exit-when-idle', '6']);
    expect(failures(await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) }, { pollMs: 100 }))).toEqual([]);
    await w1.exited;
    await plantStaleRows(db.url);

    const worker = startWorker(demo.dir, 'f', db.url, ['--exit-when-idle', '10']);
    const stop = new AbortController();
    let completed = 0;
    const first = await runDistributed(
      { projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), fullRefresh: true, signal: stop.signal },
      { pollMs: 100, queueDepth: 1, onJob: (e) => e.state === 'completed' && ++completed === 2 && stop.abort() },
    );
    expect(first.interrupted).toBe(true);
    const again = await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), fullRefresh: true }, { pollMs: 100 });
    await worker.exited;
    expect(again.notices?.some((n) => /resumed distributed run/.test(n))).toBe(true);
    expect(failures(again)).toEqual([]);
    // Had the second coordinator dropped the tables again, the practices of the first two jobs
    // (not run again) would be missing here.
    expect(await snapshot(db.url)).toEqual(reference);
    const starts = worker.events.filter((e) => e.kind === 'job_start').map((e) => (e.kind === 'job_start' ? e.job : ''));
    expect(new Set(starts).size).toBe(starts.length);
    expect(starts.length).toBe(demo.tenantIds.length);
  }, 600_000);
});
