import { spawn } from 'node:child_process';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { summaryOf } from '../../src/cli/progress.ts';
import type { PlannedUnits } from '../../src/plan/units.ts';
import { copyDemoProject, REPO_ROOT, sampleTenants, type DemoCopy } from '../support/demo-project.ts';

/**
 * Issue 15, item 8: Ctrl-C. The run stops starting work, lets running nodes finish, and still
 * writes run_results.json, with `interrupted` for every unit it did not run; the CLI exits 130.
 */
describe('an interrupted run', () => {
  let demo: DemoCopy;
  beforeAll(() => {
    demo = copyDemoProject({ tenants: sampleTenants(4) });
  });
  afterAll(() => demo.remove());

  it('records every unit it did not run as interrupted, and the counts still add up', async () => {
    const stop = new AbortController();
    let planned: PlannedUnits | undefined;
    const run = await runWorkspace({
      projectDir: demo.dir,
      command: 'build',
      threads: 1,
      signal: stop.signal,
      onPlan: (plan, units) => (planned = units),
      // after the first task: everything that has not started yet is interrupted
      onTaskEnd: () => stop.abort(),
    });
    expect(run.interrupted).toBe(true);
    const status = (s: string) => run.results.filter((r) => r.status === s);
    expect(status('success').length).toBeGreaterThan(0);
    expect(status('interrupted').length).toBeGreaterThan(0);
    expect(status('interrupted').every((r) => r.code === 'TSF420')).toBe(true);
    expect(status('error')).toEqual([]);
    const s = summaryOf(run, planned);
    expect(s.success + s.error + s.skipped + s.interrupted + s.not_run).toBe(s.units);
    expect(s.units).toBe(planned!.total);
    const written = readRunResults(join(demo.dir, 'target/run_results.json'));
    expect(written.interrupted).toBe(true);
    expect(written.run_id).toBe(run.run_id);
    // no practice counts as loaded by a run that did not finish it
    expect(Object.values(written.tenants).some((t) => t.status === 'success')).toBe(false);
  });

  it('the CLI: SIGINT exits 130 after writing run_results.json', async () => {
    const target = join(demo.dir, 'target/run_results.json');
    const before = existsSync(target) ? (JSON.parse(readFileSync(target, 'utf8')) as RunResults).run_id : undefined;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/tsform.mjs'), 'build', '--project-dir', demo.dir, '--threads', '1', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let signalled = false;
    child.stdout.on('data', (b: Buffer) => {
      // the first node result: the run is under way
      if (!signalled && b.toString().includes('"event":"node"')) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(signalled).toBe(true);
    expect(code, stderr.slice(-2000)).toBe(130);
    expect(stderr).toContain('SIGINT: stopping');
    const written = readRunResults(target);
    expect(written.run_id).not.toBe(before);
    expect(written.interrupted).toBe(true);
    expect(written.results.some((r) => r.status === 'interrupted')).toBe(true);
  }, 180_000);
});
