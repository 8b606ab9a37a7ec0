import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import { waitFor } from '../support/wait-for.ts';
import { demoSpecs, demoTenantIds, openDuckdb, sliceChecksums, startDemoOltp, tempDuckdbPath, type OltpFixture } from './support/capture-fixture.ts';

/**
 * The same capture into both warehouse engines (DuckDB: COPY CSV through a temp file; PostgreSQL:
 * COPY text passed through), including values that stress both formats, sitting in the last row
 * of a chunk, where the new watermark is read from.
 */
describe('capture into DuckDB and into PostgreSQL: raw equals the OLTP', () => {
  let oltp: OltpFixture;
  let file: { path: string; remove(): void };
  const targets: [string, Adapter][] = [];
  const tenants = demoTenantIds();
  const specs = demoSpecs().filter((s) => s.table === 'encounters' || s.table === 'conditions');

  beforeAll(async () => {
    oltp = await startDemoOltp();
    file = tempDuckdbPath();
    targets.push(['duckdb', await openDuckdb(file.path)]);
    // a database of its own on the same server (dropped with it; on TSFORM_TEST_PG_URL a fixed name would collide)
    const warehouse = await oltp.server.createDatabase();
    targets.push(['postgres', await createPostgresAdapter({ url: warehouse.url })]);
  });
  afterAll(async () => {
    for (const [, wh] of targets) await wh.close().catch(() => undefined);
    file?.remove();
    await oltp?.stop();
  });

  async function captureAndCompare(chunkRows: number): Promise<void> {
    for (const [name, wh] of targets) {
      for (const spec of specs) {
        const r = await captureTenantSlice(wh, oltp.source, spec, tenants, { chunkRows, concurrency: 2 });
        expect(r.failures, name).toEqual([]);
        const cols = (await wh.describe('raw', spec.table))!.columns.map((c) => c.name);
        const a = await sliceChecksums(oltp.admin, { schema: 'oltp', table: spec.table }, cols, 'deleted_at IS NULL');
        const b = await sliceChecksums(wh, { schema: 'raw', table: spec.table }, cols);
        expect(b, `${name} ${spec.table}`).toEqual(a);
      }
    }
  }

  it('captures, then captures updates with awkward text, soft deletes and inserts', async () => {
    await captureAndCompare(700);
    const [p1, p2] = [...tenants].sort();
    const awkward = 'quote " comma , newline \n tab \t backslash \\ \\N "" end';
    await oltp.admin.query(
      `UPDATE oltp.encounters SET description = $2 || encounter_id, updated_at = now()
        WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 9)`,
      [p1!, awkward],
    );
    await oltp.admin.query(`UPDATE oltp.encounters SET description = NULL, updated_at = now() + interval '1 second' WHERE practice_id = $1 AND encounter_id = (SELECT max(encounter_id) FROM oltp.encounters WHERE practice_id = $1)`, [p2!]);
    await oltp.admin.query(`UPDATE oltp.conditions SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND condition_id IN (SELECT condition_id FROM oltp.conditions WHERE practice_id = $1 ORDER BY condition_id LIMIT 3)`, [p2!]);
    // A future updated_at is captured once the clock has passed it (the commit horizon is at most now()).
    await waitFor('the OLTP clock to pass the future updated_at', async () => (await oltp.admin.query('SELECT clock_timestamp() > max(updated_at) AS passed FROM oltp.encounters')).rows[0]!.passed === true, { withinMs: 30_000 });
    await captureAndCompare(4);
    const { rows } = await targets[0]![1].query(`SELECT count(*) AS n FROM raw.encounters WHERE starts_with(description, $1)`, [awkward]);
    expect(Number(rows[0]!.n)).toBe(9);
  });
});
