import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { backfillStream, backfillTenant } from '../../src/ingest/backfill.ts';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import type { OltpSource } from '../../src/ingest/oltp-source.ts';
import { demoSpecs, openDuckdb, sliceChecksums, startDemoOltp, tempDuckdbPath, type OltpFixture } from './support/capture-fixture.ts';

describe('backfill of one practice', () => {
  let oltp: OltpFixture;
  let wh: DuckDBAdapter;
  let file: { path: string; remove(): void };
  const spec = demoSpecs().find((s) => s.table === 'procedures')!;

  beforeAll(async () => {
    oltp = await startDemoOltp();
    file = tempDuckdbPath();
    wh = await openDuckdb(file.path);
  });
  afterAll(async () => {
    await wh?.close();
    file?.remove();
    await oltp?.stop();
  });

  async function same(tenant: string): Promise<void> {
    const cols = (await wh.describe('raw', 'procedures'))!.columns.map((c) => c.name);
    const a = await sliceChecksums(oltp.admin, { schema: 'oltp', table: 'procedures' }, cols, `deleted_at IS NULL AND practice_id = '${tenant}'`);
    const b = await sliceChecksums(wh, { schema: 'raw', table: 'procedures' }, cols, `practice_id = '${tenant}'`);
    expect(b).toEqual(a);
  }

  it('re-captures a range in chunks with progress, resumes after an interruption, and runs beside steady capture', async () => {
    const big = await oltp.admin.query(`SELECT practice_id, count(*) AS n FROM oltp.procedures GROUP BY 1 ORDER BY 2 DESC LIMIT 1`);
    const tenant = String(big.rows[0]!.practice_id);
    await captureTenantSlice(wh, oltp.source, spec, [tenant]);
    // raw drifts from the OLTP behind capture's back (e.g. a bad manual fix): backfill repairs it
    await wh.query(`UPDATE raw.procedures SET description = 'damaged' WHERE practice_id = $1`, [tenant]);
    await wh.query(`DELETE FROM raw.procedures WHERE practice_id = $1 AND updated_at >= TIMESTAMPTZ '2015-01-01' AND updated_at < TIMESTAMPTZ '2015-06-01'`, [tenant]);

    const stop = new AbortController();
    const progress: number[] = [];
    const first = await backfillTenant(wh, oltp.source, spec, tenant, {
      from: '2010-01-01', to: '2020-01-01', chunkRows: 100, signal: stop.signal,
      onProgress: (p) => {
        progress.push(p.rowsThisRun);
        if (p.chunk === 2) stop.abort();
      },
    });
    expect(first).toMatchObject({ complete: false, chunks: 2 });
    const wm = await wh.query(`SELECT count(*) AS n FROM tsform_meta.capture_watermarks WHERE stream = $1 AND tenant = $2`, [backfillStream('2010-01-01', '2020-01-01'), tenant]);
    expect(Number(wm.rows[0]!.n)).toBe(1);

    // steady capture of new changes runs at the same time as the resumed backfill
    await oltp.admin.query(`UPDATE oltp.procedures SET reason_description = 'changed', updated_at = now() WHERE practice_id = $1 AND procedure_id IN (SELECT procedure_id FROM oltp.procedures WHERE practice_id = $1 AND updated_at < '2012-01-01' LIMIT 20)`, [tenant]);
    const [resumed, steady] = await Promise.all([
      backfillTenant(wh, oltp.source, spec, tenant, { from: '2010-01-01', to: '2020-01-01', chunkRows: 100, onProgress: (p) => progress.push(p.rowsThisRun) }),
      captureTenantSlice(wh, oltp.source, spec, [tenant], { chunkRows: 10 }),
    ]);
    expect(resumed.failure).toBeUndefined();
    expect(resumed.complete).toBe(true);
    expect(steady.failures).toEqual([]);
    expect(progress.length).toBeGreaterThan(3);
    const left = await wh.query(`SELECT count(*) AS n FROM tsform_meta.capture_watermarks WHERE stream LIKE 'backfill:%'`);
    expect(Number(left.rows[0]!.n)).toBe(0);
    // outside the range the damage stays until a full backfill repairs it
    await backfillTenant(wh, oltp.source, spec, tenant, { chunkRows: 500 });
    await same(tenant);
  });

  it('a chunk whose OLTP connection is lost is read again: the OLTP classifies its own failures (transient), not the DuckDB warehouse', async () => {
    const tenant = String((await oltp.admin.query(`SELECT practice_id FROM oltp.procedures GROUP BY 1 ORDER BY count(*) DESC, 1 OFFSET 1 LIMIT 1`)).rows[0]!.practice_id);
    // the first COPY kills its own session: a real connection loss (57P01) inside the chunk's transaction
    let copies = 0;
    const cutOnce: OltpSource = {
      query: (sql, params) => oltp.source.query(sql, params),
      close: () => oltp.source.close(),
      classifyError: (err) => oltp.source.classifyError(err),
      readTransaction: (fn, options) =>
        oltp.source.readTransaction((s) => fn({ query: (sql, params) => s.query(sql, params), copyOut: (sql, format) => s.copyOut(++copies === 1 ? 'SELECT pg_terminate_backend(pg_backend_pid())' : sql, format) }), options),
    };
    const r = await backfillTenant(wh, cutOnce, spec, tenant, { from: '2000-01-01', to: '2100-01-01', chunkRows: 1_000 });
    expect(r.failure).toBeUndefined();
    expect(r.complete).toBe(true);
    expect(copies).toBeGreaterThan(1);
    await same(tenant);
  });
});
