import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { csvRunLoads } from '../../src/execute/csv-run-loads.ts';
import { copyDemoProject, type DemoCopy } from '../support/demo-project.ts';

/** A CSV source is parsed once per run, whatever the number of batches (issue 16). */
describe('csvRunLoads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsform-csv-run-'));
  let db: DuckDBAdapter;
  beforeEach(async () => {
    db = await DuckDBAdapter.open({ path: ':memory:', connections: 2 });
    await db.query('CREATE SCHEMA meta');
  });
  afterEach(() => db.close());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const loads = (runTenants: string[]) =>
    csvRunLoads({ adapter: db, projectRoot: dir, metaSchema: 'meta', tenantColumn: 'practice_id', runTenants: new Set(runTenants), knownTenants: new Set(['a', 'b', 'c']) });
  const tables = async () => (await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'meta' ORDER BY 1`)).rows.map((r) => String(r.table_name));

  it('loads a file once for concurrent batches, keeps only the run practices, counts unknown ones, drops at the end', async () => {
    writeFileSync(join(dir, 'x.csv'), 'practice_id,v\na,1\nb,2\nc,3\nzz,4\na,5\n');
    const l = loads(['a', 'b']);
    const [one, two] = await Promise.all([l.load('x.csv'), l.load('x.csv')]);
    expect(two).toBe(one);
    expect(one.header).toEqual(['practice_id', 'v']);
    expect(one.unknownTenantRows).toBe(1);
    const rows = (await db.query(`SELECT practice_id, v FROM meta.${one.table} ORDER BY v`)).rows;
    expect(rows).toEqual([{ practice_id: 'a', v: '1' }, { practice_id: 'b', v: '2' }, { practice_id: 'a', v: '5' }]);
    expect(await tables()).toEqual([one.table]);
    await l.dropAll();
    expect(await tables()).toEqual([]);
  });

  it('does not remember a failed load: the next batch tries again', async () => {
    const l = loads(['a']);
    // Both used to leave the CSV parser waiting forever (pipe() does not forward a read error).
    await expect(l.load('later.csv')).rejects.toThrow(/later\.csv: file not found/);
    writeFileSync(join(dir, 'bad.csv.gz'), 'not gzip at all');
    await expect(l.load('bad.csv.gz')).rejects.toThrow(/bad\.csv\.gz: not a valid gzip file/);
    writeFileSync(join(dir, 'later.csv'), 'practice_id,v\na,1\n');
    const ok = await l.load('later.csv');
    expect((await db.query(`SELECT count(*) AS n FROM meta.${ok.table}`)).rows[0]!.n).toBe(1);
    await l.dropAll();
    expect(await tables()).toEqual([]);
  });
});

describe('a demo run with several batches per source', () => {
  let demo: DemoCopy;
  afterAll(() => demo?.remove());

  it('builds every practice in several batches and leaves no load table behind', async () => {
    // 12 practices in batches of 5: three batches per source, one file parse each run.
    demo = copyDemoProject({ tenants: (ids) => [...ids].sort().slice(0, 12) });
    const config = join(demo.dir, 'tsform.yml');
    const { readFileSync } = await import('node:fs');
    writeFileSync(config, readFileSync(config, 'utf8').replace(/^(\s+size: )\d+$/m, '$15'));
    const run = await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['+stg_encounters', '+stg_patients'] });
    expect(run.results.filter((r) => r.status !== 'success').map((r) => r.node)).toEqual([]);
    const sizes = new Set(run.results.filter((r) => r.node.startsWith('source:ehr.encounters@')).map((r) => r.batch_size));
    expect(sizes.size).toBeGreaterThan(1);
    const db = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb'), connections: 1 });
    try {
      const left = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_name LIKE '__tsf_load_%'`);
      expect(left.rows).toEqual([]);
      // Each practice holds exactly its own rows of the extract.
      const per = await db.query(`SELECT practice_id, count(*) AS n FROM raw.encounters GROUP BY 1 ORDER BY 1`);
      expect(per.rows.map((r) => r.practice_id)).toEqual([...demo.tenantIds].sort());
      const staged = await db.query(`SELECT count(*) AS n FROM staging.stg_encounters`);
      expect(Number(staged.rows[0]!.n)).toBe(per.rows.reduce((a, r) => a + Number(r.n), 0));
    } finally {
      await db.close();
    }
  });
});
