import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter, Session } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { resolveSpec } from '../../src/ingest/capture-spec.ts';
import { chunkTransaction } from '../../src/ingest/chunk-transaction.ts';
import { insertLiveRows, keysHeldElsewhere, type ChunkRows } from '../../src/ingest/slice-upsert.ts';
import type { SourceColumn } from '../../src/ingest/source-columns.ts';
import { migrateMeta } from '../../src/warehouse/meta-schema.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';
import { twoEngines } from '../support/two-engines.ts';

const META = 'tsform_meta';
const spec = resolveSpec({ table: 'encounters', key: ['encounter_id'], tenantColumn: 'practice_id' });
const COLUMNS: SourceColumn[] = ['practice_id', 'encounter_id', 'updated_at'].map((name) => ({ name, sourceType: 'text', rawType: 'VARCHAR', nullable: true, hasDefault: false }));

/** One row as a chunk's rows: a relation of text columns built from bound values. */
function oneRow(tenant: string, id: string): ChunkRows {
  return { from: '(SELECT CAST($2 AS VARCHAR) AS practice_id, CAST($3 AS VARCHAR) AS encounter_id, CAST($4 AS VARCHAR) AS updated_at)', params: [tenant, id, '2026-12-01 00:00:00'], typed: false };
}

/**
 * Two chunk transactions of one table can bring the same key for two practices at once: a row
 * that moved from `from` to `to`, the old practice's chunk holding a copy read before the move.
 * Whichever commits second must see the other's copy (moved-rows.ts asks the OLTP which is
 * stale). Two concurrent snapshots would not see each other's rows, so chunkTransaction runs
 * the transactions of one raw table one after another. Here each waits, after its write, for
 * the other to have written too, up to a limit: run at once, both would write, neither would
 * see the other, and both copies would stay.
 */
describe.each(twoEngines('chunk-tx'))('chunk transactions of one table on $name', (engine) => {
  let oltpServer: ThrowawayPostgres;
  let oltpAdmin: PostgresAdapter;
  let oltp: PgOltpSource;

  beforeAll(async () => {
    oltpServer = await startThrowawayPostgres();
    oltpAdmin = await createPostgresAdapter({ url: oltpServer.url });
    await oltpAdmin.query('CREATE SCHEMA oltp');
    await oltpAdmin.query('CREATE TABLE oltp.encounters (practice_id text, encounter_id text, updated_at timestamptz, deleted_at timestamptz, PRIMARY KEY (practice_id, encounter_id))');
    oltp = await PgOltpSource.open(oltpServer.url);
    const wh = engine.adapter();
    await migrateMeta(wh, META);
    await wh.ensureSchema('raw');
    await wh.query('CREATE TABLE raw.encounters (practice_id VARCHAR, encounter_id VARCHAR, updated_at VARCHAR)');
  }, 120_000);
  afterAll(async () => {
    await oltp?.close();
    await oltpAdmin?.close();
    await oltpServer?.stop();
  });

  async function holders(wh: Adapter, id: string): Promise<string[]> {
    return (await wh.query('SELECT practice_id FROM raw.encounters WHERE encounter_id = $1 ORDER BY 1', [id])).rows.map((r) => String(r.practice_id));
  }

  it.each([
    ['the old practice’s stale copy is written first', ['p_old', 'p_new']],
    ['the new practice’s copy is written first', ['p_new', 'p_old']],
  ])('a moved row written at once by its old and its new practice ends at the new one only (%s)', async (_, order) => {
    const wh = engine.adapter();
    const id = `e-${order[0]}`;
    await oltpAdmin.query(`INSERT INTO oltp.encounters VALUES ('p_new', $1, now(), NULL)`, [id]);
    const written = new Map<string, () => void>();
    const wrote = new Map(order.map((t) => [t, new Promise<void>((resolve) => written.set(t, resolve))]));
    const chunk = (tenant: string) =>
      chunkTransaction(wh, oltp, spec, META, { columns: [] }, { tenants: [tenant], stream: 'steady' }, async (s: Session) => {
        await insertLiveRows(s, spec, tenant, COLUMNS, oneRow(tenant, id));
        const elsewhere = await keysHeldElsewhere(s, spec, tenant, COLUMNS, oneRow(tenant, id));
        written.get(tenant)!();
        const other = order.find((t) => t !== tenant)!;
        await Promise.race([wrote.get(other), new Promise((resolve) => setTimeout(resolve, 500))]);
        return { result: tenant, elsewhere, lostRows: [], watermarks: [] };
      });
    const first = chunk(order[0]!);
    await wrote.get(order[0]!);
    const outcomes = await Promise.all([first, chunk(order[1]!)]);
    expect(await holders(wh, id)).toEqual(['p_new']);
    // the copy removed at the old practice counts there (its incremental models drop it)
    expect(outcomes.flatMap((o) => o.movedOutOf)).toEqual(['p_old']);
  });

  it('the same id at two practices, both in the OLTP, stays at both', async () => {
    const wh = engine.adapter();
    await oltpAdmin.query(`INSERT INTO oltp.encounters VALUES ('p_a', 'e-shared', now(), NULL), ('p_b', 'e-shared', now(), NULL)`);
    const chunk = (tenant: string) =>
      chunkTransaction(wh, oltp, spec, META, { columns: [] }, { tenants: [tenant], stream: 'steady' }, async (s: Session) => {
        await insertLiveRows(s, spec, tenant, COLUMNS, oneRow(tenant, 'e-shared'));
        return { result: tenant, elsewhere: await keysHeldElsewhere(s, spec, tenant, COLUMNS, oneRow(tenant, 'e-shared')), lostRows: [], watermarks: [] };
      });
    const outcomes = await Promise.all([chunk('p_a'), chunk('p_b')]);
    expect(await holders(wh, 'e-shared')).toEqual(['p_a', 'p_b']);
    expect(outcomes.flatMap((o) => o.movedOutOf)).toEqual([]);
  });
});
