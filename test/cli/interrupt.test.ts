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
    // Nothing failed: every unit the run did not reach, the tests of a model it did not build
    // included, is interrupted (what retry reads), not "not run".
    expect(s.not_run).toBe(0);
    expect(status('interrupted').some((r) => r.kind === 'test')).toBe(true);
    // The file says the same as the summary printed.
    const file = JSON.parse(readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8')) as { summary: Record<string, number> };
    expect(file.summary).toMatchObject({ units: s.units, success: s.success, error: s.error, skipped: s.skipped, interrupted: s.interrupted, not_run: s.not_run });
    const written = readRunResults(join(demo.dir, 'target/run_results.json'));
    expect(written.interrupted).toBe(true);
    expect(written.run_id).toBe(run.run_id);
    // no practice counts as loaded by a run that did not finish it
    expect(Object.values(written.tenants).some((t) => t.status === 'success')).toBe(false);
  });

  it('an interrupted `test`: the tests it did not run are interrupted tests, not builds it never planned', async () => {
    const stop = new AbortController();
    let planned: PlannedUnits | undefined;
    const run = await runWorkspace({ projectDir: demo.dir, command: 'test', threads: 1, signal: stop.signal, onPlan: (_p, units) => (planned = units), onTaskEnd: () => stop.abort() });
    expect(run.interrupted).toBe(true);
    expect(run.results.filter((r) => r.kind === 'build')).toEqual([]);
    const s = summaryOf(run, planned);
    expect(s.units).toBe(planned!.total);
    expect(s.interrupted).toBeGreaterThan(0);
    expect(s.not_run).toBe(0);
    const file = JSON.parse(readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8')) as { summary: Record<string, number> };
    expect(file.summary.units).toBe(planned!.total);
  });

  it('the CLI: SIGINT exits 130 after writing run_results.json', async () => {
    const target = join(demo.dir, 'target/run_results.json');
    const before = existsSync(target) ? (JSON.parse(readFileSync(target, 'utf8')) as RunResults).run_id : undefined;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/tsform.mjs'), 'build', '--project-dir', demo.dir, '--threads', '1', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let signalled = false;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
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
    // The summary event on stdout and the file's summary are the same counts.
    const event = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'summary')!;
    const file = JSON.parse(readFileSync(target, 'utf8')) as { summary: Record<string, number> };
    expect(file.summary).toMatchObject({ units: event.units, success: event.success, error: event.error, skipped: event.skipped, interrupted: event.interrupted, not_run: event.not_run });
  }, 180_000);
});
