import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { resolveSpec } from '../../src/ingest/capture-spec.ts';
import { hasIndexLedBy } from '../../src/ingest/oltp-index.ts';
import { countUnknownTenantRows } from '../../src/ingest/unknown-practices.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

/**
 * The unknown-practice count reads the table's distinct practices through an index led by the
 * practice column when there is one (a probe each), else scans the table: both give the same
 * counts, NULL practices and ids of any type included.
 */
describe('rows of practices not in tenants.yml, counted', () => {
  let server: ThrowawayPostgres;
  let oltp: PgOltpSource;

  beforeAll(async () => {
    server = await startThrowawayPostgres();
    oltp = await PgOltpSource.open(server.url);
    await oltp.query('CREATE SCHEMA src');
  }, 120_000);
  afterAll(async () => {
    await oltp?.close();
    await server?.stop();
  });

  async function bothWays(table: string, known: string[]): Promise<{ total: number; shown: string }> {
    const spec = resolveSpec({ table, key: ['id'], tenantColumn: 'practice_id', sourceSchema: 'src' });
    await oltp.query(`CREATE INDEX ${table}_capture_idx ON src.${table} (practice_id, id)`);
    await oltp.query(`ANALYZE src.${table}`);
    expect(await hasIndexLedBy(oltp, 'src', table, 'practice_id')).toBe(true);
    const indexed = await countUnknownTenantRows(oltp, spec, known);
    await oltp.query(`DROP INDEX src.${table}_capture_idx`);
    // an index that starts with another column, covers some rows only, or has no order cannot serve the probes
    await oltp.query(`CREATE INDEX ${table}_id_idx ON src.${table} (id, practice_id)`);
    await oltp.query(`CREATE INDEX ${table}_partial_idx ON src.${table} (practice_id) WHERE id > 0`);
    await oltp.query(`CREATE INDEX ${table}_hash_idx ON src.${table} USING hash (practice_id)`);
    expect(await hasIndexLedBy(oltp, 'src', table, 'practice_id')).toBe(false);
    const scanned = await countUnknownTenantRows(oltp, spec, known);
    expect(indexed).toEqual(scanned);
    return indexed;
  }

  it('integer practice ids, NULL practices, known and unknown ones', async () => {
    await oltp.query('CREATE TABLE src.ints (practice_id integer, id integer)');
    // practice k holds k rows; 3 rows have no practice
    await oltp.query(`INSERT INTO src.ints SELECT k, g FROM generate_series(1, 60) k, generate_series(1, k) g`);
    await oltp.query(`INSERT INTO src.ints SELECT NULL, g FROM generate_series(1, 3) g`);
    const known = Array.from({ length: 55 }, (_, i) => String(i + 1));
    expect(await bothWays('ints', known)).toEqual({ total: 56 + 57 + 58 + 59 + 60 + 3, shown: '"60" (60), "59" (59), "58" (58), "57" (57), "56" (56)' });
  });

  it('text ids with quotes, spaces and non-ASCII; none unknown; an empty table', async () => {
    await oltp.query('CREATE TABLE src.texts (practice_id text, id integer)');
    await oltp.query(`INSERT INTO src.texts VALUES ('p_a', 1), ('p_a', 2), ('o''brien', 3), ('zürich ', 4), ('', 5)`);
    expect(await bothWays('texts', ['p_a'])).toEqual({ total: 3, shown: `"" (1), "o'brien" (1), "zürich " (1)` });
    await oltp.query('CREATE TABLE src.known_only (practice_id text, id integer)');
    await oltp.query(`INSERT INTO src.known_only VALUES ('p_a', 1), ('p_b', 2)`);
    expect(await bothWays('known_only', ['p_a', 'p_b'])).toEqual({ total: 0, shown: '' });
    await oltp.query('CREATE TABLE src.empty (practice_id text, id integer)');
    expect(await bothWays('empty', [])).toEqual({ total: 0, shown: '' });
  });
});
