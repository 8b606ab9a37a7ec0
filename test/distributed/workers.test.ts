import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { runDistributed } from '../../src/cli/coordinator.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayDatabase, type ThrowawayPostgres } from '../support/postgres.ts';
import { startWorker as startWorkerOn, type WorkerProcess } from '../support/workers.ts';

/**
 * `tsform run --distributed` with `tsform worker` processes on a throwaway PostgreSQL: the same
 * warehouse as one process builds, every practice completed once even when a worker is killed
 * with -9 mid-job, no two workers writing one practice at once (recorded from the workers'
 * own job events and asserted), and a `--pool backfill` worker serving only that pool.
 */

const RELATIONS = ['marts.practice_daily_activity', 'marts.provider_panel', 'marts.practice_claims_outstanding', 'marts.practice_chronic_panel', 'staging.stg_encounters', 'staging.stg_patients'];

let server: ThrowawayPostgres;
let demo: DemoCopy;
let backfill: string[];

beforeAll(async () => {
  server = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: sampleTenants(9) });
  // small batches so that there are many jobs; two practices in the backfill pool
  const config = join(demo.dir, 'tsform.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, 'batch:\n  size: 2'));
  backfill = [...demo.tenantIds].sort().slice(-2);
  const tenantsFile = join(demo.dir, 'tenants.yml');
  let yml = readFileSync(tenantsFile, 'utf8');
  for (const id of backfill) yml = yml.replace(new RegExp(`(- id: ${id}\\n(?:    .*\\n)*?    pool: )steady`), '$1backfill');
  writeFileSync(tenantsFile, yml);
}, 120_000);
afterAll(async () => {
  demo?.remove();
  await server?.stop();
});

async function rowsOf(url: string, relation: string): Promise<string[]> {
  const db = await createPostgresAdapter({ url, poolSize: 1 });
  try {
    const { rows } = await db.query(`SELECT * FROM ${relation}`);
    return rows.map((r) => JSON.stringify(r)).sort();
  } finally {
    await db.close();
  }
}

describe('tsform run --distributed with worker processes', () => {
  let single: ThrowawayDatabase;
  let distributed: ThrowawayDatabase;
  let workers: WorkerProcess[];

  it('builds the demo exactly as one process does, every practice once, with one worker killed -9 mid-job', async () => {
    single = await server.createDatabase();
    distributed = await server.createDatabase();
    const one = await runWorkspace({ projectDir: demo.dir, command: 'run', target: 'postgres', env: { ...process.env, TSFORM_PG_URL: single.url } });
    expect(one.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code}`)).toEqual([]);

    const startWorker = (id: string, url: string, args: string[]) => startWorkerOn(demo.dir, id, url, ['--exit-when-idle', '6', ...args]);
    workers = [
      startWorker('w1', distributed.url, ['--pool', 'steady']),
      startWorker('w2', distributed.url, ['--pool', 'steady']),
      startWorker('w3', distributed.url, ['--pool', 'steady']),
      startWorker('wb', distributed.url, ['--pool', 'backfill']),
    ];
    let killedAt: number | undefined;
    const victim = workers[1]!;
    const watch = setInterval(() => {
      if (killedAt === undefined && victim.events.some((e) => e.kind === 'job_start')) {
        victim.child.kill('SIGKILL');
        killedAt = Date.now();
      }
    }, 20);
    const requeued: string[] = [];
    let run;
    try {
      run = await runDistributed(
        { projectDir: demo.dir, command: 'run', target: 'postgres', env: { ...process.env, TSFORM_PG_URL: distributed.url } },
        { pollMs: 100, onJob: (e) => e.state === 'requeued' && requeued.push(e.job) },
      );
    } finally {
      clearInterval(watch);
    }
    await Promise.all(workers.map((w) => w.exited));
    // a job a worker failed is offered again; say why, for whoever reads a failure here
    for (const w of workers) for (const e of w.events) if (e.kind === 'job_failed') console.warn(`${w.id} failed job ${e.job}: ${e.message}`);

    expect(killedAt, 'a worker was killed mid-job').toBeDefined();
    expect(requeued.length, 'the dead worker\'s job was offered again').toBeGreaterThanOrEqual(1);
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.code} ${r.message}`)).toEqual([]);
    // every node of every practice exactly once, as in the single-process run
    const nodes = (results: { node: string; kind: string }[]) => results.map((r) => `${r.kind}:${r.node}`).sort();
    expect(nodes(run.results)).toEqual(nodes(one.results));
    for (const rel of RELATIONS) {
      const [a, b] = [await rowsOf(single.url, rel), await rowsOf(distributed.url, rel)];
      expect(a.length, rel).toBeGreaterThan(0);
      expect(b.length === a.length && b.every((r, i) => r === a[i]), `${rel}: ${b.length} rows distributed, ${a.length} in one process`).toBe(true);
    }

    // no two workers ever ran one practice at once (the killed job's interval ends at the kill)
    const intervals = new Map<string, { worker: string; from: number; to: number }[]>();
    for (const w of workers) {
      for (const start of w.events.filter((e) => e.kind === 'job_start')) {
        const end = w.events.find((e) => (e.kind === 'job_end' || e.kind === 'job_failed') && e.job === start.job);
        const to = end && (end.kind === 'job_end' || end.kind === 'job_failed') ? end.at : w === victim ? killedAt! : Number.POSITIVE_INFINITY;
        for (const t of start.kind === 'job_start' ? start.tenants : []) {
          const list = intervals.get(t) ?? [];
          list.push({ worker: w.id, from: start.kind === 'job_start' ? start.at : 0, to });
          intervals.set(t, list);
        }
      }
    }
    const overlaps: string[] = [];
    for (const [tenant, list] of intervals) {
      for (const a of list) for (const b of list) if (a !== b && a.from < b.to && b.from < a.to) overlaps.push(`${tenant}: ${a.worker} and ${b.worker}`);
    }
    expect(overlaps, JSON.stringify(workers.map((w) => ({ id: w.id, events: w.events.filter((e) => e.kind !== 'ready').map((e) => ({ ...e, tenants: undefined })) })))).toEqual([]);
    expect(intervals.size).toBe(demo.tenantIds.length);
  }, 600_000);

  it('gave the backfill pool\'s practices to the --pool backfill worker only, and nothing else to it', () => {
    const wb = workers.find((w) => w.id === 'wb')!;
    const served = wb.events.flatMap((e) => (e.kind === 'job_start' ? e.tenants : []));
    // a job a worker failed may come back to the same worker: count practices, not jobs
    expect([...new Set(served)].sort()).toEqual([...backfill].sort());
    for (const w of workers.filter((x) => x.id !== 'wb')) {
      const took = w.events.flatMap((e) => (e.kind === 'job_start' ? e.tenants : []));
      expect(took.filter((t) => backfill.includes(t)), w.id).toEqual([]);
    }
  });
});
