import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { ATTACKS, CONTROLS, EXTRAS_SOURCE_SQL, leakyFiles, writeExtras } from '../support/leak-attacks.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { addProjectFiles, failuresOf, resultsOf, SSN_PATTERN } from '../support/research-fixture.ts';

/**
 * The leak scan on a PostgreSQL warehouse (its SQL is shared with DuckDB's, so each construct
 * must mean the same on both): every reshaped identifier of the attack fixture is found on the
 * staged rows and the practice's rows are not written; the controls pass. Counts only.
 */

let pgServer: ThrowawayPostgres;
let demo: DemoCopy;

const build = (select: string[]): Promise<RunResults> =>
  runWorkspace({ projectDir: demo.dir, command: 'build', select, target: 'postgres', env: { ...process.env, TSFORM_PG_URL: pgServer.url } });

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const pg = await createPostgresAdapter({ url: pgServer.url, poolSize: 1 });
  try {
    return (await pg.query(sql)).rows;
  } finally {
    await pg.close();
  }
}

beforeAll(async () => {
  pgServer = await startThrowawayPostgres();
  demo = copyDemoProject({ tenants: sampleTenants(3) });
  const base = await build(['+vault_person_tokens']);
  expect(failuresOf(base)).toEqual([]);
  expect(writeExtras(demo.dir, await query(EXTRAS_SOURCE_SQL))).toBeGreaterThanOrEqual(5);
}, 300_000);

afterAll(async () => {
  demo?.remove();
  await pgServer?.stop();
});

describe('the leak scan on PostgreSQL', () => {
  it('names every attack column and writes nothing for a refused practice', async () => {
    const remove = addProjectFiles(demo.dir, leakyFiles(demo.dir));
    try {
      const run = await build(['source:test.extras', 'sc_leaky_pseudo']);
      expect(SSN_PATTERN.test(JSON.stringify(run))).toBe(false);
      const results = resultsOf(run, 'sc_leaky_pseudo');
      expect(results.length).toBe(demo.tenantIds.length);
      const failed = results.filter((r) => r.status === 'error');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((r) => r.code === 'TSF414')).toBe(true);
      const named = new Set(failed.flatMap((r) => [...(r.message ?? '').matchAll(/(\w+) \(\d+ rows\)/g)].map((m) => m[1]!)));
      expect([...named].sort()).toEqual([...ATTACKS].sort());
      const [exists] = await query(`SELECT to_regclass('pseudo.sc_leaky_pseudo') IS NOT NULL AS e`);
      if (exists!.e) {
        const ids = failed.map((r) => r.tenant!);
        const pg = await createPostgresAdapter({ url: pgServer.url, poolSize: 1 });
        try {
          const { rows } = await pg.query('SELECT count(*) AS n FROM pseudo.sc_leaky_pseudo WHERE practice_id = ANY($1::text[])', [ids]);
          expect(Number(rows[0]!.n)).toBe(0);
        } finally {
          await pg.close();
        }
      }
    } finally {
      remove();
    }
  });

  it('lets the controls through: a year, another person\'s birth date, a common date and small counts', async () => {
    const remove = addProjectFiles(demo.dir, leakyFiles(demo.dir, CONTROLS));
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
