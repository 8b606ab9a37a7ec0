import { readFileSync, writeFileSync } from 'node:fs';
import { readRunResults } from '../../src/artifacts/run-results-file.ts';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';
import { cli } from '../support/research-fixture.ts';

/**
 * Issue 15, item 6: the units a run announces are the units it reports at the end (builds per
 * practice and once, data tests, the leak scan), and the final terms add up to that total.
 */

const announced = (lines: string[]) => {
  const m = lines.map((l) => /^\w+: \d+ steps for \d+ practices = (\d+) units: (.*); \d+ batch(?:es)?$/.exec(l)).find(Boolean);
  if (!m) throw new Error(`no plan line in:\n${lines.join('\n')}`);
  return { total: Number(m[1]), terms: m[2]! };
};

const finalCounts = (lines: string[]) => {
  const m = lines.map((l) => /^Done in [\d.]+s: (\d+) units = (\d+) succeeded \+ (\d+) failed \+ (\d+) skipped(?: \+ (\d+) not run \(.*\))?\.$/.exec(l)).find(Boolean);
  if (!m) throw new Error(`no final line in:\n${lines.join('\n')}`);
  const [total, success, error, skipped, notRun] = m.slice(1).map((x) => Number(x ?? 0));
  return { total: total!, success: success!, error: error!, skipped: skipped!, notRun: notRun! };
};

/** The sum of the `N builds + M tests + K check` terms of the plan line. */
const sumOfTerms = (terms: string) => [...terms.replace(/\([^)]*\)/g, '').matchAll(/(\d+) (?:builds|tests|checks?)/g)].reduce((n, m) => n + Number(m[1]), 0);

describe('counts that add up', () => {
  let demo: DemoCopy;
  let failing: string;
  beforeAll(() => {
    demo = copyDemoProject({
      tenants: (ids) => [...ids].sort().slice(0, 3),
      files: {
        'models/marts/after_fragile.sql': `select practice_id, count(*) as n from {{ref "fragile_mart"}} group by practice_id
`,
        'models/marts/_fragile.yml': `models:
  - name: fragile_mart
    columns:
      - { name: practice_id, phi: none }
      - name: v
        phi: none
        tests: [not_null]
`,
      },
    });
    failing = [...demo.tenantIds].sort()[0]!;
    // A data-dependent SQL error for one practice only.
    writeFileSync(
      join(demo.dir, 'models/marts/fragile_mart.sql'),
      `select practice_id, cast(case when practice_id = '${failing}' then 'x' else '1' end as integer) as v\nfrom {{ref "stg_providers"}}\n`,
    );
  });
  afterAll(() => demo?.remove());

  it('a build with a failing practice: announced total = final total = succeeded + failed + skipped + not run', async () => {
    const r = await cli(['build', '--project-dir', demo.dir, '--select', '+after_fragile', '--log-format', 'text']);
    expect(r.code).toBe(1);
    const plan = announced(r.lines);
    expect(sumOfTerms(plan.terms)).toBe(plan.total);
    expect(plan.terms).toMatch(/\d+ builds \(\d+ steps × 3 practices( \+ \d+ once)?\) \+ \d+ tests$/);
    const done = finalCounts(r.lines);
    expect(done.total).toBe(plan.total);
    expect(done.success + done.error + done.skipped + done.notRun).toBe(done.total);
    // fragile_mart failed for one practice: its downstream skipped there, its not_null test not run there.
    expect(done.error).toBeGreaterThanOrEqual(1);
    expect(done.skipped).toBeGreaterThanOrEqual(1);
    expect(done.notRun).toBe(1);
    const run = readRunResults(join(demo.dir, 'target/run_results.json'));
    expect(run.results.length + done.notRun).toBe(plan.total);
    // The file's summary is the printed one: the same total, the tests not run among its terms.
    const file = JSON.parse(readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8')) as { summary: Record<string, number> };
    expect(file.summary).toMatchObject({ units: done.total, success: done.success, error: done.error, skipped: done.skipped, interrupted: 0, not_run: done.notRun });
    expect(run.results.some((x) => x.node === `fragile_mart@${failing}` && x.status === 'error')).toBe(true);
  });

  it('a run with the leak scan: it is announced as a check, and JSON plan and summary agree', async () => {
    const r = await cli(['run', '--project-dir', demo.dir, '--select', '+pseudo_persons', '--log-format', 'json']);
    const events = r.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const plan = events.find((e) => e.event === 'plan') as { units: { total: number; checks: number; builds: number; tests: number } };
    const summary = events.find((e) => e.event === 'summary') as { units: number; success: number; error: number; skipped: number; not_run: number };
    expect(plan.units.checks).toBe(1);
    expect(plan.units.total).toBe(plan.units.builds + plan.units.tests + plan.units.checks);
    expect(summary.units).toBe(plan.units.total);
    expect(summary.success + summary.error + summary.skipped + summary.not_run).toBe(summary.units);
    expect(events.filter((e) => e.event === 'node').length + summary.not_run + 1).toBe(plan.units.total); // + the leak scan, reported in the summary only
  });
});
