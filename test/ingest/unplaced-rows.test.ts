import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import { openDuckdb, tempDuckdbPath } from './support/capture-fixture.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

// Red-team 2026-12-07, capture finding 5: rows whose updated_at is NULL (never captured) or far
// in the future (not captured until then) were missing from raw with no word. Each capture now
// gives a notice per table: counts per practice id, never a value; a row a few minutes ahead
// (writers' clocks differ) is not counted.
describe('watermark capture: rows it cannot place by updated_at are named in a notice', () => {
  let server: ThrowawayPostgres;
  let admin: PostgresAdapter;
  let source: PgOltpSource;
  let wh: Adapter;
  let remove: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    server = await startThrowawayPostgres();
    admin = await createPostgresAdapter({ url: server.url });
    await admin.query(`CREATE SCHEMA oltp`);
    await admin.query(`CREATE TABLE oltp.t (practice_id text NOT NULL, id text NOT NULL, updated_at timestamptz, deleted_at timestamptz, v text, PRIMARY KEY (practice_id, id))`);
    await admin.query(`CREATE INDEX ON oltp.t (updated_at)`);
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

  const capture = () => captureTenantSlice(wh, source, { table: 't', key: ['id'], tenantColumn: 'practice_id' }, ['a', 'b'], { chunkRows: 10 });

  it('counts NULL and far-future updated_at per practice, and is silent when there are none', async () => {
    await admin.query(`INSERT INTO oltp.t VALUES
      ('a', 'a1', now() - interval '1 hour', NULL, 'zz-made-up-1'),
      ('a', 'a2', NULL, NULL, 'zz-made-up-2'),
      ('a', 'a3', now() + interval '30 days', NULL, 'zz-made-up-3'),
      ('b', 'b1', now() - interval '1 hour', NULL, 'zz-made-up-4'),
      ('b', 'b2', now() + interval '1 minute', NULL, 'zz-made-up-5'),
      ('b', 'b3', NULL, NULL, 'zz-made-up-6'),
      ('b', 'b4', NULL, now(), 'zz-made-up-7')`);
    const first = await capture();
    expect(first.failures).toEqual([]);
    const notes = first.notes.filter((n) => n.includes('updated_at'));
    expect(notes, JSON.stringify(first.notes)).toHaveLength(1);
    const note = notes[0]!;
    expect(note).toContain('oltp.t');
    expect(note).toContain('3 row(s) with updated_at NULL are never captured');
    expect(note).toContain('1 row(s) with updated_at more than 10 minutes ahead');
    expect(note).toContain('"b" (2 NULL)');
    expect(note).toContain('"a" (1 NULL, 1 ahead)');
    expect(note).not.toMatch(/zz-|a2|b3|\d{4}-\d\d-\d\d/);
    // the rows themselves are still not in raw: the notice is what tells
    expect(Number((await wh.query(`SELECT count(*) AS n FROM raw.t`)).rows[0]!.n)).toBe(2);

    await admin.query(`UPDATE oltp.t SET updated_at = now() - interval '1 minute' WHERE updated_at IS NULL OR updated_at > now()`);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await capture();
    expect(second.notes.filter((n) => n.includes('updated_at'))).toEqual([]);
    expect(Number((await wh.query(`SELECT count(*) AS n FROM raw.t`)).rows[0]!.n)).toBe(6);
  }, 120_000);
});
