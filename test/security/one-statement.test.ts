import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { compileWorkspace, runWorkspace } from '../../src/cli/api.ts';
import { Codes, DiagnosticsError, TsformError } from '../../src/errors.ts';
import { defaultStrategies } from '../../src/execute/strategies/index.ts';
import type { BuildContext } from '../../src/execute/strategy.ts';
import { runDataTest } from '../../src/execute/run-tests.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * Issue 12 item 3: a model is one statement because the engine refuses a second one (PostgreSQL's
 * extended query protocol, DuckDB's prepared statements), and DuckDB reaches no file once tsform's
 * own files are attached. Each hostile text goes through the real runner when it compiles, and
 * always straight into the materializations and the data-test runner with the rendered SQL (below
 * any compile-time check); afterwards the warehouse, the catalog and the file system are as they were.
 */

type Engine = 'duckdb' | 'postgres';

const TSFORM_YML = `name: hostile
tenant_column: practice_id
target: duckdb
targets:
  duckdb:
    type: duckdb
    path: target/tsform.duckdb
    threads: 1
  postgres:
    type: postgres
    url_env: TSFORM_PG_URL
    threads: 1
models:
  staging:
    schema: staging
    scope: tenant
    materialized: table
  global:
    schema: analytics
    scope: global
    materialized: table
`;

const TENANTS_YML = `tenants:
  - { id: acme, name: Acme Clinic, timezone: UTC }
  - { id: bolt, name: Bolt Clinic, timezone: UTC }
`;

const SOURCES_YML = `sources:
  - name: ehr
    schema: raw
    scope: tenant
    loader:
      csv: data/{table}.csv
    tables:
      - name: visits
        columns:
          - { name: practice_id, phi: none }
          - { name: visit_id, phi: none }
`;

