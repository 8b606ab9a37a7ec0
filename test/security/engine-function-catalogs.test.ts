import pg from 'pg';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkModelSql } from '../../src/compile/model-sql.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * The functions a model may not call, checked against the engines' own catalogs rather than a
 * list from memory (issue 12, fail closed): `query_to_xml('select ssn from raw.patients', …)`
 * compiled clean while the deny list was written by hand. A function of a new engine version
 * that takes a relation, runs SQL text or has side effects fails this test until it is refused.
 */

const refused = (fn: string): boolean => checkModelSql({ sql: `select ${fn}() as x`, allowed: new Set() }).length > 0;

/** Side effects DuckDB flags that neither read nor write anything outside the model: randomness and raising an error (whose text safe-message.ts withholds). */
const DUCKDB_HARMLESS = new Set(['random', 'gen_random_uuid', 'uuid', 'uuidv4', 'uuidv7', 'error', 'stats']);

describe('DuckDB: every function with side effects is refused', () => {
  it('duckdb_functions() where has_side_effects', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      const r = await c.runAndReadAll(`SELECT DISTINCT function_name FROM duckdb_functions() WHERE has_side_effects AND function_type <> 'table' ORDER BY 1`);
      const names = r.getRowObjects().map((o) => String(o.function_name));
      expect(names.length).toBeGreaterThan(5);
      expect(names.filter((n) => !DUCKDB_HARMLESS.has(n) && !refused(n))).toEqual([]);
    } finally {
      c.closeSync();
    }
  });
});

describe('PostgreSQL: functions that take a relation or run SQL text are refused', () => {
  let server: ThrowawayPostgres;
  let client: pg.Client;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
    client = new pg.Client({ connectionString: server.url });
    await client.connect();
  }, 120_000);
  afterAll(async () => {
    await client?.end();
    await server?.stop();
  });

  it('every pg_catalog function with a regclass argument (type I/O aside)', async () => {
    const { rows } = await client.query<{ proname: string }>(
      `SELECT DISTINCT p.proname FROM pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind IN ('f', 'a', 'w')
          AND 'regclass'::regtype = ANY (p.proargtypes::oid[])
          AND NOT EXISTS (SELECT 1 FROM pg_type t WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend))
        ORDER BY 1`,
    );
    const names = rows.map((r) => r.proname);
    expect(names).toContain('table_to_xml');
    expect(names.filter((n) => !refused(n))).toEqual([]);
  });

  it('every function whose C code runs a query given as text, and the XML export of schemas and cursors', async () => {
    const { rows } = await client.query<{ proname: string }>(
      `SELECT DISTINCT proname FROM pg_proc
        WHERE pronamespace = 'pg_catalog'::regnamespace
          AND (prosrc IN ('ts_stat1', 'ts_stat2', 'tsquery_rewrite_query', 'currtid_byrelname')
               OR proname ~ '^(query|cursor|schema|database|table)_to_xml')
        ORDER BY 1`,
    );
    const names = rows.map((r) => r.proname);
    expect(names).toEqual(expect.arrayContaining(['query_to_xml', 'cursor_to_xml', 'database_to_xml', 'ts_stat', 'ts_rewrite']));
    expect(names.filter((n) => !refused(n))).toEqual([]);
  });

  it('a volatile pg_catalog function is refused unless it only draws random values or reads the clock', async () => {
    const { rows } = await client.query<{ proname: string }>(
      `SELECT DISTINCT proname FROM pg_proc
        WHERE pronamespace = 'pg_catalog'::regnamespace AND prokind IN ('f', 'a', 'w') AND provolatile = 'v'
          AND prorettype NOT IN ('internal'::regtype, 'trigger'::regtype, 'event_trigger'::regtype, 'language_handler'::regtype, 'index_am_handler'::regtype, 'table_am_handler'::regtype, 'tsm_handler'::regtype, 'fdw_handler'::regtype, 'cstring'::regtype)
        ORDER BY 1`,
    );
    const clockOrRandom = new Set(['random', 'random_normal', 'gen_random_uuid', 'clock_timestamp', 'timeofday', 'now', 'statement_timestamp']);
    const names = rows.map((r) => r.proname);
    expect(names).toContain('setval');
    expect(names.filter((n) => !clockOrRandom.has(n) && !refused(n))).toEqual([]);
  });
});
