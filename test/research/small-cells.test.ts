import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { DiagnosticsError } from '../../src/errors.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, failuresOf, num, onlyResult, relationExists, resultsOf, scalar, SSN_PATTERN, withWarehouse, type Query } from '../support/research-fixture.ts';
import { addProjectFiles } from '../support/research-fixture.ts';
import { ATTACKS, CONTROLS, EXTRAS_SOURCE_SQL, leakyFiles, writeExtras } from '../support/leak-attacks.ts';

/**
 * Issue 12, item 8 and the scans: published aggregates lose their small cells (no row) and the
 * cells a margin would give back; person-level relations are k-anonymous on every column but the
 * person token; the leak scan recognises identifiers however a model reshapes them, on the
 * staged rows, so a failing relation is never written. Assertions are counts and booleans.
 */

const K = 11;
let demo: DemoCopy;

const addFiles = (files: Record<string, string>): (() => void) => addProjectFiles(demo.dir, files);

const build = (select: string[]): Promise<RunResults> => runWorkspace({ projectDir: demo.dir, command: 'build', select });

beforeAll(async () => {
  demo = copyDemoProject({ tenants: sampleTenants(10) });
  const base = await runWorkspace({ projectDir: demo.dir, command: 'build' });
  expect(failuresOf(base)).toEqual([]);
}, 300_000);

afterAll(() => demo?.remove());

/** Persons per (condition, sex): the true cells, before any suppression. */
const TRUE_CELLS = `SELECT c.condition_code, p.sex, count(DISTINCT c.person_token) AS persons
  FROM (SELECT DISTINCT person_token, condition_code FROM pseudo.pseudo_conditions) c
  JOIN (SELECT person_token, min(sex) AS sex FROM pseudo.pseudo_persons GROUP BY 1) p ON p.person_token = c.person_token
 GROUP BY 1, 2`;

const byConditionSex = (count = 'count(distinct c.person_token)') => `{{config k_anonymity_count="persons"}}
-- Test model: persons per condition and sex.
with p as (select person_token, min(sex) as sex from {{ref "pseudo_persons"}} group by person_token)
select c.condition_code, p.sex, ${count} as persons
from (select distinct person_token, condition_code from {{ref "pseudo_conditions"}}) c
join p on p.person_token = c.person_token
group by c.condition_code, p.sex
`;
const aggregatesYml = `models:
  - name: sc_by_condition_sex
    columns:
      - { name: condition_code, phi: none }
      - { name: sex, phi: quasi }
      - { name: persons, phi: none }
`;
const byConditionYml = `models:
  - name: sc_by_condition
    columns:
      - { name: condition_code, phi: none }
      - { name: persons, phi: none }
`;
const byCondition = `{{config k_anonymity_count="persons"}}
-- Test model: persons per condition (the margin of sc_by_condition_sex).
select condition_code, count(distinct person_token) as persons from {{ref "pseudo_conditions"}} group by condition_code
`;

/** Groups of `keep` where the unpublished part of the true cells is 1..k-1 and not the whole group. */
async function unsafeMargins(q: Query, keep: string[]): Promise<number> {
  const cols = keep.map((c) => `t.${c}`).join(', ');
  return num(
    await scalar(
      q,
      `SELECT count(*) FROM (
         SELECT ${cols ? `${cols}, ` : ''}sum(t.persons) AS total, coalesce(sum(t.persons) FILTER (WHERE p.persons IS NULL), 0) AS hidden
           FROM (${TRUE_CELLS}) t LEFT JOIN research.sc_by_condition_sex p ON t.condition_code = p.condition_code AND t.sex IS NOT DISTINCT FROM p.sex
          ${cols ? `GROUP BY ${cols}` : ''}) g
        WHERE hidden > 0 AND hidden < ${K} AND hidden < total`,
    ),
  );
}