/** A project whose benign models exercise a CSV source, a seed, the tenants relation, a view and a test. */
function writeProject(dir: string, extraModels: Record<string, string> = {}): void {
  const files: Record<string, string> = {
    'tsform.yml': TSFORM_YML,
    'tenants.yml': TENANTS_YML,
    'models/sources.yml': SOURCES_YML,
    'data/visits.csv': 'practice_id,visit_id\nacme,v1\nacme,v2\nbolt,v3\n',
    'seeds/codes.csv': 'code,label\na,Alpha\nb,Beta\n',
    'models/staging/stg_visits.sql': 'select v.practice_id, v.visit_id, t.name as practice_name from {{source "ehr" "visits"}} v join {{ref "tenants"}} t on t.practice_id = v.practice_id\n',
    'models/global/codes_view.sql': '{{config materialized="view"}}\nselect code, label from {{ref "codes"}}\n',
    'tests/visits_have_ids.sql': 'select * from {{ref "stg_visits"}} where visit_id is null\n',
    ...extraModels,
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/** Hostile model texts; `$DIR` is a folder of the test's own (where nothing may appear). */
const SECOND_STATEMENT: { name: string; sql: string; engines?: Engine[] }[] = [
  {
    name: 'grant and policy after a select (issue 12)',
    sql: 'select 1 as a; grant select on staging.stg_patients to research_reader; create policy zz on staging.stg_patients for select to research_reader using (true); select 1 as a',
  },
  { name: 'DDL after a select', sql: 'select 1 as a;\ncreate table staging.pwned as select 42 as x' },
  { name: 'a comment hiding the break', sql: 'select 1 as a; -- x\ncreate table staging.pwned as select 42 as x' },
  { name: 'a block comment before DDL', sql: 'select 1 as a /* ; */ ; /* x */ drop table staging.stg_patients' },
  { name: 'COPY TO after a select', sql: "select 1 as a; copy (select key_hex from vault.keys) to '$DIR/stolen.csv'", engines: ['duckdb'] },
  { name: 'COPY TO a server file after a select', sql: "select 1 as a; copy (select ssn from staging.stg_patients) to '$DIR/stolen.csv'", engines: ['postgres'] },
  { name: 'ATTACH after a select', sql: "select 1 as a; attach '$DIR/other.duckdb' as other", engines: ['duckdb'] },
  { name: 'INSTALL and LOAD after a select', sql: 'select 1 as a; install httpfs; load httpfs', engines: ['duckdb'] },
  { name: 'SET after a select', sql: "select 1 as a; set search_path = 'staging'" },
  { name: 'PRAGMA after a select', sql: 'select 1 as a; pragma enable_profiling', engines: ['duckdb'] },
  { name: 'DO block after a select', sql: "select 1 as a; do $$ begin execute 'grant select on staging.stg_patients to research_reader'; end $$", engines: ['postgres'] },
  { name: 'a leading statement', sql: 'create table staging.pwned as select 42 as x; select 1 as a' },
];

/** Reads of the file system, the environment or extensions inside one SELECT: DuckDB's external access is off. */
const FILE_READS = [
  { name: 'read_csv', sql: "select * from read_csv('$DIR/secret.csv')" },
  { name: 'read_text', sql: "select content from read_text('$DIR/secret.csv')" },
  { name: 'glob', sql: "select file from glob('$DIR/*')" },
  { name: 'read_csv of a relative path', sql: "select * from read_csv('data/visits.csv')" },
  { name: 'read_parquet', sql: "select * from read_parquet('$DIR/*.parquet')" },
];

interface Warehouse {
  adapter: () => Promise<Adapter>;
  /** Everything a hostile text could have changed, as text (through `open` when given: one DuckDB instance per file). */
  snapshot: (open?: Adapter) => Promise<string[]>;
  run: (dir: string) => Promise<Awaited<ReturnType<typeof runWorkspace>>>;
}

describe.each<Engine>(['duckdb', 'postgres'])('the engine refuses a second statement (%s)', (engine) => {
  let server: ThrowawayPostgres | undefined;
  let root: string;
  let project: string;
  let outside: string;
  let wh: Warehouse;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tsform-one-statement-'));
    project = join(root, 'project');
    outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.csv'), 'x\nsecret\n');
    writeProject(project);
    if (engine === 'postgres') {
      server = await startThrowawayPostgres();
      const url = server.url;
      await withPg(url, async (c) => {
        await c.query('CREATE ROLE research_reader NOLOGIN');
        await c.query('CREATE SCHEMA IF NOT EXISTS staging');
        await c.query("CREATE TABLE staging.stg_patients AS SELECT 'acme' AS practice_id, '999-00-1234' AS ssn");
      });
      wh = {
        adapter: () => createPostgresAdapter({ url, poolSize: 2 }),
        snapshot: () => withPg(url, pgSnapshot),
        run: (dir) => withEnv({ TSFORM_PG_URL: url }, () => runWorkspace({ projectDir: dir, command: 'build', target: 'postgres' })),
      };
    } else {
      const files = { path: join(project, 'target/tsform.duckdb'), attach: { research: join(project, 'target/research.duckdb'), vault: join(project, 'target/vault.duckdb') } };
      const seeded = await DuckDBAdapter.open(files);
      await seeded.query('CREATE SCHEMA IF NOT EXISTS staging');
      await seeded.query("CREATE TABLE staging.stg_patients AS SELECT 'acme' AS practice_id, '999-00-1234' AS ssn");
      await seeded.query("CREATE TABLE vault.keys AS SELECT 'k' AS fingerprint, 'deadbeef' AS key_hex");
      await seeded.close();
      wh = {
        adapter: () => DuckDBAdapter.open({ ...files, connections: 1 }),
        snapshot: async (open) => {
          if (open) return duckSnapshot(open);
          const db = await DuckDBAdapter.open({ ...files, connections: 1 });
          try {
            return await duckSnapshot(db);
          } finally {
            await db.close();
          }
        },
        run: (dir) => runWorkspace({ projectDir: dir, command: 'build' }),
      };
    }
    // The benign project builds (CSV source, seed, tenants, view, test) with the walls up.
    const first = await wh.run(project);
    expect(first.results.filter((r) => r.status !== 'success').map((r) => `${r.node}: ${r.message}`)).toEqual([]);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const cases = SECOND_STATEMENT.filter((c) => !c.engines || c.engines.includes(engine));

  it.each(cases)('through the runner: $name', async ({ name, sql }) => {
    const before = await wh.snapshot();
    const file = join(project, 'models/global/hostile.sql');
    writeFileSync(file, `${sql.replaceAll('$DIR', outside)}\n`);
    let run: Awaited<ReturnType<typeof runWorkspace>> | undefined;
    try {
      run = await wh.run(project);
    } catch (err) {
      // A compile-time check may refuse it first (issue 12, "Every model is one SELECT"): also fine.
      expect(err).toBeInstanceOf(DiagnosticsError);
    } finally {
      rmSync(file);
    }
    if (run) {
      const hostile = run.results.find((r) => r.node === 'hostile');
      expect(hostile?.status, JSON.stringify(hostile)).toBe('error');
      // Several statements: the engine's refusal. A text whose first statement cannot be
      // wrapped (`CREATE TABLE x AS create table ...`) is a syntax error before that.
      expect([Codes.multipleStatements, ...(name === 'a leading statement' ? [Codes.sqlError] : [])]).toContain(hostile?.code);
      expect(hostile?.message).not.toMatch(/999-00-1234|deadbeef/);
      expect(run.results.filter((r) => r.node !== 'hostile' && r.status !== 'success' && r.status !== 'skipped')).toEqual([]);
    }
    expect(await wh.snapshot()).toEqual(before);
    expect(readdirSync(outside)).toEqual(['secret.csv']);
    expect(existsSync('stolen.csv')).toBe(false);
  });

  describe('below the compile check', () => {
    let adapter: Adapter;
    let ctx: BuildContext;
    beforeAll(async () => {
      adapter = await wh.adapter();
      const ws = compileWorkspace(project);
      ctx = {
        adapter,
        manifest: ws.manifest,
        projectRoot: project,
        metaSchema: 'tsform_meta',
        tenantColumn: 'practice_id',
        tenants: ws.project.tenants,
        fullRefresh: false,
      };
    });
    afterAll(async () => {
      await adapter?.close();
    });

    const strategies = defaultStrategies();
    const node = (name: string, materialized: string, sql: string) => {
      const base = name === 'stg_visits' ? ctx.manifest.models.stg_visits! : ctx.manifest.models.codes_view!;
      return { ...base, identifier: `hostile_${materialized}`, name: `hostile_${materialized}`, materialized, compiled_sql: sql.replaceAll('$DIR', outside), compiled_incremental_sql: sql.replaceAll('$DIR', outside) } as typeof base;
    };

    it.each(cases)('every materialization refuses it: $name', async ({ sql }) => {
      const before = await wh.snapshot(adapter);
      const attempts: [string, () => Promise<unknown>][] = [
        ['global table', () => strategies.build(ctx, node('codes_view', 'table', sql), null)],
        ['view', () => strategies.build(ctx, node('codes_view', 'view', sql), null)],
        ['tenant table', () => strategies.build(ctx, node('stg_visits', 'table', sql), ['acme'])],
        ['incremental', () => strategies.build(ctx, node('stg_visits', 'incremental', sql.replace('select 1 as a', "select 'acme' as practice_id")), ['acme'])],
        ['data test', () => runDataTest(adapter, { ...Object.values(ctx.manifest.tests)[0]!, sql: sql.replaceAll('$DIR', outside), scope: 'global' }, undefined)],
        ['adapter query', () => adapter.query(sql.replaceAll('$DIR', outside))],
        ['session query', () => adapter.transaction((s) => s.query(sql.replaceAll('$DIR', outside)))],
      ];
      for (const [what, attempt] of attempts) {
        const err = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, what).toBeInstanceOf(Error);
        // Refused whole: by the engine as several statements (TSF416), or, where tsform wraps the
        // text (`CREATE TABLE x AS ...`, `FROM ( ... )`), as a syntax error before anything runs.
        if (!(err instanceof TsformError)) expect(String((err as Error).message), what).toMatch(/syntax error|Parser Error/i);
        else expect(err.code, what).toBe(Codes.multipleStatements);
      }
      expect(await wh.snapshot(adapter)).toEqual(before);
      expect(readdirSync(outside)).toEqual(['secret.csv']);
    });

    it('a single statement with a trailing semicolon and comment is still one statement', async () => {
      const out = await strategies.build(ctx, node('codes_view', 'table', 'select 1 as a; -- x'), null);
      expect([...out.rows.values()]).toEqual([1]);
      await adapter.query('DROP TABLE analytics.hostile_table');
    });

    it.runIf(engine === 'duckdb')('DuckDB: a model that reads or writes a file reaches nothing', async () => {
      const before = await wh.snapshot(adapter);
      for (const { name, sql } of FILE_READS) {
        const model = sql.replaceAll('$DIR', outside);
        for (const [what, attempt] of [
          ['table', () => strategies.build(ctx, node('codes_view', 'table', model), null)],
          ['view', () => strategies.build(ctx, node('codes_view', 'view', model), null)],
          ['query', () => adapter.query(model)],
        ] as const) {
          const err = await attempt().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect((err as TsformError)?.code, `${name} (${what})`).toBe(Codes.externalAccess);
          expect(String((err as Error).message)).not.toContain('secret');
        }
      }
      // One statement each, straight to the adapter: the walls are the engine's, not the runner's.
      for (const sql of [
        `COPY (SELECT key_hex FROM vault.keys) TO '${outside}/stolen.csv'`,
        "COPY (SELECT key_hex FROM vault.keys) TO 'stolen.csv'",
        `COPY staging.stg_patients FROM '${outside}/secret.csv'`,
        `ATTACH '${outside}/other.duckdb' AS other`,
        `EXPORT DATABASE '${outside}/export'`,
        'INSTALL httpfs',
        'LOAD httpfs',
      ]) {
        const err = await adapter.query(sql).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as TsformError)?.code, sql).toBe(Codes.externalAccess);
      }
      // The configuration is locked: nothing turns the wall back off.
      for (const sql of ['SET enable_external_access = true', 'RESET enable_external_access', "SET allowed_directories = ['/']", 'SET lock_configuration = false']) {
        await expect(adapter.query(sql), sql).rejects.toThrow(/configuration has been locked/);
      }
      expect(await wh.snapshot(adapter)).toEqual(before);
      expect(readdirSync(outside)).toEqual(['secret.csv']);
      expect(existsSync('stolen.csv')).toBe(false);
    });

    it('tsform\'s own multi-statement DDL still runs, in its own method', async () => {
      await adapter.transaction((s) => s.runScript('CREATE TABLE analytics.own_a (x INTEGER); CREATE TABLE analytics.own_b (y INTEGER)'));
      expect(await adapter.describe('analytics', 'own_b')).toBeDefined();
      await adapter.transaction((s) => s.runScript('DROP TABLE analytics.own_a; DROP TABLE analytics.own_b'));
    });
  });
});

