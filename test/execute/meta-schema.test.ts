import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { RunResults } from '../../src/artifacts/run-results.ts';
import { fixedClock } from '../../src/clock.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import {
  CAPTURE_LOCKS,
  CAPTURE_WATERMARKS,
  LANDING_FILES,
  META_VERSION,
  migrateMeta,
  NODE_RUNS,
  SCHEMA_VERSION,
  TENANT_STATE,
  type NodeRunRow,
} from '../../src/warehouse/meta-schema.ts';
import { readRunHistory, readTenantState, recordRunHistory, writeTenantState } from '../../src/execute/state-store.ts';
import { findRetiredTenants } from '../../src/ingest/purge-tenant.ts';
import { onboardingTenants } from '../../src/ingest/run-capture.ts';
import { ensureLockRows, lockTenant, readWatermarks, writeWatermark } from '../../src/ingest/watermarks.ts';
import { quoteIdent, quoteRelation } from '../../src/sql/quote.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * tsform's meta tables have one owner (warehouse/meta-schema.ts) and versioned migrations. Each
 * case runs on both engines, in a meta schema of its own: a fresh install, a warehouse of the
 * shape before versioning (tables made on first use by each module, as main made them), a second
 * migration, two migrators at once, and the shapes a migration must refuse.
 */

/** Every migration step, 1 to the current version. */
const ALL_STEPS = Array.from({ length: META_VERSION }, (_, i) => i + 1);
const TABLES = [NODE_RUNS, TENANT_STATE, CAPTURE_WATERMARKS, CAPTURE_LOCKS, LANDING_FILES];