describe('published aggregates: suppression', () => {
  it('publishes no cell below k (no row, no NULL), and no margin or second table gives a suppressed cell back', async () => {
    const remove = addFiles({
      'models/research/published/sc_by_condition_sex.sql': byConditionSex(),
      'models/research/published/sc_by_condition.sql': byCondition,
      'models/research/published/_sc_aggregates.yml': aggregatesYml,
      'models/research/published/_sc_by_condition.yml': byConditionYml,
    });
    try {
      const run = await build(['sc_by_condition_sex', 'sc_by_condition']);
      const r = onlyResult(run, 'sc_by_condition_sex');
      expect(r.status).toBe('success');
      expect(onlyResult(run, 'sc_by_condition').status).toBe('success');
      // The note counts suppressed cells, and carries no value.
      const note = (r.notes ?? []).join('\n');
      expect(note).toMatch(/^published with k=11, (smallest cell \d+|nothing published), \d+ suppressed cells \(\d+ below k, \d+ complementary\), \d+ rows$/);
      await withWarehouse(demo.dir, async (q) => {
        const [t] = await q(`SELECT count(*) AS cells, count(*) FILTER (WHERE persons < ${K}) AS small FROM (${TRUE_CELLS})`);
        const [p] = await q(`SELECT count(*) AS n, count(*) FILTER (WHERE persons IS NULL OR persons < ${K}) AS small FROM research.sc_by_condition_sex`);
        expect(num(t!.small)).toBeGreaterThan(0);
        expect(num(p!.small)).toBe(0);
        // Published cells are true cells, unchanged.
        const changed = await scalar(
          q,
          `SELECT count(*) FROM research.sc_by_condition_sex p LEFT JOIN (${TRUE_CELLS}) t ON t.condition_code = p.condition_code AND t.sex = p.sex WHERE t.persons IS DISTINCT FROM p.persons`,
        );
        expect(num(changed)).toBe(0);
        const primary = num(t!.small);
        const suppressedTotal = num(t!.cells) - num(p!.n);
        expect(note.includes(`${suppressedTotal} suppressed cells (${primary} below k, ${suppressedTotal - primary} complementary)`)).toBe(true);
        // Every margin: per condition, per sex, and the grand total.
        for (const keep of [['condition_code'], ['sex'], []]) expect(await unsafeMargins(q, keep), keep.join(',') || 'total').toBe(0);
        // Two published tables: per-condition counts minus the published (condition, sex) cells.
        const recovered = await scalar(
          q,
          `SELECT count(*) FROM research.sc_by_condition m
             JOIN (SELECT condition_code, sum(persons) AS shown FROM research.sc_by_condition_sex GROUP BY 1) s ON s.condition_code = m.condition_code
            WHERE m.persons - s.shown > 0 AND m.persons - s.shown < ${K}`,
        );
        expect(num(recovered)).toBe(0);
      });
    } finally {
      remove();
    }
  });

  it('refuses NULL counts (they say a small cell exists) and keeps the last published content', async () => {
    let remove = addFiles({ 'models/research/published/sc_by_condition_sex.sql': byConditionSex(), 'models/research/published/_sc_aggregates.yml': aggregatesYml });
    let before: number;
    try {
      expect(onlyResult(await build(['sc_by_condition_sex']), 'sc_by_condition_sex').status).toBe('success');
      before = await withWarehouse(demo.dir, async (q) => num(await scalar(q, 'SELECT count(*) FROM research.sc_by_condition_sex')));
    } finally {
      remove();
    }
    remove = addFiles({
      'models/research/published/sc_by_condition_sex.sql': byConditionSex(`case when count(distinct c.person_token) >= ${K} then count(distinct c.person_token) end`),
      'models/research/published/_sc_aggregates.yml': aggregatesYml,
    });
    try {
      // Compile refuses it first since the count must be a plain count(…) (k-count-shape.ts); the
      // gate's check of NULL counts stays underneath, for what reaches it.
      const refusal = await build(['sc_by_condition_sex']).then(
        (run) => {
          const r = onlyResult(run, 'sc_by_condition_sex');
          return `${r.code} ${r.message}`;
        },
        (err: unknown) => (err instanceof DiagnosticsError ? err.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n') : Promise.reject(err)),
      );
      expect(refusal).toMatch(/^(TSF414 .*sc_by_condition_sex not published: \d+ row\(s\) with a NULL persons|TSF215 sc_by_condition_sex is published with k_anonymity_count="persons" but computes persons other than as count)/);
      await withWarehouse(demo.dir, async (q) => {
        expect(num(await scalar(q, 'SELECT count(*) FROM research.sc_by_condition_sex'))).toBe(before);
        expect(num(await scalar(q, 'SELECT count(*) FROM research.sc_by_condition_sex WHERE persons IS NULL'))).toBe(0);
      });
    } finally {
      remove();
    }
  });
});

describe('person-level published relations: k-anonymous on every column but the person token', () => {
  it('refuses the old cohort shape: one row per person with its practice and encounter counts', async () => {
    const remove = addFiles({
      'models/research/published/sc_cohort_rows.sql': `-- Test model: the cohort as it was (one row per person, unique counts).
select e.person_token, count(distinct e.practice_token) as practices, count(*) as encounters
from {{ref "pseudo_encounters"}} e group by e.person_token
`,
    });
    try {
      const r = onlyResult(await build(['sc_cohort_rows']), 'sc_cohort_rows');
      expect({ status: r.status, code: r.code }).toEqual({ status: 'error', code: 'TSF414' });
      expect(r.message).toMatch(/sc_cohort_rows not published: quasi-identifier classes \(practices, encounters\) below k=11 \(\d+ of size \d+(, \d+ of size \d+)*\)$/);
      await withWarehouse(demo.dir, async (q) => expect(await relationExists(q, 'research', 'sc_cohort_rows')).toBe(false));
    } finally {
      remove();
    }
  });

  it('does not take a column for the person token because of its name', async () => {
    const remove = addFiles({
      'models/research/published/sc_renamed.sql': `-- Test model: the ZIP3 under the token's name, the token under another.
select distinct p.person_token as member, p.zip3 as person_token from {{ref "pseudo_persons"}} p
`,
      'models/research/published/_sc_renamed.yml': `models:
  - name: sc_renamed
    columns:
      - { name: member, phi: none }
      - { name: person_token, phi: quasi }
`,
    });
    try {
      const r = onlyResult(await build(['sc_renamed']), 'sc_renamed');
      expect({ status: r.status, code: r.code }).toEqual({ status: 'error', code: 'TSF414' });
      expect(r.message).toMatch(/quasi-identifier classes \(person_token\) below k=11/);
    } finally {
      remove();
    }
  });

  it('publishes a person-level relation whose classes all reach k', async () => {
    const remove = addFiles({
      'models/research/published/sc_members.sql': `-- Test model: every person, one class.
select distinct p.person_token, 'all' as cohort from {{ref "pseudo_persons"}} p
`,
    });
    try {
      const persons = await withWarehouse(demo.dir, async (q) => num(await scalar(q, 'SELECT count(DISTINCT person_token) FROM pseudo.pseudo_persons')));
      expect(persons).toBeGreaterThanOrEqual(K);
      const r = onlyResult(await build(['sc_members']), 'sc_members');
      expect(r.status).toBe('success');
      expect((r.notes ?? []).join('\n')).toBe(`published with k=11, smallest class ${persons}, 0 suppressed cells (0 below k, 0 complementary), ${persons} rows`);
    } finally {
      remove();
    }
  });
});

describe('the leak scan recognises reshaped identifiers on staged rows', () => {
  const extras = () => withWarehouse(demo.dir, (q) => q(EXTRAS_SOURCE_SQL)).then((rows) => writeExtras(demo.dir, rows));

  it('finds lower(first_name), replace(ssn), upper(address), the birth date as a date, the ZIP as an integer, phone digits and spaced names; nothing is written', async () => {
    const n = await extras();
    expect(n).toBeGreaterThan(20);
    const remove = addFiles(leakyFiles(demo.dir));
    try {
      const run = await build(['source:test.extras', 'sc_leaky_pseudo']);
      const results = resultsOf(run, 'sc_leaky_pseudo');
      expect(results.length).toBe(demo.tenantIds.length);
      // No value in what the run reports (checked first: a failing diff must not print one).
      expect(SSN_PATTERN.test(JSON.stringify(run))).toBe(false);
      expect(SSN_PATTERN.test(readFileSync(join(demo.dir, 'target/run_results.json'), 'utf8'))).toBe(false);
      const failed = results.filter((r) => r.status === 'error');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((r) => r.code === 'TSF414')).toBe(true);
      // Every attack column is named, no control column is.
      const named = new Set(failed.flatMap((r) => [...(r.message ?? '').matchAll(/(\w+) \(\d+ rows\)/g)].map((m) => m[1]!)));
      expect([...named].sort()).toEqual([...ATTACKS].sort());
      // Practices whose build failed wrote nothing.
      await withWarehouse(demo.dir, async (q) => {
        const written = (await relationExists(q, 'pseudo', 'sc_leaky_pseudo'))
          ? num(await scalar(q, `SELECT count(*) FROM pseudo.sc_leaky_pseudo WHERE practice_id IN (${failed.map((r) => `'${r.tenant}'`).join(', ')})`))
          : 0;
        expect(written).toBe(0);
      });
    } finally {
      remove();
    }
  });

  it('lets the controls through: a year, another person\'s birth date, a common date and small counts', async () => {
    await extras();
    const remove = addFiles(leakyFiles(demo.dir, CONTROLS));
    try {
      const run = await build(['source:test.extras', 'sc_leaky_pseudo']);
      const results = resultsOf(run, 'sc_leaky_pseudo');
      expect(results.length).toBe(demo.tenantIds.length);
      expect(results.filter((r) => r.status !== 'success').map((r) => r.code)).toEqual([]);
    } finally {
      remove();
    }
  });
});

describe('tsform privacy check', () => {
  it('lists k, the smallest class and the suppressed cells of every published relation, and passes', async () => {
    const { code, lines } = await cli(['privacy', 'check', '--project-dir', demo.dir]);
    const k = lines.filter((l) => l.startsWith('k-anonymity: '));
    expect(k.map((l) => l.split(' ')[1]).sort()).toEqual(['research_condition_prevalence', 'research_diabetes_cohort']);
    for (const l of k) {
      expect(l).toMatch(/^k-anonymity: \w+ ok \(k=11, smallest (cell|class) (\d+|none published), \d+ suppressed cells: \d+ below k, \d+ complementary; \d+ rows published\)$/);
    }
    expect(lines.at(-1)).toBe('leak scan: no raw identifier in any pseudonymized relation');
    expect(code).toBe(0);
  });
});
