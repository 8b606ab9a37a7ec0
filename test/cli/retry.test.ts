import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/**
 * Issue 15: `tsform retry` runs again what failed, was skipped or was interrupted in the last
 * run, for the practices it failed for only.
 */

describe('tsform retry', () => {
  let demo: DemoCopy;
  let bad: string;
  let good: string;
  const flaky = (failFor: string | null) =>
    `select practice_id, cast(case when practice_id = '${failFor ?? ''}' then 'not a number' else '1' end as integer) as v from {{ref "stg_providers"}}\n`;
  // Every unit, whichever version wrote the file (version 2 lists only what did not succeed).
  const results = (): RunResults => readRunResults(join(demo.dir, 'target/run_results.json'));

  beforeAll(() => {
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 3) });
    [good, bad] = demo.tenantIds.slice().sort() as [string, string];
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(bad!));
    writeFileSync(join(demo.dir, 'models/marts/flaky_child.sql'), `select practice_id, v from {{ref "flaky"}}\n`);
  });
  afterAll(() => demo.remove());

  it('no run_results.json yet: TSF307 and what to run first', async () => {
    const r = await cli('retry', '--project-dir', demo.dir);
    expect(r.code).toBe(2);
    expect(r.err).toContain('TSF307');
    expect(r.err).toContain('run, seed, test or build first');
  });

  it('re-runs the failed model and its skipped downstream for the failing practice only', async () => {
    const first = await cli('build', '--project-dir', demo.dir, '--select', '+flaky_child', '--log-format', 'json');
    expect(first.code).toBe(1);
    const before = results();
    const failed = before.results.filter((r) => r.status !== 'success');
    expect(new Set(failed.map((r) => r.tenant))).toEqual(new Set([bad]));
    expect(failed.map((r) => `${r.model}:${r.status}`).sort()).toEqual(['flaky:error', 'flaky_child:skipped']);

    // The analyst fixes the model; retry builds it (and its tests, as build does) for that practice only.
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(null));
    const r = await cli('retry', '--project-dir', demo.dir, '--log-format', 'json');
    expect(r.code).toBe(0);
    expect(r.err).toContain('retry: 2 node(s) failed, were skipped or interrupted in the last build');
    expect(r.err).toMatch(/running 2 model\(s\) again for 1 practice\(s\); 2 practice\(s\) that succeeded are not re-run/);
    const after = results();
    expect(after.command).toBe('build');
    const built = after.results.filter((x) => x.kind === 'build');
    expect(built.map((x) => `${x.model}@${x.tenant}`).sort()).toEqual([`flaky@${bad}`, `flaky_child@${bad}`]);
    expect(after.results.every((x) => x.tenant === null || x.tenant === bad)).toBe(true);
    expect(after.results.every((x) => x.status === 'success')).toBe(true);
    expect(good).not.toBe(bad);
  });

  it('a failed model removed since is said so and left out; the rest is retried', async () => {
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(bad));
    expect((await cli('build', '--project-dir', demo.dir, '--select', '+flaky_child', '--log-format', 'json')).code).toBe(1);
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(null));
    const { rmSync } = await import('node:fs');
    rmSync(join(demo.dir, 'models/marts/flaky_child.sql'));
    try {
      const r = await cli('retry', '--project-dir', demo.dir, '--log-format', 'json');
      expect(r.code, r.err).toBe(0);
      expect(r.err).toContain('retry: no longer in the project, not run: flaky_child');
      expect(results().results.filter((x) => x.kind === 'build').map((x) => `${x.model}@${x.tenant}`)).toEqual([`flaky@${bad}`]);
    } finally {
      writeFileSync(join(demo.dir, 'models/marts/flaky_child.sql'), `select practice_id, v from {{ref "flaky"}}\n`);
    }
    expect((await cli('build', '--project-dir', demo.dir, '--select', '+flaky_child', '--log-format', 'json')).code).toBe(0);
  });

  it('after a clean run: nothing to retry, exit 0', async () => {
    const r = await cli('retry', '--project-dir', demo.dir);
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).toContain('nothing to retry: every node of the last build');
  });

  it('an unreadable run_results.json is TSF307, not a crash or a guess', async () => {
    const path = join(demo.dir, 'target/run_results.json');
    for (const text of ['{not json', '{"command": "compile", "results": []}', '{"command": "build"}', 'null']) {
      writeFileSync(path, text);
      const r = await cli('retry', '--project-dir', demo.dir);
      expect(r.code, text).toBe(2);
      expect(r.err, text).toContain('TSF307');
    }
    // Entries it cannot read are passed over; the ones it can are retried.
    writeFileSync(path, JSON.stringify({ command: 'run', results: [null, 7, { model: 'flaky', tenant: bad, status: 'error' }, { model: 'flaky', status: 'weird' }] }));
    const r = await cli('retry', '--project-dir', demo.dir, '--log-format', 'json');
    expect(r.code).toBe(0);
    expect(results().results.filter((x) => x.kind === 'build').map((x) => `${x.model}@${x.tenant}`)).toEqual([`flaky@${bad}`]);
  });
});
