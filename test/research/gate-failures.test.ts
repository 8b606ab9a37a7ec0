import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { DiagnosticsError } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import {
  cli,
  failuresOf,
  fingerprintRows,
  leakScanOf,
  LEAKY,
  num,
  onlyResult,
  relationExists,
  scalar,
  SSN_PATTERN,
  withWarehouse,
  type Query,
} from '../support/research-fixture.ts';
import { addProjectFiles } from '../support/research-fixture.ts';

/**
 * Each data gate of issue 4 fails on a deliberately leaky model added to a small demo copy: an
 * unsuppressed small cell, row-level quasi-identifiers below k, and a raw SSN smuggled through a
 * free-text column. A refused relation is not published (or keeps its last published content),
 * and no message carries a value.
 */

const K = 11;
let demo: DemoCopy;

const addModels = (files: Record<string, string>): (() => void) => addProjectFiles(demo.dir, files);

const build = (select: string[]): Promise<RunResults> => runWorkspace({ projectDir: demo.dir, command: 'build', select });

/** Class-size histogram `[size, cells][]` parsed from a gate message ("3 of size 1, 2 of size 4"). */
function histogramOf(message: string): [number, number][] {
  return [...message.matchAll(/(\d+) of size (\d+)/g)].map((m) => [Number(m[2]), Number(m[1])]);
}

async function histogramIn(q: Query, classesSql: string): Promise<[number, number][]> {
  const rows = await q(`SELECT n AS size, count(*) AS cells FROM (${classesSql}) AS classes WHERE n < ${K} GROUP BY n ORDER BY n`);
  return rows.map((r) => [num(r.size), num(r.cells)]);
}

/** How many of `values` occur in `text` (a count: the values themselves are never shown). */
const occurrences = (text: string, values: string[]): number => values.filter((v) => v.length >= 3 && text.includes(v)).length;

beforeAll(async () => {
  demo = copyDemoProject({ tenants: sampleTenants(10) });
  const base = await runWorkspace({ projectDir: demo.dir, command: 'build' });
  expect(failuresOf(base)).toEqual([]);
}, 300_000);

afterAll(() => demo?.remove());

describe('k-anonymity before publishing', () => {
  const smallCells = (suppressed: boolean) => ({
    'models/research/published/leaky_small_cells.sql': LEAKY.smallCells(suppressed),
    'models/research/published/_leaky_small_cells.yml': LEAKY.smallCellsYml,
  });

  it('publishes an aggregate without its small cells (no row) and says how many it withheld, in counts only', async () => {
    const remove = addModels(smallCells(false));
    try {
      const run = await build(['leaky_small_cells']);
      const r = onlyResult(run, 'leaky_small_cells');
      expect(r.status).toBe('success');
      const note = (r.notes ?? []).join('\n');
      await withWarehouse(demo.dir, async (q) => {
        // No value in the note (checked first, as counts: a failing diff must not print one).
        const values = await q(`SELECT DISTINCT condition_code AS v FROM pseudo.pseudo_conditions UNION SELECT DISTINCT condition_description FROM pseudo.pseudo_conditions`);
        expect(occurrences(note.replace(/\d+/g, ''), values.map((v) => String(v.v)))).toBe(0);
        const expected = await histogramIn(q, `SELECT condition_code, count(DISTINCT person_token) AS n FROM pseudo.pseudo_conditions GROUP BY 1`);
        const below = expected.reduce((a, [, cells]) => a + cells, 0);
        expect(below).toBeGreaterThan(0);
        expect(note).toMatch(new RegExp(`^published with k=11, (smallest cell \\d+|nothing published), \\d+ suppressed cells \\(${below} below k, \\d+ complementary\\), \\d+ rows$`));
        expect(num(await scalar(q, `SELECT count(*) FROM research.leaky_small_cells WHERE persons IS NULL OR persons < ${K}`))).toBe(0);
      });
    } finally {
      remove();
    }
  });

  it('keeps the last published content when a published aggregate starts publishing NULL for small cells', async () => {
    let remove = addModels(smallCells(true));
    let published: string;
    try {
      const first = await build(['leaky_small_cells']);
      expect(onlyResult(first, 'leaky_small_cells').status).toBe('success');
      published = await withWarehouse(demo.dir, (q) => fingerprintRows(q, 'research.leaky_small_cells'));
    } finally {
      remove();
    }
    remove = addModels({
      'models/research/published/leaky_small_cells.sql': `{{config k_anonymity_count="persons"}}
-- Test model: small cells published as NULL (a NULL still says the cell exists).
select c.condition_code, case when count(distinct c.person_token) >= ${K} then count(distinct c.person_token) end as persons
from {{ref "pseudo_conditions"}} c
group by c.condition_code
`,
      'models/research/published/_leaky_small_cells.yml': LEAKY.smallCellsYml,
    });
    try {
      // Refused at compile since the count must be a plain count(…) (k-count-shape.ts); the gate's
      // own check of NULL counts stays underneath it.
      const refusal = await build(['leaky_small_cells']).then(
        (second) => {
          const r = onlyResult(second, 'leaky_small_cells');
          return `${r.status} ${r.code}`;
        },
        (err: unknown) => (err instanceof DiagnosticsError ? err.diagnostics.map((d) => `${d.code} ${d.file}`).join(', ') : Promise.reject(err)),
      );
      expect(refusal).toMatch(/^(error TSF414|TSF215 models\/research\/published\/leaky_small_cells\.sql)$/);
      await withWarehouse(demo.dir, async (q) => {
        expect(await fingerprintRows(q, 'research.leaky_small_cells')).toBe(published);
        expect(num(await scalar(q, `SELECT count(*) FROM research.leaky_small_cells WHERE persons IS NULL OR persons < ${K}`))).toBe(0);
      });
    } finally {
      remove();
    }
  });

  it('refuses a row-level relation whose quasi-identifier classes are below k', async () => {
    const remove = addModels({
      'models/research/published/leaky_qi_rows.sql': LEAKY.qiRows,
      'models/research/published/_leaky_qi_rows.yml': LEAKY.qiRowsYml,
    });
    try {
      const run = await build(['leaky_qi_rows']);
      const r = onlyResult(run, 'leaky_qi_rows');
      expect(r.status).toBe('error');
      expect(r.code).toBe('TSF414');
      const message = r.message ?? '';
      await withWarehouse(demo.dir, async (q) => {
        // Class sizes, never the classes: no age band, ZIP3 or token in the message (booleans and counts first).
        expect(/\d\d-\d\d|90\+|pt_/.test(message)).toBe(false);
        const zip3s = await q(`SELECT DISTINCT zip3 AS v FROM pseudo.pseudo_persons WHERE zip3 <> '000'`);
        expect(occurrences(message.replace(/\d+ of size \d+/g, ''), zip3s.map((z) => String(z.v)))).toBe(0);
        expect(message).toMatch(/leaky_qi_rows not published: quasi-identifier classes \(age_band, sex, zip3\) below k=11 \(\d+ of size \d+(, \d+ of size \d+)*\)$/);
        const expected = await histogramIn(
          q,
          `SELECT age_band, sex, zip3, count(*) AS n FROM (SELECT DISTINCT age_band, sex, zip3, person_token FROM pseudo.pseudo_persons) GROUP BY ALL`,
        );
        expect(histogramOf(message)).toEqual(expected);
        expect(await relationExists(q, 'research', 'leaky_qi_rows')).toBe(false);
      });
    } finally {
      remove();
    }
  });
});

