import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { Codes } from '../../src/errors.ts';
import { loadCsvText } from '../../src/warehouse/load-csv.ts';
import { cli } from '../support/cli.ts';
import { removeTempProjects, writeTempProject } from '../fixtures/project-fixture.ts';

afterAll(removeTempProjects);

/**
 * Red-team: a CSV extract whose header names a column twice failed every practice with the
 * engine's `Catalog Error: Column with name visits already exists!`. It is now TSF109 at the
 * header's line, as a seed's is, before the load table is created.
 */
describe('a CSV extract whose header repeats a column', () => {
  it('is TSF109 at line 1, and no load table is created', async () => {
    const dir = writeTempProject({ 'data/daily_visits.csv': 'practice_id,visits,Visits\na,1,2\n' });
    const db = await DuckDBAdapter.open({ path: ':memory:', connections: 1 });
    try {
      await db.query('CREATE SCHEMA meta');
      const load = db.transaction((s) => loadCsvText(s, join(dir, 'data/daily_visits.csv'), 'data/daily_visits.csv', 'meta', 'load_x'));
      await expect(load).rejects.toMatchObject({ code: Codes.raggedCsv, where: { file: 'data/daily_visits.csv', line: 1 } });
      await expect(load).rejects.toThrow("data/daily_visits.csv:1: error TSF109: header repeats column 'Visits'");
      expect((await db.query(`SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'meta'`)).rows[0]!.n).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('a build says so for each practice, without the engine\'s error, and the practices\' raw rows stay', async () => {
    const dir = writeTempProject({});
    expect((await cli('init', dir)).code).toBe(0);
    expect((await cli('build', '--project-dir', dir, '--log-format', 'json')).code).toBe(0);
    const db = await DuckDBAdapter.open({ path: join(dir, 'target/tsform.duckdb'), connections: 1 });
    const count = async () => Number((await db.query('SELECT count(*) AS n FROM raw.daily_visits')).rows[0]!.n);
    const before = await count();
    await db.close();
    expect(before).toBeGreaterThan(0);

    const csv = join(dir, 'data/daily_visits.csv');
    const lines = readFileSync(csv, 'utf8').trimEnd().split('\n');
    writeFileSync(csv, `${[`${lines[0]},visits`, ...lines.slice(1).map((l) => `${l},1`)].join('\n')}\n`);
    const r = await cli('build', '--project-dir', dir, '--log-format', 'json');
    expect(r.code).toBe(1);
    const nodes = r.out.map((l) => JSON.parse(l) as { event: string; node?: string; status?: string; message?: string; code?: string }).filter((e) => e.event === 'node' && e.node?.startsWith('source:'));
    expect(nodes.length).toBeGreaterThan(0);
    for (const n of nodes) {
      expect(n.code).toBe(Codes.raggedCsv);
      expect(n.message).toContain("data/daily_visits.csv:1: error TSF109: header repeats column 'visits'");
      expect(n.message).not.toMatch(/Catalog Error|already exists/);
    }
    const again = await DuckDBAdapter.open({ path: join(dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      expect(Number((await again.query('SELECT count(*) AS n FROM raw.daily_visits')).rows[0]!.n)).toBe(before);
    } finally {
      await again.close();
    }
  });
});
