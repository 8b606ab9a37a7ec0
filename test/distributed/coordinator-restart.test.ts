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