describe('a published aggregate whose count is not a count of its cell', () => {
  // Found in the eighteenth session: the gate trusts k_anonymity_count, and `50 as n`,
  // `count(*) over ()` or `count(*) * 20` compiled clean and published a row per person.
  it.each([
    ['a constant', `select p.age_band, p.sex, 50 as n from {{ref "pseudo_persons"}} p`],
    ['a window', `select p.age_band, p.sex, count(*) over () as n from {{ref "pseudo_persons"}} p`],
    ['arithmetic', `select p.age_band, p.sex, count(*) * 20 as n from {{ref "pseudo_persons"}} p group by 1, 2`],
    ['a count made in a subquery', `select age_band, sex, n from (select p.age_band, p.sex, count(*) as n from {{ref "pseudo_persons"}} p group by 1, 2) t`],
    // Found in the nineteenth session: a GROUP BY key that is not output makes cells of one
    // person each, whose counts of encounters reach k.
    ['a GROUP BY key it does not output', `select p.age_band, p.sex, count(*) as n from {{ref "pseudo_encounters"}} e join {{ref "pseudo_persons"}} p on p.person_token = e.person_token group by e.person_token, 1, 2`],
    ['a count of encounters, not persons', `select p.age_band, p.sex, count(*) as n from {{ref "pseudo_encounters"}} e join {{ref "pseudo_persons"}} p on p.person_token = e.person_token group by 1, 2`],
    ['a UNION arm with a constant', `select p.age_band, p.sex, count(*) as n from {{ref "pseudo_persons"}} p group by 1, 2 union all select p.age_band, p.sex, 99 from {{ref "pseudo_persons"}} p`],
  ])('%s is refused at compile, at the count', async (_what, select) => {
    const remove = addModels({
      'models/research/published/leaky_fake_count.sql': `{{config k_anonymity_count="n"}}\n${select}\n`,
      'models/research/published/_leaky_fake_count.yml': `models:\n  - name: leaky_fake_count\n    columns:\n      - { name: age_band, phi: quasi }\n      - { name: sex, phi: quasi }\n      - { name: n, phi: none }\n`,
    });
    try {
      const err = await build(['leaky_fake_count']).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(DiagnosticsError);
      const d = (err as DiagnosticsError).diagnostics.find((x) => x.code === 'TSF215' && /k_anonymity_count="n"/.test(x.message));
      expect(d).toMatchObject({ file: 'models/research/published/leaky_fake_count.sql', line: expect.any(Number) });
      await withWarehouse(demo.dir, async (q) => expect(await relationExists(q, 'research', 'leaky_fake_count')).toBe(false));
    } finally {
      remove();
    }
  });

  it('an aggregate grouped by person token is not published, whatever its counts', async () => {
    // count(*) of a person's encounters reached k for many persons: cells of one person each.
    // Compile now refuses a count of rows (counted-persons.ts); a count of persons grouped by
    // the token is still refused at publication, before its cells are sized.
    const remove = addModels({
      'models/research/published/leaky_token_cells.sql': `{{config k_anonymity_count="n"}}\nselect e.person_token, count(distinct e.person_token) as n from {{ref "pseudo_encounters"}} e group by 1\n`,
    });
    try {
      const r = onlyResult(await build(['leaky_token_cells']), 'leaky_token_cells');
      expect({ status: r.status, code: r.code }).toEqual({ status: 'error', code: 'TSF414' });
      expect(r.message).toBe('models/research/published/leaky_token_cells.sql: leaky_token_cells not published: an aggregate whose person_token holds person tokens (cells of one person)');
      await withWarehouse(demo.dir, async (q) => expect(await relationExists(q, 'research', 'leaky_token_cells')).toBe(false));
    } finally {
      remove();
    }
  });
});

