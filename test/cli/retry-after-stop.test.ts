import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { stillRunning } from '../../src/artifacts/run-started.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { cli } from '../support/cli.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { editTenants } from '../support/research-fixture.ts';

/**
 * Red-team, 2026-12-07 (on-call):
 * - a run stopped hard (kill -9, a second Ctrl-C) writes no run_results.json, and `tsform retry`
 *   read the run before it: "nothing to retry" (exit 0) with part of the plan never run. The run
 *   leaves target/run_started.json until its results are written; retry refuses (TSF307) while
 *   it is there, naming the stopped run.
 * - a retry after a practice left tenants.yml stopped as a whole with TSF302 and retried nobody.
 *   The practice is now left out, said so, and the others are retried.
 */
describe('tsform retry after a stop', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(3) });
  });
  afterAll(() => demo.remove());
  const results = () => join(demo.dir, 'target/run_results.json');
  const marker = () => join(demo.dir, 'target/run_started.json');

  it('a run killed before it wrote its results: retry refuses naming it; the next finished run clears that', async () => {
    expect((await cli('build', '--project-dir', demo.dir)).code).toBe(0);
    const finished = readRunResults(results()).run_id;
    expect(existsSync(marker())).toBe(false);
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/tsform.mjs'), 'build', '--project-dir', demo.dir, '--threads', '1', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let killed = false;
    child.stdout.on('data', (b: Buffer) => {
      if (!killed && b.toString().includes('"event":"node"')) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    await new Promise((resolve) => child.on('close', resolve));
    expect(killed).toBe(true);
    expect(readRunResults(results()).run_id).toBe(finished);
    expect(existsSync(marker())).toBe(true);
    const retry = await cli('retry', '--project-dir', demo.dir);
    expect(retry.code).toBe(2);
    expect(retry.err).toContain('TSF307');
    expect(retry.err).toMatch(/the last build \([0-9a-f-]{36}, started at .*\) was stopped before it wrote its results/);
    expect(retry.out.join('\n')).not.toContain('nothing to retry');
    expect((await cli('build', '--project-dir', demo.dir)).code).toBe(0);
    expect(existsSync(marker())).toBe(false);
    expect((await cli('retry', '--project-dir', demo.dir)).out.join('\n')).toContain('nothing to retry');
  }, 300_000);

  it('a practice removed from tenants.yml after an interrupted run is left out of the retry, the others retried', async () => {
    const stop = new AbortController();
    const run = await runWorkspace({ projectDir: demo.dir, command: 'build', threads: 1, signal: stop.signal, onTaskEnd: () => stop.abort() });
    const interrupted = [...new Set(run.results.filter((r) => r.status === 'interrupted' && r.tenant !== null).map((r) => r.tenant!))].sort();
    expect(interrupted.length).toBeGreaterThan(1);
    const [gone, ...kept] = interrupted as [string, ...string[]];
    editTenants(demo.dir, (ts) => ts.filter((t) => t.id !== gone));
    const retry = await cli('retry', '--project-dir', demo.dir);
    expect(retry.err).toContain(`retry: no longer in tenants.yml, not run: ${gone}`);
    expect(retry.err).not.toContain('TSF302');
    expect(retry.code).toBe(0);
    const after = readRunResults(results());
    expect(after.results.filter((r) => r.tenant === gone)).toEqual([]);
    for (const t of kept) expect(after.results.filter((r) => r.tenant === t && r.status === 'success').length).toBeGreaterThan(0);
  }, 300_000);

  it('a marker whose pid is this process, or a process that is not Node (a reused pid), is not a run under way', async () => {
    const marker = (pid: number) => ({ run_id: 'r', command: 'run', started_at: new Date().toISOString(), host: hostname(), pid });
    expect(stillRunning(marker(process.pid))).toBe(false);
    const sleeper = spawn('sleep', ['30']);
    const node = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(stillRunning(marker(sleeper.pid!))).toBe(false);
      expect(stillRunning(marker(node.pid!))).toBe(true);
      expect(stillRunning({ ...marker(node.pid!), host: 'another-host' })).toBe(false);
    } finally {
      sleeper.kill();
      node.kill();
    }
  });
});