/** Every relation (but tsform's run bookkeeping) with its row count, in every attached database. */
async function duckSnapshot(db: Adapter): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT table_catalog || '.' || table_schema || '.' || table_name AS rel FROM information_schema.tables
      WHERE table_catalog IN ('tsform', 'research', 'vault') AND table_schema <> 'tsform_meta' ORDER BY 1`,
  );
  const out: string[] = [];
  for (const r of rows) {
    const rel = String(r.rel).split('.').map((p) => `"${p}"`).join('.');
    const n = await db.query(`SELECT count(*) AS n FROM ${rel}`);
    out.push(`${r.rel}: ${n.rows[0]!.n}`);
  }
  return out;
}

/** Relations, grants and policies outside the system schemas (but tsform's run bookkeeping). */
async function pgSnapshot(c: pg.Client): Promise<string[]> {
  const rels = await c.query(
    `SELECT n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '') AS line
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'tsform_meta') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
      ORDER BY 1`,
  );
  const policies = await c.query(`SELECT schemaname || '.' || tablename || ' ' || policyname AS line FROM pg_policies ORDER BY 1`);
  const grants = await c.query(
    `SELECT table_schema || '.' || table_name || ' ' || privilege_type AS line FROM information_schema.role_table_grants WHERE grantee = 'research_reader' ORDER BY 1`,
  );
  const path = await c.query(`SELECT current_setting('search_path') AS line`);
  return [...rels.rows, ...policies.rows, ...grants.rows, ...path.rows].map((r: { line: string }) => r.line);
}

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
