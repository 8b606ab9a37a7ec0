import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import type { NodeResult, RunResults } from '../../src/artifacts/run-results.ts';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/cli.ts';

/**
 * `tsform retry` after a run where global steps read a failed practice's last good slice
 * (use_last_good, `stale_tenants`): the retry builds them again after that practice, and its
 * run_results.json says what they read. A red-team report: the retry rebuilt the practice only,
 * the published global kept the old slice and the new run_results.json no longer said so.
 */
describe('tsform retry and global steps built on a stale practice', () => {
  let demo: DemoCopy;
  let bad: string;
  const flaky = (failFor: string | null) =>
    `select practice_id, cast(case when practice_id = '${failFor ?? ''}' then 'not a number' else '1' end as integer) as v from {{ref "stg_providers"}}\n`;
  const results = (): RunResults => readRunResults(join(demo.dir, 'target/run_results.json'));
  const built = (run: RunResults) => run.results.filter((r) => r.kind === 'build');
  const byNode = (run: RunResults) => new Map<string, NodeResult>(built(run).map((r) => [r.node, r]));
  const globalPractices = async () => {
    const duck = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      const { rows } = await duck.query('SELECT practices, doubled FROM "pseudo"."flaky_total_twice"');
      return { practices: Number(rows[0]!.practices), doubled: Number(rows[0]!.doubled) };
    } finally {
      await duck.close();
    }
  };
  const selection = ['--select', '+flaky_total_twice', '+flaky_view'];

  beforeAll(() => {
    demo = copyDemoProject({
      tenants: (ids) => [...ids].sort().slice(0, 3),
      files: {
        'models/marts/flaky.sql': '',
        // Counts only, pseudonymized, so that a global model may read it.
        'models/marts/flaky_counts.sql': `{{config pseudonymized=true schema="pseudo"}}\nselect practice_id, count(*) as providers from {{ref "flaky"}} group by practice_id\n`,
        'models/marts/_flaky.yml': `models:\n  - name: flaky\n    columns:\n      - { name: practice_id, phi: none }\n      - { name: v, phi: none }\n  - name: flaky_view\n    columns:\n      - { name: practice_id, phi: none, tests: [not_null] }\n`,
        'models/marts/flaky_total.sql': `{{config scope="global" schema="pseudo"}}\nselect count(*) as practices from {{ref "flaky_counts"}}\n`,
        // A global step reading a global step: two steps from the practice's slice.
        'models/marts/flaky_total_twice.sql': `{{config scope="global" schema="pseudo"}}\nselect practices, practices * 2 as doubled from {{ref "flaky_total"}}\n`,
        // A view over every practice runs once too; its tests run per practice.
        'models/marts/flaky_view.sql': `{{config materialized="view"}}\nselect practice_id, v from {{ref "flaky"}}\n`,
      },
    });
    bad = [...demo.tenantIds].sort()[1]!;
  });
  // The vault's person tokens, which every pseudonymized model checks its rows against.
  beforeAll(async () => {
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(null));
    const r = await cli('build', '--project-dir', demo.dir, '--select', '+pseudo_persons', '--log-format', 'json');
    expect(r.code, r.err).toBe(0);
  }, 120_000);
  afterAll(() => demo.remove());

  it('the first run: every step run once over the failed practice lists it, also one global step further', async () => {
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(bad));
    const r = await cli('build', '--project-dir', demo.dir, ...selection, '--log-format', 'json');
    expect(r.code, r.err).toBe(1);
    const nodes = byNode(results());
    expect(nodes.get(`flaky@${bad}`)!.status).toBe('error');
    expect(nodes.get(`flaky_counts@${bad}`)!.status).toBe('skipped');
    for (const once of ['flaky_total', 'flaky_total_twice', 'flaky_view']) {
      expect(nodes.get(once)!.status, once).toBe('success');
      expect(nodes.get(once)!.stale_tenants, once).toEqual([bad]);
    }
    expect(await globalPractices()).toEqual({ practices: 2, doubled: 4 });
  });

  it('the practice fails again: the retry builds the global steps again and they keep their stale record', async () => {
    const r = await cli('retry', '--project-dir', demo.dir, '--log-format', 'json');
    expect(r.code, r.err).toBe(1);
    expect(r.err).toContain('3 step(s) run once that read them');
    const run = results();
    const nodes = byNode(run);
    expect([...nodes.keys()].sort()).toEqual([`flaky@${bad}`, `flaky_counts@${bad}`, 'flaky_total', 'flaky_total_twice', 'flaky_view']);
    for (const once of ['flaky_total', 'flaky_total_twice', 'flaky_view']) {
      expect(nodes.get(once)!.status, once).toBe('success');
      expect(nodes.get(once)!.stale_tenants, once).toEqual([bad]);
    }
    // The record survives any number of retries that fail the same way.
    expect((await cli('retry', '--project-dir', demo.dir, '--log-format', 'json')).code).toBe(1);
    expect(byNode(results()).get('flaky_total')!.stale_tenants).toEqual([bad]);
  });

  it('once the practice is fixed, the retry builds it and then every global step on it; nothing is stale any more', async () => {
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(null));
    const r = await cli('retry', '--project-dir', demo.dir, '--log-format', 'json');
    expect(r.code, r.err).toBe(0);
    const run = results();
    const nodes = byNode(run);
    expect([...nodes.keys()].sort()).toEqual([`flaky@${bad}`, `flaky_counts@${bad}`, 'flaky_total', 'flaky_total_twice', 'flaky_view']);
    expect(run.results.every((x) => x.status === 'success')).toBe(true);
    expect(run.results.some((x) => x.stale_tenants)).toBe(false);
    // The view's tests ran for the practice they could not run for before.
    expect(run.results.filter((x) => x.kind === 'test' && x.model === 'flaky_view').map((x) => x.tenant)).toEqual([bad]);
    expect(await globalPractices()).toEqual({ practices: 3, doubled: 6 });
    expect((await cli('retry', '--project-dir', demo.dir)).out.join('\n')).toContain('nothing to retry');
  });

  it('retry stays within the last run: a global step the run did not select is not added', async () => {
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(bad));
    expect((await cli('build', '--project-dir', demo.dir, '--select', '+flaky_counts', '--log-format', 'json')).code).toBe(1);
    writeFileSync(join(demo.dir, 'models/marts/flaky.sql'), flaky(null));
    const r = await cli('retry', '--project-dir', demo.dir, '--log-format', 'json');
    expect(r.code, r.err).toBe(0);
    expect([...byNode(results()).keys()].sort()).toEqual([`flaky@${bad}`, `flaky_counts@${bad}`]);
  });
});
