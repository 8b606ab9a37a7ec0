import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';

/**
 * The adapter's rows are the rows DuckDB's own getRowObjectsJson gives, after its documented
 * fixes (safe BIGINTs as numbers): the contract any faster read path (issue 16) has to keep.
 */
describe('DuckDB adapter rows', () => {
  let db: DuckDBAdapter;
  beforeAll(async () => {
    db = await DuckDBAdapter.open({ path: ':memory:', connections: 1 });
  });
  afterAll(() => db.close());

  const SQL = `SELECT i AS n, CAST(i AS VARCHAR) || 'é' AS s, CASE WHEN i % 3 = 0 THEN NULL ELSE i * 1.5 END AS d,
      CAST(i AS DECIMAL(18,2)) / 3 AS dec, DATE '2020-01-01' + CAST(i AS INTEGER) AS day, i % 2 = 0 AS b,
      [i, i + 1] AS l, {'a': i, 'b': 'x'} AS st, CAST(9007199254740993 AS BIGINT) + i AS big, 'dup1' AS k, 'dup2' AS k
    FROM range(2500) t(i)`;

  it('equals getRowObjectsJson value for value, over several chunks, with a repeated column name', async () => {
    const got = await db.query(SQL);
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    try {
      const expected = (await conn.runAndReadAll(SQL)).getRowObjectsJson();
      expect(got.rows.length).toBe(2500);
      // The adapter's one documented change: BIGINT within 2^53 as a number.
      const fixed = expected.map((r) => ({ ...r, n: Number(r.n) }));
      expect(got.rows).toEqual(fixed);
      expect([got.rows[1]!.k, got.rows[1]!['k:1']]).toEqual(['dup1', 'dup2']);
      expect(got.columns).toEqual(['n', 's', 'd', 'dec', 'day', 'b', 'l', 'st', 'big', 'k', 'k']);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });

  it('returns no rows but the columns of an empty result', async () => {
    const r = await db.query(`SELECT 1 AS a, 'x' AS b WHERE false`);
    expect(r.rows).toEqual([]);
    expect(r.columns).toEqual(['a', 'b']);
  });
});