/** Version 1: the DDL each module ran on first use before the meta schema had an owner (verbatim). */
function versionOneDdl(m: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${quoteRelation(m, 'node_runs')} (
       run_id VARCHAR NOT NULL, command VARCHAR NOT NULL, node VARCHAR NOT NULL, model VARCHAR NOT NULL,
       tenant VARCHAR, kind VARCHAR NOT NULL, status VARCHAR NOT NULL, rows_affected BIGINT,
       duration_ms BIGINT NOT NULL, code VARCHAR, finished_at TIMESTAMPTZ NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${quoteRelation(m, 'tenant_state')} (
       tenant VARCHAR PRIMARY KEY, loaded_through DATE NOT NULL, last_success_at TIMESTAMPTZ NOT NULL, last_run_id VARCHAR NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${quoteRelation(m, 'capture_watermarks')} (
       source_table VARCHAR NOT NULL, tenant VARCHAR NOT NULL, stream VARCHAR NOT NULL,
       updated_at VARCHAR NOT NULL, key_json VARCHAR NOT NULL, rows_captured BIGINT NOT NULL, captured_at TIMESTAMPTZ NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${quoteRelation(m, 'capture_locks')} (
       source_table VARCHAR NOT NULL, tenant VARCHAR NOT NULL, chunks BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${quoteRelation(m, 'landing_files')} (
       source_table VARCHAR NOT NULL, tenant VARCHAR NOT NULL, file VARCHAR NOT NULL,
       size_bytes BIGINT NOT NULL, mtime_ms BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)`,
  ];
}

const CLOCK = fixedClock('2026-03-02T06:00:00Z');

function runOf(runId: string, tenant: string): RunResults {
  return {
    schema_version: 1,
    run_id: runId,
    command: 'run',
    target: 'test',
    started_at: '2026-03-02T04:59:00.000Z',
    finished_at: '2026-03-02T05:00:00.000Z',
    elapsed_ms: 60_000,
    results: [{ node: `stg@${tenant}`, model: 'stg', tenant, kind: 'build', status: 'success', rows: 3, duration_ms: 1200, message: null }],
    tenants: {},
  };
}

/** The same adapter seen as another migrator: calls through it share nothing in-process with the adapter's own. */
function twin(a: Adapter): Adapter {
  return {
    kind: a.kind,
    capabilities: a.capabilities,
    copyStaging: a.copyStaging,
    foldDialect: a.foldDialect,
    transaction: (fn, o) => a.transaction(fn, o),
    query: (sql, params) => a.query(sql, params),
    describe: (s, n) => a.describe(s, n),
    ensureSchema: (s) => a.ensureSchema(s),
    classifyError: (e) => a.classifyError(e),
    isStatementError: (e) => a.isStatementError(e),
    describeError: (e) => a.describeError(e),
    close: async () => undefined,
  };
}

async function versions(a: Adapter, m: string): Promise<number[]> {
  const { rows } = await a.query(`SELECT version FROM ${quoteRelation(m, SCHEMA_VERSION.name)} ORDER BY version`);
  return rows.map((r) => Number(r.version));
}

async function rejection(p: Promise<unknown>): Promise<TsformError> {
  try {
    await p;
  } catch (err) {
    return err as TsformError;
  }
  throw new Error('expected a rejection');
}

interface Engine {
  name: 'duckdb' | 'postgres';
  adapter(): Adapter;
  /** Another process's adapter on the same warehouse (PostgreSQL), or this process's twin (DuckDB: one writing process per file). */
  second(): Adapter;
}

let dir: string;
let duck: DuckDBAdapter;
let server: ThrowawayPostgres;
let pg: Adapter;
let pg2: Adapter;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tsform-meta-'));
  duck = await DuckDBAdapter.open({ path: join(dir, 'meta.duckdb'), connections: 3 });
  server = await startThrowawayPostgres();
  pg = await createPostgresAdapter({ url: server.url, poolSize: 3 });
  pg2 = await createPostgresAdapter({ url: server.url, poolSize: 3 });
});

afterAll(async () => {
  await duck?.close();
  await pg?.close();
  await pg2?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const engines: Engine[] = [
  { name: 'duckdb', adapter: () => duck, second: () => twin(duck) },
  { name: 'postgres', adapter: () => pg, second: () => pg2 },
];

describe.each(engines)('meta schema on $name', (engine) => {
  it('fresh install: every table at the current version, with its columns', async () => {
    const db = engine.adapter();
    const m = 'meta_fresh';
    expect(await migrateMeta(db, m)).toEqual({ from: 0, to: META_VERSION, applied: ALL_STEPS });
    expect(await versions(db, m)).toEqual(ALL_STEPS);
    for (const t of TABLES) {
      const info = await db.describe(m, t.name);
      expect(info?.columns.map((c) => c.name), t.name).toEqual(Object.keys(t.columns));
    }
    const { rows } = await db.query(
      engine.name === 'postgres'
        ? `SELECT indexname AS name FROM pg_indexes WHERE schemaname = $1 AND indexname NOT LIKE '%_pkey' ORDER BY 1`
        : `SELECT index_name AS name FROM duckdb_indexes() WHERE schema_name = $1 ORDER BY 1`,
      [m],
    );
    // Version 2 is PostgreSQL's indexes; DuckDB records the step and has nothing to build.
    expect(rows.map((r) => r.name)).toEqual(
      engine.name === 'postgres' ? ['capture_locks_practice', 'capture_watermarks_position', 'landing_files_practice', 'logical_queue_practice', 'node_runs_finished_at'] : [],
    );
  });

  it('migrates a version-1 warehouse (tables made on first use, no schema_version) and its rows keep working', async () => {
    const db = engine.adapter();
    const m = 'meta_v1';
    await db.ensureSchema(m);
    for (const ddl of versionOneDdl(m)) await db.query(ddl);
    await db.query(
      `INSERT INTO ${quoteRelation(m, 'capture_watermarks')} VALUES ('ehr.encounters', 'p1', 'steady', '2026-03-01 10:00:00', '["7"]', 5, CAST('2026-03-01T10:05:00Z' AS TIMESTAMPTZ))`,
    );
    await db.query(`INSERT INTO ${quoteRelation(m, 'capture_locks')} VALUES ('ehr.encounters', 'p1', 3)`);
    await db.query(`INSERT INTO ${quoteRelation(m, 'tenant_state')} VALUES ('gone', CAST('2026-02-01' AS DATE), CAST('2026-02-02T05:00:00Z' AS TIMESTAMPTZ), 'old')`);
    await db.query(
      `INSERT INTO ${quoteRelation(m, 'node_runs')} VALUES ('r0', 'run', 'stg@p1', 'stg', 'p1', 'build', 'success', 2, 900, NULL, CAST('2026-03-01T05:00:00Z' AS TIMESTAMPTZ))`,
    );

    expect(await migrateMeta(db, m)).toEqual({ from: 0, to: META_VERSION, applied: ALL_STEPS });

    // Capture: the old watermark is read, replaced with its count carried on, and the lock row taken.
    expect(await readWatermarks(db, m, 'ehr.encounters', 'steady', ['p1', 'p2'])).toEqual(new Map([['p1', { updatedAt: '2026-03-01 10:00:00', key: ['7'] }]]));
    await db.transaction(async (s) => {
      await ensureLockRows(s, m, 'ehr.encounters', ['p1', 'p2']);
      await lockTenant(s, m, 'ehr.encounters', 'p1');
      await lockTenant(s, m, 'ehr.procedures', 'p2');
      await writeWatermark(s, m, 'ehr.encounters', 'p1', 'steady', { updatedAt: '2026-03-02 09:00:00', key: ['9'] }, 4);
    });
    const wm = await db.query(`SELECT rows_captured, updated_at FROM ${quoteRelation(m, 'capture_watermarks')} WHERE tenant = 'p1'`);
    expect(wm.rows).toEqual([{ rows_captured: 9, updated_at: '2026-03-02 09:00:00' }]);
    const locks = await db.query(`SELECT source_table, tenant, chunks FROM ${quoteRelation(m, 'capture_locks')} ORDER BY 1, 2`);
    expect(locks.rows).toEqual([
      { source_table: 'ehr.encounters', tenant: 'p1', chunks: 4 },
      { source_table: 'ehr.encounters', tenant: 'p2', chunks: 0 },
      { source_table: 'ehr.procedures', tenant: 'p2', chunks: 1 },
    ]);
    expect(await onboardingTenants(db, m, ['ehr.encounters'], ['p1', 'p2'])).toEqual(new Set(['p2']));

    // Run state: history old and new, practice state replaced, retired practices found.
    await recordRunHistory(db, m, runOf('r1', 'p1'));
    const history = await readRunHistory(db, m, CLOCK);
    expect(history.map((h) => [h.run_id, h.tenant, h.duration_ms]).sort()).toEqual([
      ['r0', 'p1', 900],
      ['r1', 'p1', 1200],
    ]);
    await writeTenantState(db, m, [{ tenant: 'p1', loadedThrough: '2026-03-01', lastSuccessAt: '2026-03-02T05:00:00.000Z', runId: 'r1' }]);
    expect(await readTenantState(db, m)).toEqual(
      new Map([
        ['gone', { loadedThrough: '2026-02-01', lastSuccessAt: '2026-02-02T05:00:00.000Z' }],
        ['p1', { loadedThrough: '2026-03-01', lastSuccessAt: '2026-03-02T05:00:00.000Z' }],
      ]),
    );
    expect(await findRetiredTenants(db, m, ['p1', 'p2'])).toEqual(['gone']);
  });

  it('completes a version-1 warehouse that made only some tables (capture ran, no run yet)', async () => {
    const db = engine.adapter();
    const m = 'meta_v1_partial';
    await db.ensureSchema(m);
    for (const ddl of versionOneDdl(m).slice(2, 4)) await db.query(ddl);
    expect((await migrateMeta(db, m)).applied).toEqual(ALL_STEPS);
    for (const t of TABLES) expect(await db.describe(m, t.name), t.name).toBeDefined();
  });

  it('a second migration is a no-op', async () => {
    const db = engine.adapter();
    const m = 'meta_twice';
    await migrateMeta(db, m);
    const before = await db.query(`SELECT version, CAST(applied_at AS VARCHAR) AS at FROM ${quoteRelation(m, SCHEMA_VERSION.name)} ORDER BY 1`);
    expect(await migrateMeta(db, m)).toEqual({ from: META_VERSION, to: META_VERSION, applied: [] });
    expect(await migrateMeta(engine.second(), m)).toEqual({ from: META_VERSION, to: META_VERSION, applied: [] });
    const after = await db.query(`SELECT version, CAST(applied_at AS VARCHAR) AS at FROM ${quoteRelation(m, SCHEMA_VERSION.name)} ORDER BY 1`);
    expect(after.rows).toEqual(before.rows);
  });

  it('two migrators at once both succeed, and each step is applied once', async () => {
    const db = engine.adapter();
    for (const [m, shape] of [
      ['meta_race_fresh', []],
      ['meta_race_v1', versionOneDdl('meta_race_v1')],
    ] as const) {
      if (shape.length > 0) {
        await db.ensureSchema(m);
        for (const ddl of shape) await db.query(ddl);
      }
      const results = await Promise.all([migrateMeta(db, m), migrateMeta(engine.second(), m), migrateMeta(db, m)]);
      for (const r of results) expect(r.to, m).toBe(META_VERSION);
      expect(new Set(results.flatMap((r) => r.applied)), m).toEqual(new Set(ALL_STEPS));
      expect(await versions(db, m), m).toEqual(ALL_STEPS);
    }
  });

  it('refuses a warehouse migrated by a newer tsform', async () => {
    const db = engine.adapter();
    const m = 'meta_newer';
    await migrateMeta(db, m);
    await db.query(`INSERT INTO ${quoteRelation(m, SCHEMA_VERSION.name)} VALUES (99, 'from the future', CAST('2026-03-02T00:00:00Z' AS TIMESTAMPTZ))`);
    const err = await rejection(migrateMeta(db, m));
    expect(err).toBeInstanceOf(TsformError);
    expect(err.code).toBe(Codes.metaSchema);
    expect(err.message).toContain('version 99');
  });

  it('refuses to adopt a table without a column tsform writes, naming it, and records nothing', async () => {
    const db = engine.adapter();
    const m = 'meta_odd';
    await db.ensureSchema(m);
    await db.query(`CREATE TABLE ${quoteRelation(m, 'capture_locks')} (source_table VARCHAR NOT NULL, tenant VARCHAR NOT NULL)`);
    const err = await rejection(migrateMeta(db, m));
    expect(err.code).toBe(Codes.metaSchema);
    expect(err.message).toContain(`${m}.capture_locks: missing column(s) chunks`);
    expect(await db.describe(m, SCHEMA_VERSION.name)).toBeUndefined();
  });

  it('quotes the meta schema name', async () => {
    const db = engine.adapter();
    const m = 'meta "odd"; --';
    expect((await migrateMeta(db, m)).applied).toEqual(ALL_STEPS);
    await recordRunHistory(db, m, runOf('r1', 'p1'));
    const { rows } = await db.query(`SELECT count(*) AS n FROM ${quoteIdent(m)}.${quoteIdent(NODE_RUNS.name)}`);
    expect(Number(rows[0]!.n)).toBe(1);
  });
});

it('derives each row type from its table definition', () => {
  const row: NodeRunRow = {
    run_id: 'r',
    command: 'run',
    node: 'n',
    model: 'm',
    tenant: null,
    kind: 'build',
    status: 'success',
    rows_affected: null,
    duration_ms: 1,
    code: null,
    finished_at: '2026-03-02T00:00:00Z',
  };
  // @ts-expect-error duration_ms is NOT NULL
  const bad: NodeRunRow = { ...row, duration_ms: null };
  expect(Object.keys(row)).toEqual(Object.keys(NODE_RUNS.columns));
  expect(bad).toBeDefined();
});
