import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { runWorkspace } from '../../src/cli/api.ts';
import { purgeCommand } from '../../src/cli/purge.ts';
import { copyDemoProject, sampleTenants, type DemoCopy } from '../support/demo-project.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { failuresOf, withWarehouse, type Query } from '../support/research-fixture.ts';

/**
 * `tsform purge` deletes an offboarded practice's rows from the tables the project no longer
 * names too: a renamed model's old table, or the table of a model that is ephemeral now (red-team,
 * 2026-12-07: purge deleted from the renamed model's table, left the old one holding the
 * practice's patients, and said the files were rewritten without its rows); and only from
 * tsform's: another team's table with the tenant column keeps its rows. Counts and ids only.
 */

const roster = (materialized: string) => `{{config materialized="${materialized}"}}\nselect practice_id, patient_id from {{ref "stg_patients"}}\n`;

describe('purge finds the tables a renamed or now-ephemeral model left behind (DuckDB, end to end)', () => {
  let demo: DemoCopy;
  let gone: string;
  const byPractice = (rel: string) => (q: Query) => q(`SELECT practice_id AS p, count(*) AS n FROM ${rel} GROUP BY 1 ORDER BY 1`).then((r) => r.map((x) => `${x.p}:${x.n}`));

  beforeAll(async () => {
    demo = copyDemoProject({ tenants: sampleTenants(2) });
    gone = [...demo.tenantIds].sort()[0]!;
    writeFileSync(join(demo.dir, 'models/marts/zz_old.sql'), roster('table'));
    writeFileSync(join(demo.dir, 'models/marts/zz_eph.sql'), roster('table'));
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'run' }))).toEqual([]);
    // Another team's table beside tsform's, with the tenant column: not tsform's to purge.
    const wh = await DuckDBAdapter.open({ path: join(demo.dir, 'target/tsform.duckdb') });
    await wh.query(`CREATE TABLE marts.ops_ledger AS SELECT practice_id, count(*) AS n FROM marts.zz_old GROUP BY 1`).finally(() => wh.close());
    renameSync(join(demo.dir, 'models/marts/zz_old.sql'), join(demo.dir, 'models/marts/zz_new.sql'));
    writeFileSync(join(demo.dir, 'models/marts/zz_eph.sql'), roster('ephemeral'));
    expect(failuresOf(await runWorkspace({ projectDir: demo.dir, command: 'run', select: ['zz_new'] }))).toEqual([]);
  }, 600_000);
  afterAll(() => demo?.remove());

  it('deletes its rows there, names the tables, and leaves every other practice\'s rows', async () => {
    const foreign = await withWarehouse(demo.dir, byPractice('marts.ops_ledger'));
    const before = await withWarehouse(demo.dir, async (q) => [await byPractice('marts.zz_old')(q), await byPractice('marts.zz_eph')(q)]);
    for (const rows of before) expect(rows.some((r) => r.startsWith(`${gone}:`))).toBe(true);
    const file = join(demo.dir, 'tenants.yml');
    const doc = parse(readFileSync(file, 'utf8')) as { tenants: { id: string }[] };
    writeFileSync(file, stringify({ ...doc, tenants: doc.tenants.filter((t) => t.id !== gone) }));
    const { counts, notes } = await purgeCommand(demo.dir, undefined, [gone], true);
    for (const rel of ['marts.zz_old', 'marts.zz_eph']) expect(counts.find((c) => c.relation === rel)?.rows, rel).toBeGreaterThan(0);
    expect(notes).toContainEqual(`2 table(s) no model of this project builds (a renamed, deleted or moved model's, left in place) held its rows: marts.zz_eph, marts.zz_old; drop them if nothing reads them`);
    const after = await withWarehouse(demo.dir, async (q) => [await byPractice('marts.zz_old')(q), await byPractice('marts.zz_eph')(q)]);
    expect(after).toEqual(before.map((rows) => rows.filter((x) => !x.startsWith(`${gone}:`))));
    expect(await withWarehouse(demo.dir, byPractice('marts.ops_ledger'))).toEqual(foreign);
    expect(counts.map((c) => c.relation)).not.toContain('marts.ops_ledger');
  }, 600_000);
});

describe.each(['duckdb', 'postgres'] as const)('tablesWithColumn on %s', (kind) => {
  let pg: ThrowawayPostgres | undefined;
  let dir: string;
  let a: Adapter;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsform-tables-'));
    if (kind === 'postgres') pg = await startThrowawayPostgres();
    a = kind === 'postgres' ? await createPostgresAdapter({ url: pg!.url, poolSize: 2 }) : await DuckDBAdapter.open({ path: join(dir, 'w.duckdb'), connections: 2 });
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists base tables with the column in the schemas asked: no views, no partitions, no other schema', async () => {
    await a.query('CREATE SCHEMA m');
    await a.query('CREATE SCHEMA other');
    await a.query('CREATE TABLE m.t1 (practice_id VARCHAR, x INTEGER)');
    await a.query('CREATE TABLE m.t2 (x INTEGER)');
    await a.query('CREATE VIEW m.v1 AS SELECT practice_id FROM m.t1');
    await a.query('CREATE TABLE other.t3 (practice_id VARCHAR)');
    if (kind === 'postgres') {
      await a.query('CREATE TABLE m.parted (practice_id VARCHAR) PARTITION BY LIST (practice_id)');
      await a.query(`CREATE TABLE m.parted__p1 PARTITION OF m.parted FOR VALUES IN ('a')`);
    }
    // The column as the engine would match it: DuckDB's identifiers match in any case, PostgreSQL's quoted ones exactly.
    await a.query('CREATE TABLE m.t4 ("Practice_ID" VARCHAR)');
    const expected = kind === 'postgres' ? [{ schema: 'm', name: 'parted' }, { schema: 'm', name: 't1' }] : [{ schema: 'm', name: 't1' }, { schema: 'm', name: 't4' }];
    expect(await a.tablesWithColumn!(['m'], 'practice_id')).toEqual(expected);
  });
});
