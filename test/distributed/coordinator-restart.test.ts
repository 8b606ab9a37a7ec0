import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { runDistributed } from '../../src/cli/coordinator.ts';
import { readRetryPlan } from '../../src/cli/retry.ts';
import type { PlannedUnits } from '../../src/plan/units.ts';
import { spawnTsform } from '../support/cli-child.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/wait-for.ts';
import { startWorker, type WorkerProcess } from '../support/workers.ts';

/**
 * A distributed run whose coordinator stopped (Ctrl-C, kill -9) and what the next coordinator
 * makes of it. What could pass old work off as new: a run resumed however long ago it stopped
 * (the results of its completed jobs reported as this run's, a source changed since not built),
 * the queued jobs of a run nobody will finish taken by workers of a changed project (refused,
 * TSF461, and the workers stop), two coordinators started together opening two runs. And what
 * could hide work not done: the steps an interrupted run never reached missing from
 * run_results.json, so that `tsform retry` finds nothing to do.
 */

let server: ThrowawayPostgres;
beforeAll(async () => {
  server = await startThrowawayPostgres();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

const env = (url: string) => ({ ...process.env, TSFORM_PG_URL: url });

/** The demo with 2-practice batches: 3 jobs for its 6 practices. */
function demoCopy(): DemoCopy {
  const demo = copyDemoProject({ tenants: sampleTenants(3) });
  const config = join(demo.dir, 'tsform.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, 'batch:\n  size: 2'));
  return demo;
}

async function sql(url: string, text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows;
  } finally {
    await c.end();
  }
}

/**
 * A worker started when the coordinator sends its first job: its idle time counts from there,
 * never from a plan and seed steps slowed by a loaded machine.
 */
function workerOnFirstJob(dir: string, id: string, url: string, idleSeconds = 5) {
  let worker: WorkerProcess | undefined;
  return {
    onJob: (e: { state: string }) => void (e.state === 'sent' && (worker ??= startWorker(dir, id, url, ['--exit-when-idle', String(idleSeconds)]))),
    get worker(): WorkerProcess {
      if (!worker) throw new Error(`worker ${id} never started: no job was sent`);
      return worker;
    },
    started: () => worker !== undefined,
  };
}

const failures = (run: RunResults) => run.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code}`);
const jobStarts = (w: WorkerProcess) => w.events.flatMap((e) => (e.kind === 'job_start' ? [e.job] : []));

describe('an interrupted distributed run', () => {
  it('records every step it did not run as interrupted (TSF420), counted in the units it announced, so that retry runs them', async () => {
    const demo = demoCopy();
    try {
      const db = await server.createDatabase();
      const w = workerOnFirstJob(demo.dir, 'w', db.url);
      const stop = new AbortController();
      let planned: PlannedUnits | undefined;
      const run = await runDistributed(
        { projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), signal: stop.signal, onPlan: (_plan, units) => (planned = units) },
        { pollMs: 100, queueDepth: 1, onJob: (e) => (w.onJob(e), e.state === 'completed' && stop.abort()) },
      );
      await w.worker.exited;
      expect(run.interrupted).toBe(true);
      expect(planned, 'the run announced its units').toBeDefined();
      // every unit it announced has a result: none is left out of the summary
      expect(run.results.length).toBe(planned!.total);
      const byNode = new Map<string, NodeResult>(run.results.map((r) => [r.node, r]));
      for (const once of ['practice_patient_roster', 'privacy:leak_scan']) {
        expect(byNode.get(once), once).toMatchObject({ status: 'interrupted', code: 'TSF420' });
      }
      expect(run.results.some((r) => r.model.startsWith('research_') && r.status === 'interrupted')).toBe(true);
      // the practices of the job never sent are interrupted, not missing
      const interruptedPractices = new Set(run.results.filter((r) => r.tenant !== null && r.status === 'interrupted').map((r) => r.tenant));
      expect(interruptedPractices.size).toBeGreaterThan(0);
      expect(new Set(run.results.filter((r) => r.tenant !== null).map((r) => r.tenant)).size).toBe(demo.tenantIds.length);

      const retry = readRetryPlan(join(demo.dir, 'target'));
      expect(retry.nodes).toContain('practice_patient_roster');
      expect(retry.global).toBe(true);
    } finally {
      demo.remove();
    }
  }, 300_000);
});

describe('a coordinator started again', () => {
  it('long after the last one stopped starts a fresh run: no old result is reported, the changed source is built', async () => {
    const demo = demoCopy();
    try {
      const db = await server.createDatabase();
      const first = workerOnFirstJob(demo.dir, 'before', db.url, 3);
      const stop = new AbortController();
      const interrupted = await runDistributed(
        { projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), signal: stop.signal },
        { pollMs: 100, queueDepth: 1, onJob: (e) => (first.onJob(e), e.state === 'completed' && stop.abort()) },
      );
      await first.worker.exited;
      expect(interrupted.interrupted).toBe(true);
      const ran = await sql(db.url, 'SELECT DISTINCT practice_id FROM staging.stg_providers');
      const practice = String(ran[0]!.practice_id);

      // A day passes; a provider of a practice the first run built is deleted at the source.
      const providers = join(demo.dir, 'data/ehr/providers.csv.gz');
      const lines = gunzipSync(readFileSync(providers)).toString('utf8').split('\n');
      const gone = lines.findIndex((l) => l.startsWith(`${practice},`));
      const goneId = lines[gone]!.split(',')[1]!;
      writeFileSync(providers, gzipSync(lines.filter((_, i) => i !== gone).join('\n')));
      await sql(db.url, "UPDATE tsform_queue.tsform_runs SET started_at = now() - interval '1 day'");
      await sql(db.url, "UPDATE tsform_queue.tsform_runs SET last_seen_at = now() - interval '1 day'").catch(() => undefined);

      const after = workerOnFirstJob(demo.dir, 'after', db.url);
      const sent = new Set<string>();
      const again = await runDistributed(
        { projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) },
        { pollMs: 100, onJob: (e) => (after.onJob(e), e.state === 'sent' && sent.add(e.job)) },
      );
      const worker = after.worker;
      await worker.exited;
      expect(again.notices?.some((n) => /resumed distributed run/.test(n)) ?? false).toBe(false);
      expect(again.notices?.some((n) => /closed 1 unfinished distributed run/.test(n))).toBe(true);
      expect(failures(again)).toEqual([]);
      // every job of this run ran in it: none was passed off from the old one
      expect(new Set(jobStarts(worker))).toEqual(sent);
      expect(again.results.filter((r) => r.notes?.some((n) => /ended before its coordinator restarted/.test(n)))).toEqual([]);
      expect(await sql(db.url, 'SELECT 1 FROM staging.stg_providers WHERE practice_id = $1 AND provider_id = $2', [practice, goneId])).toEqual([]);
      const open = await sql(db.url, 'SELECT run_id FROM tsform_queue.tsform_runs WHERE finished_at IS NULL');
      expect(open).toEqual([]);
      // --resume of a run that is not an unfinished run of this project is refused before anything runs
      const closed = await sql(db.url, "SELECT run_id::text AS id FROM tsform_queue.tsform_runs WHERE outcome = 'abandoned'");
      expect(closed.length).toBe(1);
      await expect(runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) }, { pollMs: 100, resume: String(closed[0]!.id) })).rejects.toThrow(/not an unfinished distributed run/);
    } finally {
      demo.remove();
    }
  }, 300_000);

  it('after one killed -9, for a changed tenants.yml: the dead run is closed and its queued jobs cancelled, no worker is handed one', async () => {
    const demo = demoCopy();
    try {
      const db = await server.createDatabase();
      // No worker yet: the killed coordinator's jobs stay queued.
      const killed = spawnTsform(['run', '--project-dir', demo.dir, '--target', 'postgres', '--distributed'], env(db.url), 'never printed');
      await waitFor('a job sent by the first coordinator', () => / sent: /.test(killed.output()), { withinMs: 120_000, everyMs: 100 });
      killed.kill();
      await killed.exited;
      const queued = await sql(db.url, "SELECT id FROM tsform_queue.job WHERE state = 'created'");
      expect(queued.length).toBeGreaterThan(0);

      const tenantsFile = join(demo.dir, 'tenants.yml');
      const doc = parse(readFileSync(tenantsFile, 'utf8')) as { tenants: { id: string }[] };
      doc.tenants = doc.tenants.slice(1);
      writeFileSync(tenantsFile, stringify(doc));

      const stop = new AbortController();
      const fresh = workerOnFirstJob(demo.dir, 'fresh', db.url);
      const coordinator = runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), signal: stop.signal }, { pollMs: 100, onJob: fresh.onJob });
      await waitFor('a worker', fresh.started, { withinMs: 120_000, everyMs: 100 });
      const worker = fresh.worker;
      // A worker handed the old run's job refuses it (TSF461) and stops: the run would never end.
      const outcome = await Promise.race([coordinator.then(() => 'run finished'), worker.exited.then((code) => `worker exited ${code}: ${worker.stderr().slice(0, 300)}`)]);
      if (outcome !== 'run finished') stop.abort();
      expect(outcome).toBe('run finished');
      const run = await coordinator;
      expect(await worker.exited).toBe(0);
      expect(failures(run)).toEqual([]);
      expect(run.notices?.some((n) => /resumed distributed run/.test(n)) ?? false).toBe(false);
      const left = await sql(db.url, "SELECT state::text FROM tsform_queue.job WHERE id = ANY($1::uuid[])", [queued.map((q) => q.id)]);
      expect(left.map((r) => r.state)).toEqual(queued.map(() => 'cancelled'));
      expect(await sql(db.url, 'SELECT run_id FROM tsform_queue.tsform_runs WHERE finished_at IS NULL')).toEqual([]);

      // A job active when its coordinator died is not cancelled; its worker gone too, the queue
      // hands it out again once it expires: a worker now, of the changed project, skips it (TSF462)
      // instead of refusing it as another project's and stopping (TSF461).
      await sql(db.url, "UPDATE tsform_queue.job SET state = 'created', completed_on = NULL WHERE id = ANY($1::uuid[])", [queued.map((q) => q.id)]);
      const late = startWorker(demo.dir, 'late', db.url, ['--exit-when-idle', '3']);
      expect(await late.exited).toBe(0);
      const skipped = await sql(db.url, "SELECT state::text AS state, output->'error'->>'code' AS code FROM tsform_queue.job WHERE id = ANY($1::uuid[])", [queued.map((q) => q.id)]);
      expect(skipped).toEqual(queued.map(() => ({ state: 'failed', code: 'TSF462' })));
    } finally {
      demo.remove();
    }
  }, 300_000);

  it('while another coordinator of the same selection runs joins its run: every job runs once', async () => {
    const demo = demoCopy();
    try {
      const db = await server.createDatabase();
      const shared = workerOnFirstJob(demo.dir, 'shared', db.url, 8);
      const request = { projectDir: demo.dir, command: 'run' as const, target: 'postgres', env: env(db.url) };
      const sent = [new Set<string>(), new Set<string>()];
      const options = (i: number) => ({ pollMs: 100, onJob: (e: { job: string; state: string }) => (shared.onJob(e), e.state === 'sent' && sent[i]!.add(e.job)) });
      const [a, b] = await Promise.all([runDistributed(request, options(0)), runDistributed(request, options(1))]);
      const worker = shared.worker;
      await worker.exited;
      expect(failures(a)).toEqual([]);
      expect(failures(b)).toEqual([]);
      const starts = jobStarts(worker);
      expect(new Set(starts).size).toBe(starts.length);
      // one run: both coordinators fed the same jobs, each ran once
      expect(sent[0]).toEqual(sent[1]);
      expect(new Set(starts)).toEqual(sent[0]);
      expect([...(a.notices ?? []), ...(b.notices ?? [])].filter((n) => /joined distributed run/.test(n)).length).toBe(1);
    } finally {
      demo.remove();
    }
  }, 300_000);
});