describe('k-anonymity when the published model does not classify its columns', () => {
  // Fixed in issue 12: every column but the vault person token (decided by the data) is part of
  // the equivalence class, whatever the yml declares.
  it('does not publish row-level quasi-identifiers below k just because no yml declares them', async () => {
    const remove = addModels({ 'models/research/published/leaky_qi_undeclared.sql': LEAKY.qiRowsUndeclared });
    try {
      let run: RunResults | undefined;
      try {
        run = await build(['leaky_qi_undeclared']);
      } catch (err) {
        // Refused at compile (e.g. "classify every column of a published model"): also fine.
        expect(err).toBeInstanceOf(DiagnosticsError);
      }
      if (run) {
        const r = onlyResult(run, 'leaky_qi_undeclared');
        expect({ status: r.status, code: r.code }).toEqual({ status: 'error', code: 'TSF414' });
      }
      await withWarehouse(demo.dir, async (q) => {
        expect(await relationExists(q, 'research', 'leaky_qi_undeclared')).toBe(false);
      });
    } finally {
      remove();
    }
  });
});

describe('leak scan after the run', () => {
  /** Records whose SSN the scan must find (those of at least 4 characters). */
  const patientsWithSsn = () => withWarehouse(demo.dir, async (q) => num(await scalar(q, `SELECT count(*) FROM staging.stg_patients WHERE length(ssn) >= 4`)));

  // Before lineage derived staging models' classes from their SQL (phi-gate.ts), this model
  // compiled and the leak scan refused its rows at run time; the scan's refusal before writing is
  // now tested on columns compile cannot see (leak-scan-columns, leak-scan-postgres).
  it('refuses at compile an SSN laundered into a staging free-text column declared none, printing no SSN', async () => {
    const remove = addModels({
      'models/staging/stg_patient_notes.sql': LEAKY.freeText,
      'models/staging/_stg_patient_notes.yml': LEAKY.freeTextYml,
      'models/research/leaky_notes.sql': LEAKY.freeTextNotes,
      'models/research/_leaky_notes.yml': LEAKY.notesYml,
    });
    try {
      const err = await build(['stg_patient_notes', 'leaky_notes']).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DiagnosticsError);
      const diagnostics = (err as DiagnosticsError).diagnostics;
      expect(SSN_PATTERN.test(diagnostics.map((d) => d.message).join('\n'))).toBe(false);
      const refusal = diagnostics.find((d) => d.code === 'TSF215' && d.file === 'models/research/leaky_notes.sql');
      expect(refusal?.message).toMatch(/stg_patient_notes\.free_text is declared none in its yml, but its SQL derives it: .*ssn.*\(direct\)/);
      await withWarehouse(demo.dir, async (q) => expect(await relationExists(q, 'pseudo', 'leaky_notes')).toBe(false));
    } finally {
      remove();
    }
  });

  it('never lets an SSN concatenated into a pseudonymized model pass silently (compile-time lineage or the leak scan)', async () => {
    const remove = addModels({
      'models/research/leaky_notes.sql': LEAKY.directNotes,
      'models/research/_leaky_notes.yml': LEAKY.notesYml,
    });
    try {
      let run: RunResults | undefined;
      try {
        run = await build(['leaky_notes']);
      } catch (err) {
        // The lineage gate (DESIGN §4): a compile error naming the column, without values.
        expect(err).toBeInstanceOf(DiagnosticsError);
        const text = (err as DiagnosticsError).diagnostics.map((d) => `${d.code} ${d.message}`).join('\n');
        expect(SSN_PATTERN.test(text)).toBe(false);
        expect(text).toMatch(/leaky_notes\.note exposes a direct identifier: .*ssn/);
        return;
      }
      expect(SSN_PATTERN.test(JSON.stringify(run))).toBe(false);
      const scan = leakScanOf(run);
      const n = await patientsWithSsn();
      expect({ status: scan?.status, code: scan?.code, rows: scan?.rows }).toEqual({ status: 'error', code: 'TSF414', rows: n });
      expect(scan!.message).toContain(`pseudo.leaky_notes.note (${n} rows)`);
    } finally {
      remove();
    }
  });
});
