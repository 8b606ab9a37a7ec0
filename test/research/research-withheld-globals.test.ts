import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runWorkspace } from '../../src/cli/api.ts';
import { Codes } from '../../src/errors.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { cli, failuresOf, PUBLISHED_MODELS, PSEUDO_MODELS, resultsOf, scalar, withWarehouse, type Query } from '../support/research-fixture.ts';

/**
 * A practice withheld from research after global relations were built from its rows: those
 * relations still count it, and so does every relation built from them, until they are built
 * again. Whatever is selected, no build may publish them again: a global build first empties the
 * withheld practices' research slices it reads (their own run need not come first), refuses to
 * read a stored global relation built before the withdrawal, and rebuilds itself in full when it
 * is incremental. Counts and practice ids only in assertions.
 */

/** One row per practice token: counts a withheld practice as long as it has a row. */
const PER_PRACTICE = `{{config scope="global"}}
select e.practice_token, count(*) as encounters from {{ref "pseudo_encounters"}} e group by 1
`;
/** Built from PER_PRACTICE only: it never reads a research slice itself. */
const PRACTICES_SEEN = `{{config scope="global"}}
select count(*) as practices from {{ref "per_practice"}}
`;
/** Merged on the practice token: a merge alone would keep a withheld practice's row for good. */
const PER_PRACTICE_INCREMENTAL = `{{config scope="global" materialized="incremental" unique_key="practice_token"}}
select e.practice_token, count(*) as encounters from {{ref "pseudo_encounters"}} e group by 1
`;
const PER_PRACTICE_SQL = 'SELECT practice_token, count(*) AS encounters FROM pseudo.pseudo_encounters GROUP BY 1';
const differsFromItsSql = (relation: string) => `SELECT count(*) AS n FROM (
  (SELECT * FROM ${relation} EXCEPT ${PER_PRACTICE_SQL}) UNION ALL (${PER_PRACTICE_SQL} EXCEPT SELECT * FROM ${relation})) AS d`;

function withhold(dir: string, id: string): void {
  const file = join(dir, 'tenants.yml');
  const doc = parse(readFileSync(file, 'utf8')) as { tenants: Record<string, unknown>[] };
  doc.tenants.find((x) => x.id === id)!.research = false;
  writeFileSync(file, stringify(doc));
}

const count = async (q: Query, sql: string) => Number(await scalar(q, sql));
const pseudoRowsOf = (dir: string, practice: string) =>
  withWarehouse(dir, async (q) => {
    let n = 0;
    for (const m of PSEUDO_MODELS) n += await count(q, `SELECT count(*) FROM pseudo.${m} WHERE practice_id = '${practice}'`);
    return n;
  });
const withheldLine = async (dir: string) => {
  const r = await cli(['privacy', 'check', '--project-dir', dir]);
  return { code: r.code, line: r.lines.find((l) => l.startsWith('withheld from research')) ?? '' };
};

