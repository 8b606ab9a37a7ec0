import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import { TsformError } from '../../src/errors.ts';
import { openDuckdb, tempDuckdbPath } from './support/capture-fixture.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

// Red-team 2026-12-07, capture finding 6: a key: that is not unique in the OLTP, or allows NULL,
// left 1 of 4 rows in raw with no error. Now the table is refused at set-up with TSF424 naming
// the table and the key, never a value; a key a primary key or unique index covers loads.
describe('watermark capture key must identify a row in the OLTP', () => {
  let server: ThrowawayPostgres;
  let admin: PostgresAdapter;
  let source: PgOltpSource;
  let wh: Adapter;
  let remove: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
    admin = await createPostgresAdapter({ url: server.url });
    await admin.query(`CREATE SCHEMA oltp`);
    await admin.query(`CREATE TABLE oltp.t (practice_id text NOT NULL, id text NOT NULL PRIMARY KEY, ext text, code text NOT NULL, shared text NOT NULL,
      updated_at timestamptz NOT NULL, deleted_at timestamptz, UNIQUE (practice_id, shared))`);
    await admin.query(`CREATE UNIQUE INDEX t_code_partial ON oltp.t (code) WHERE deleted_at IS NULL`);
    await admin.query(`INSERT INTO oltp.t VALUES
      ('b', 'b1', NULL, 'zz-made-up', 's1', now() - interval '1 hour', NULL),
      ('b', 'b2', NULL, 'zz-made-up', 's2', now() - interval '1 hour', now() - interval '1 hour'),
      ('b', 'b3', 'zz-dup', 'c3', 's3', now() - interval '1 hour', NULL),
      ('b', 'b4', 'zz-dup', 'c4', 's4', now() - interval '1 hour', NULL),
      ('c', 'c1', 'zz-one', 'c5', 's1', now() - interval '1 hour', NULL)`);
    source = await PgOltpSource.open(server.url);
    const file = tempDuckdbPath();
    const duck = await openDuckdb(file.path);
    wh = duck;
    remove = async () => {
      await duck.close();
      file.remove();
    };
  }, 120_000);
  afterAll(async () => {
    await remove();
    await source?.close();
    await admin?.close();
    await server?.stop();
  });

  const capture = (key: string[]) => captureTenantSlice(wh, source, { table: 't', key, tenantColumn: 'practice_id' }, ['b', 'c'], { chunkRows: 2 });
  const refused = async (key: string[]): Promise<TsformError> => {
    const err = await capture(key).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TsformError);
    const e = err as TsformError;
    expect(e.code, e.message).toBe('TSF424');
    expect(e.message).toContain('oltp.t');
    expect(e.message).toContain(`(${key.join(', ')})`);
    expect(e.message).not.toMatch(/zz-|s1|b1/);
    return e;
  };

  it('a nullable key column is refused, naming it', async () => {
    expect((await refused(['ext'])).message).toContain('"ext"');
    expect(await wh.query(`SELECT count(*) AS n FROM raw.t`).catch(() => undefined)).toBeUndefined();
  });

  it('a NOT NULL key no unique index covers is refused (a partial unique index does not count)', async () => {
    await refused(['code']);
  });

  it('the primary key, and a unique index on (practice column, key), are accepted and load every live row', async () => {
    for (const key of [['id'], ['shared'], ['id', 'code']]) {
      await wh.query(`DROP TABLE IF EXISTS raw.t`);
      await wh.query(`DELETE FROM tsform_meta.capture_watermarks`);
      const res = await capture(key);
      expect(res.failures).toEqual([]);
      expect(Number((await wh.query(`SELECT count(*) AS n FROM raw.t`)).rows[0]!.n), key.join()).toBe(4);
    }
  });
});
