import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDistributed } from '../../src/cli/coordinator.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { startWorker } from '../support/workers.ts';

/**
 * What a distributed run does with bad input: a worker of another compiled project refuses the
 * job (TSF461) and stops, and the job goes to a worker that matches; a worker that cannot reach
 * the warehouse retries with backoff and then says so; a coordinator stopped mid-run and started
 * again resumes its run without running a practice twice.
 */

let server: ThrowawayPostgres;
let demo: DemoCopy;
beforeAll(async () => {
  server = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: sampleTenants(3) });
  const config = join(demo.dir, 'tsform.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/batch:\n  size: \d+/, 'batch:\n  size: 2'));
}, 120_000);
afterAll(async () => {
  demo?.remove();
  await server?.stop();
});

const env = (url: string) => ({ ...process.env, TSFORM_PG_URL: url });

describe('distributed runs with bad input', () => {
  it('a worker whose project differs refuses the job and stops; a matching worker runs it', async () => {
    const db = await server.createDatabase();
    const stale = startWorker(demo.dir, 'stale', db.url, ['--exit-when-idle', '30'], (dir) => appendFileSync(join(dir, 'models/marts/practice_daily_activity.sql'), '\n-- edited on this checkout only\n'));
    const coordinator = runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) }, { pollMs: 100 });
    expect(await stale.exited).toBe(2);
    expect(stale.stderr()).toMatch(/TSF461.*planned with tsform .* and project [0-9a-f]{16}: refused/);
    const good = startWorker(demo.dir, 'good', db.url, ['--exit-when-idle', '5']);
    const run = await coordinator;
    await good.exited;
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code}`)).toEqual([]);
    expect(good.events.filter((e) => e.kind === 'job_end').length).toBeGreaterThan(0);
  }, 300_000);

  it('a run planned with --vars is taken by a worker, which compiles the project with the job\'s vars', async () => {
    const db = await server.createDatabase();
    const worker = startWorker(demo.dir, 'vars', db.url, ['--exit-when-idle', '8']);
    const run = await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), vars: { panel_months: 6 }, select: ['+provider_panel'] }, { pollMs: 100 });
    expect(await worker.exited).toBe(0);
    expect(worker.stderr()).not.toMatch(/TSF461/);
    expect(run.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code}`)).toEqual([]);
    expect(worker.events.filter((e) => e.kind === 'job_end').length).toBeGreaterThan(0);
  }, 300_000);

  it('a worker that cannot reach the warehouse retries with backoff, then stops with the reason', async () => {
    // a port nothing listens on
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const url = `postgres://tsform:secret-pw@127.0.0.1:${port}/none`;
    const w = startWorker(demo.dir, 'offline', url, ['--connect-timeout', '3']);
    expect(await w.exited).not.toBe(0);
    const retries = w.events.filter((e) => e.kind === 'retrying');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(w.stderr()).toMatch(/127\.0\.0\.1/);
    // the password is never printed
    expect(`${w.stderr()}${JSON.stringify(w.events)}`).not.toContain('secret-pw');
  }, 120_000);

  it('a coordinator stopped mid-run and started again resumes it: nothing runs twice', async () => {
    const db = await server.createDatabase();
    const worker = startWorker(demo.dir, 'steady', db.url, ['--exit-when-idle', '8']);
    const stop = new AbortController();
    const first = await runDistributed(
      { projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url), signal: stop.signal },
      { pollMs: 100, queueDepth: 1, onJob: (e) => e.state === 'completed' && stop.abort() },
    );
    expect(first.interrupted).toBe(true);
    const again = await runDistributed({ projectDir: demo.dir, command: 'run', target: 'postgres', env: env(db.url) }, { pollMs: 100 });
    await worker.exited;
    expect(again.notices?.some((n) => /resumed distributed run/.test(n))).toBe(true);
    expect(again.results.filter((r) => r.status !== 'success').map((r) => `${r.node} ${r.code}`)).toEqual([]);
    const practiceNodes = again.results.filter((r) => r.tenant !== null).map((r) => `${r.kind}:${r.node}`);
    expect(new Set(practiceNodes).size).toBe(practiceNodes.length);
    expect(new Set(again.results.filter((r) => r.tenant !== null).map((r) => r.tenant)).size).toBe(demo.tenantIds.length);
    // every job ran once, on the one worker, across both coordinators
    const starts = worker.events.filter((e) => e.kind === 'job_start').map((e) => (e.kind === 'job_start' ? e.job : ''));
    expect(new Set(starts).size).toBe(starts.length);
  }, 300_000);
});