describe('global research relations built before a practice was withheld', () => {
  let demo: DemoCopy;
  let practice: string;
  let seenBefore: number;

  beforeEach(async () => {
    demo = copyDemoProject({
      tenants: sampleTenants(4),
      files: {
        'models/research/per_practice.sql': PER_PRACTICE,
        'models/research/practices_seen.sql': PRACTICES_SEEN,
        'models/research/per_practice_incremental.sql': PER_PRACTICE_INCREMENTAL,
      },
    });
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'build' }))).toEqual([]);
    // A practice with encounters (so a row of its own in per_practice).
    const perPractice = await withWarehouse(demo.dir, (q) => q(`SELECT practice_id AS p, count(*) AS n FROM pseudo.pseudo_encounters GROUP BY 1 ORDER BY 2 DESC`));
    practice = String(perPractice[0]!.p);
    seenBefore = await withWarehouse(demo.dir, (q) => count(q, 'SELECT practices FROM pseudo.practices_seen'));
    expect(seenBefore).toBe(perPractice.length);
    withhold(demo.dir, practice);
  }, 300_000);

  afterEach(() => demo?.remove());

  it('privacy check fails on them at once, naming each and the run that rebuilds it', async () => {
    const { code, line } = await withheldLine(demo.dir);
    expect(code).toBe(1);
    for (const m of ['per_practice', 'practices_seen', 'per_practice_incremental', ...PUBLISHED_MODELS]) {
      expect(line).toMatch(new RegExp(`\\.${m} was built before ${practice} was withheld`));
    }
    expect(line).toMatch(/and may count them; a run that builds it removes them \(tsform run --select [a-z_ ]*per_practice/);
  });

  it('a build of one global model alone empties the withheld slices it reads first, whoever is in the run', async () => {
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['per_practice'] });
    expect(failuresOf(run)).toEqual([]);
    expect(resultsOf(run, 'per_practice')[0]!.notes?.join('\n')).toMatch(/withheld from research .*: \d+ row\(s\) of theirs removed from pseudo\.pseudo_encounters before this build/);
    expect(await pseudoRowsOf(demo.dir, practice)).toBeGreaterThan(0); // slices it does not read wait for the practice's run
    await withWarehouse(demo.dir, async (q) => {
      expect(await count(q, `SELECT count(*) FROM pseudo.pseudo_encounters WHERE practice_id = '${practice}'`)).toBe(0);
      expect(await count(q, differsFromItsSql('pseudo.per_practice'))).toBe(0);
      expect(await count(q, 'SELECT count(*) FROM pseudo.per_practice')).toBe(seenBefore - 1);
    });
  }, 300_000);

  it('a model reading a global relation built before the withdrawal is refused and keeps its previous rows; built together, both succeed', async () => {
    const refused = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['practices_seen'] });
    const r = resultsOf(refused, 'practices_seen')[0]!;
    expect([r.status, r.code]).toEqual(['error', Codes.privacyGate]);
    expect(r.message).toContain(`'per_practice', built before practice(s) ${practice} were withheld from research`);
    expect(r.message).toContain('tsform run --select per_practice+');
    expect(await withWarehouse(demo.dir, (q) => count(q, 'SELECT practices FROM pseudo.practices_seen'))).toBe(seenBefore);

    const both = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['per_practice+'] });
    expect(failuresOf(both)).toEqual([]);
    expect(await withWarehouse(demo.dir, (q) => count(q, 'SELECT practices FROM pseudo.practices_seen'))).toBe(seenBefore - 1);
    // Published models read the slices themselves and are rebuilt from them; with the last one
    // built before the withdrawal built again, privacy check has nothing more to say of them.
    const published = await runWorkspace({ projectDir: demo.dir, command: 'run', select: [...PUBLISHED_MODELS, 'per_practice_incremental'] });
    expect(failuresOf(published)).toEqual([]);
    expect(await pseudoRowsOf(demo.dir, practice)).toBe(0);
    const { line } = await withheldLine(demo.dir);
    expect(line).not.toContain('was built before');
  }, 300_000);

  it('a global incremental model built before the withdrawal is built in full, even when its slices were emptied some other way', async () => {
    // A full refresh of the slices drops the table: the withheld practice's rows go without the
    // slice withdrawal that would forget the merge record below them.
    const refreshed = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['pseudo_encounters'], fullRefresh: true });
    expect(failuresOf(refreshed)).toEqual([]);
    expect(await pseudoRowsOf(demo.dir, practice)).toBeGreaterThan(0); // the other pseudonymized tables
    expect(await withWarehouse(demo.dir, (q) => count(q, `SELECT count(*) FROM pseudo.pseudo_encounters WHERE practice_id = '${practice}'`))).toBe(0);
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['per_practice_incremental'] });
    expect(failuresOf(run)).toEqual([]);
    expect(await withWarehouse(demo.dir, (q) => count(q, differsFromItsSql('pseudo.per_practice_incremental')))).toBe(0);
  }, 300_000);
});
