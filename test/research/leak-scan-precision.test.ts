import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { compileWorkspace, runWorkspace } from '../../src/cli/api.ts';
import { MONTH_PRECISION_MIN_VALUES, scanRelations } from '../../src/execute/leak-scan.ts';
import { vaultNode } from '../../src/artifacts/manifest.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { failuresOf, targetFiles } from '../support/research-fixture.ts';

/**
 * The leak scan and values that are coarser than a day (issue 16: a 200-practice fleet had
 * pseudo_encounters refused because a newborn's `month_of` encounter month equalled a real
 * birth date on the 1st). A column that holds months reveals a month, whatever the real date is;
 * a column that holds real days is still a finding, including when only its 1st-of-month rows
 * match. Counts only: no value is printed.
 */

let demo: DemoCopy;
/** Patients whose birth date the test moves to the 1st of its month (in the identity model only). */
const BORN_ON_THE_FIRST = 6;

beforeAll(async () => {
  demo = copyDemoProject({ tenants: sampleTenants(12) });
  const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+vault_person_tokens'] });
  expect(failuresOf(run)).toEqual([]);
  await withAdapter((a) =>
    a.query(
      `UPDATE staging.stg_patients SET birth_date = CAST(date_trunc('month', birth_date) AS DATE)
        WHERE patient_id IN (SELECT patient_id FROM staging.stg_patients ORDER BY patient_id LIMIT ${BORN_ON_THE_FIRST})`,
    ),
  );
}, 300_000);

afterAll(() => demo?.remove());

async function withAdapter<T>(fn: (a: DuckDBAdapter) => Promise<T>): Promise<T> {
  const f = targetFiles(demo.dir);
  const adapter = await DuckDBAdapter.open({ path: f.main, connections: 1, attach: { research: f.research, vault: f.vault } });
  try {
    return await fn(adapter);
  } finally {
    await adapter.close();
  }
}

/**
 * Findings of the scan on one staged relation, as pseudo_persons would be scanned: `value` is a
 * SQL expression over the identity model `p`, published beside the person's vault token.
 */
async function scan(value: string, where = 'TRUE'): Promise<{ column: string; rows: number }[]> {
  const ws = compileWorkspace(demo.dir);
  const privacy = ws.project.config.privacy!;
  const root = ws.manifest.models.pseudo_persons!;
  const vault = vaultNode(ws.manifest)!;
  return withAdapter((a) =>
    a.transaction(async (s) => {
      await s.createTempTableAs(
        'staged',
        `SELECT v.person_token, ${value} AS published FROM staging.stg_patients p
           JOIN ${quoteRelation(vault.schema, vault.identifier)} v ON v.practice_id = p.practice_id AND v.patient_id = CAST(p.patient_id AS VARCHAR)
          WHERE ${where}`,
        [],
      );
      const findings = await scanRelations(s, ws.manifest, privacy, [root], [{ name: 'staged', relationSql: quoteIdent('staged'), columns: ['person_token', 'published'] }]);
      return findings.map((f) => ({ column: f.column, rows: f.rows }));
    }),
  );
}

describe('the leak scan on dates coarser than a day', () => {
  it('a month column is not a finding where a real birth date on the 1st equals its month', async () => {
    // As month_of(shift_date(...)) gives: a shifted month, which equals the real date only by
    // chance (here: for the patients born on the 1st, a minority).
    const month = `date_trunc('month', CASE WHEN day(p.birth_date) = 1 THEN p.birth_date ELSE p.birth_date + 40 END)`;
    const patients = await withAdapter(async (a) => Number((await a.query('SELECT count(*) AS n FROM staging.stg_patients')).rows[0]!.n));
    expect(patients).toBeGreaterThan(BORN_ON_THE_FIRST * 2);
    expect(await scan(`CAST(${month} AS DATE)`)).toEqual([]);
    expect(await scan(`CAST(${month} AS TIMESTAMP)`)).toEqual([]);
  });

  it('a column of real birth dates is a finding for every row, those on the 1st included', async () => {
    const all = await withAdapter(async (a) => Number((await a.query('SELECT count(*) AS n FROM staging.stg_patients')).rows[0]!.n));
    expect(await scan('p.birth_date')).toEqual([{ column: 'published', rows: all }]);
    // Real dates where they fall on the 1st, months elsewhere: the matches are still findings.
    const mixed = await scan(`CASE WHEN day(p.birth_date) = 1 THEN p.birth_date ELSE p.birth_date + 1 END`);
    expect(mixed).toEqual([{ column: 'published', rows: expect.any(Number) }]);
    expect(mixed[0]!.rows).toBeGreaterThanOrEqual(BORN_ON_THE_FIRST);
  });

  it('a column that publishes the dates of people born on the 1st (and nothing else) is a finding', async () => {
    const onlyFirsts = await scan(`CASE WHEN day(p.birth_date) = 1 THEN p.birth_date END`);
    expect(onlyFirsts).toEqual([{ column: 'published', rows: expect.any(Number) }]);
    expect(onlyFirsts[0]!.rows).toBeGreaterThanOrEqual(BORN_ON_THE_FIRST);
    // Diluted below half with months of other people's real dates, it is a month column again:
    // what is left is the lineage gate's (a real date reaching a research column fails compile).
  });

  it(`fewer than ${MONTH_PRECISION_MIN_VALUES} distinct months do not make a month column: the matches stay findings`, async () => {
    const onTheFirst = `day(p.birth_date) = 1 AND p.patient_id IN (SELECT patient_id FROM staging.stg_patients WHERE day(birth_date) = 1 ORDER BY patient_id LIMIT ${MONTH_PRECISION_MIN_VALUES - 1})`;
    expect(await scan(`CAST(date_trunc('month', p.birth_date) AS DATE)`, onTheFirst)).toEqual([{ column: 'published', rows: MONTH_PRECISION_MIN_VALUES - 1 }]);
  });
});
