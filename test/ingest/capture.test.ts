import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import type { DuckDBAdapter } from '../../src/adapters/duckdb/duckdb-adapter.ts';
import { Codes, TsformError } from '../../src/errors.ts';
import { captureTenantSlice, type CaptureResult } from '../../src/ingest/capture.ts';
import type { OltpSource } from '../../src/ingest/oltp-source.ts';
import { withFaults } from './support/capture-project.ts';
import { compareAll, demoSpecs, demoTenantIds, openDuckdb, startDemoOltp, tempDuckdbPath, type OltpFixture } from './support/capture-fixture.ts';

describe('per-practice capture from a PostgreSQL OLTP into DuckDB', () => {
  let oltp: OltpFixture;
  let wh: DuckDBAdapter;
  let file: { path: string; remove(): void };
  const tenants = demoTenantIds();

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

  async function captureAll(chunkRows = 500): Promise<CaptureResult[]> {
    const out: CaptureResult[] = [];
    // readAheadBytes 0: every chunk's successor is read while it loads (the DuckDB pipeline)
    for (const spec of demoSpecs()) out.push(await captureTenantSlice(wh, oltp.source, spec, tenants, { chunkRows, concurrency: 2, readAheadBytes: 0 }));
    return out;
  }

  it('captures every practice, then inserts, updates, soft and hard deletes: raw equals the OLTP practice by practice', async () => {
    const first = await captureAll();
    expect(first.flatMap((r) => r.failures)).toEqual([]);
    expect(await compareAll(oltp.admin, wh, new Set(tenants))).toEqual([]);
    const total = first.reduce((a, r) => a + [...r.rowsByTenant.values()].reduce((x, y) => x + y, 0), 0);
    expect(total).toBeGreaterThan(30_000);

    const [p1, p2, p3] = [...tenants].sort();
    // updates (updated_at bumped, as the application does), a soft delete, a hard delete (trigger → soft), an insert
    await oltp.admin.query(`UPDATE oltp.encounters SET description = description || ' (amended)', updated_at = now() WHERE practice_id = $1 AND encounter_id IN (SELECT encounter_id FROM oltp.encounters WHERE practice_id = $1 ORDER BY encounter_id LIMIT 5)`, [p1!]);
    await oltp.admin.query(`UPDATE oltp.conditions SET deleted_at = now(), updated_at = now() WHERE practice_id = $1 AND condition_id IN (SELECT condition_id FROM oltp.conditions WHERE practice_id = $1 ORDER BY condition_id LIMIT 3)`, [p2!]);
    await oltp.admin.query(`DELETE FROM oltp.claims WHERE practice_id = $1 AND claim_id IN (SELECT claim_id FROM oltp.claims WHERE practice_id = $1 ORDER BY claim_id LIMIT 4)`, [p3!]);
    await oltp.admin.query(
      `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
       SELECT $1, 'new-' || g, 'pat-' || g, 'wellness', 'inserted ' || g, now(), 12.34, now() FROM generate_series(1, 7) g`,
      [p2!],
    );
    const second = await captureAll();
    expect(second.flatMap((r) => r.failures)).toEqual([]);
    const byTable = new Map(demoSpecs().map((s, i) => [s.table, second[i]!]));
    expect(byTable.get('encounters')!.rowsByTenant.get(p1!)).toBe(5);
    expect(byTable.get('encounters')!.rowsByTenant.get(p2!)).toBe(7);
    expect(byTable.get('conditions')!.deleted.get(p2!)).toBe(3);
    expect(byTable.get('claims')!.deleted.get(p3!)).toBe(4);
    // untouched practices read nothing new
    expect([...byTable.get('patients')!.rowsByTenant.values()].every((n) => n === 0)).toBe(true);
    expect(await compareAll(oltp.admin, wh, new Set(tenants))).toEqual([]);
  });
});

describe('capture: bad input and schema drift', () => {
  let oltp: OltpFixture;
  let wh: DuckDBAdapter;
  let file: { path: string; remove(): void };
  const tenants = demoTenantIds().sort().slice(0, 12);
  const spec = (table: string) => demoSpecs().find((s) => s.table === table)!;

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

  it('a statement timeout in one practice\'s extract fails that practice only, by name', async () => {
    const slow = tenants[3]!;
    const source = withFaults(oltp.source, { [slow]: 'timeout' });
    const r = await captureTenantSlice(wh, source, spec('encounters'), tenants, { timeoutMs: 300, chunkRows: 1000 });
    expect(r.failures.map((f) => f.message)).toEqual([expect.stringContaining(slow)]);
    expect(r.failures[0]).toMatchObject({ tenant: slow, code: '57014' });
    expect(r.failures[0]!.message).toContain(slow);
    const loaded = await wh.query('SELECT DISTINCT practice_id FROM raw.encounters');
    expect(new Set(loaded.rows.map((x) => x.practice_id))).toEqual(new Set(tenants.filter((t) => t !== slow && (r.rowsByTenant.get(t) ?? 0) > 0)));
    // the next run, without the fault, catches the practice up
    const again = await captureTenantSlice(wh, oltp.source, spec('encounters'), tenants, { chunkRows: 1000 });
    expect(again.failures).toEqual([]);
    expect(again.rowsByTenant.get(slow)).toBeGreaterThan(0);
    expect([...again.rowsByTenant].filter(([t, n]) => t !== slow && n > 0)).toEqual([]);
  });

  it('a row committed late by a long OLTP transaction is not skipped: the watermark stays behind the oldest open transaction', async () => {
    // a practice the other cases here do not use
    const p = demoTenantIds().sort()[20]!;
    const encounters = spec('encounters');
    await captureTenantSlice(wh, oltp.source, encounters, [p], { chunkRows: 500 });
    const cols = await oltp.admin.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'oltp.encounters'::regclass AND attname = 'updated_at'`);
    expect(cols.rows[0]!.t).toBe('timestamp with time zone');
    const insert = (c: pg.Client | PostgresAdapter, id: string) =>
      c.query(
        `INSERT INTO oltp.encounters (practice_id, encounter_id, patient_id, encounter_class, description, started_at, base_encounter_cost, updated_at)
         VALUES ($1, $2, 'pat-late', 'wellness', 'late', now(), 1, now())`,
        [p, id],
      );
    const slow = new pg.Client({ connectionString: oltp.server.url });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      await insert(slow, 'late-early'); // updated_at = this transaction's start
      await new Promise((r) => setTimeout(r, 20));
      await insert(oltp.admin, 'late-after'); // committed, with a later updated_at
      const during = await captureTenantSlice(wh, oltp.source, encounters, [p], { chunkRows: 500 });
      expect(during.failures).toEqual([]);
      // without the horizon, 'late-after' would move the watermark past 'late-early' for good
      expect(during.rowsByTenant.get(p)).toBe(0);
      await slow.query('COMMIT');
    } finally {
      await slow.end();
    }
    const after = await captureTenantSlice(wh, oltp.source, encounters, [p], { chunkRows: 500 });
    expect(after.rowsByTenant.get(p)).toBe(2);
    const live = await oltp.admin.query('SELECT count(*) AS n FROM oltp.encounters WHERE practice_id = $1 AND deleted_at IS NULL', [p]);
    const raw = await wh.query('SELECT count(*) AS n, count(*) FILTER (WHERE encounter_id LIKE $2) AS late FROM raw.encounters WHERE practice_id = $1', [p, 'late-%']);
    expect([Number(raw.rows[0]!.n), Number(raw.rows[0]!.late)]).toEqual([Number(live.rows[0]!.n), 2]);
  });

  it('a read ahead that fails while the chunk in front of it commits fails that practice only; what was committed stays', async () => {
    const p = tenants[5]!;
    let reads = 0;
    const failing: OltpSource = {
      query: (sql, params) => oltp.source.query(sql, params),
      close: () => oltp.source.close(),
      // read 1 is prepareCapture's, 2 the first chunk's; 3, the first read ahead, is refused at once
      readTransaction: (fn, options) => (++reads === 3 ? Promise.reject(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })) : oltp.source.readTransaction(fn, options)),
    };
    const r = await captureTenantSlice(wh, failing, spec('procedures'), [p], { chunkRows: 5, readAheadBytes: 0 });
    expect(r.failures.map((f) => [f.tenant, f.code])).toEqual([[p, '57P01']]);
    expect(r.rowsByTenant.get(p)).toBe(5);
    const again = await captureTenantSlice(wh, oltp.source, spec('procedures'), [p], { chunkRows: 500 });
    expect(again.failures).toEqual([]);
    const live = await oltp.admin.query('SELECT count(*) AS n FROM oltp.procedures WHERE practice_id = $1 AND deleted_at IS NULL', [p]);
    const raw = await wh.query('SELECT count(*) AS n FROM raw.procedures WHERE practice_id = $1', [p]);
    expect(Number(raw.rows[0]!.n)).toBe(Number(live.rows[0]!.n));
  });

  it('rows of an unknown practice id are counted and reported, never loaded', async () => {
    await oltp.admin.query(
      `INSERT INTO oltp.procedures (practice_id, procedure_id, description, updated_at) SELECT 'p_not_a_tenant', 'x-' || g, 'stray', now() FROM generate_series(1, 9) g`,
    );
    const r = await captureTenantSlice(wh, oltp.source, spec('procedures'), tenants, { knownTenants: demoTenantIds() });
    expect(r.failures).toEqual([]);
    expect(r.unknownTenantRows).toBe(9);
    expect(r.notes.join('\n')).toMatch(/9 row\(s\) carry a practice_id that is not a known practice.*"p_not_a_tenant" \(9\)/);
    const stray = await wh.query(`SELECT count(*) AS n FROM raw.procedures WHERE practice_id = 'p_not_a_tenant'`);
    expect(Number(stray.rows[0]!.n)).toBe(0);
  });

  it('a new nullable source column is added to raw; a type change is a coded error naming table and column', async () => {
    const first = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants);
    expect(first.failures).toEqual([]);
    await oltp.admin.query('ALTER TABLE oltp.providers ADD COLUMN npi text');
    await oltp.admin.query(`UPDATE oltp.providers SET npi = 'NPI-' || provider_id, updated_at = now() WHERE practice_id = $1`, [tenants[0]!]);
    // small chunks, each read ahead of the one in front of it: the drift is planned at commit
    const second = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants, { chunkRows: 3, readAheadBytes: 0, concurrency: 2 });
    expect(second.failures).toEqual([]);
    expect(second.notes.join('\n')).toContain('new source column "npi"');
    const cols = (await wh.describe('raw', 'providers'))!.columns.map((c) => c.name);
    expect(cols).toContain('npi');
    expect(cols).toContain('name'); // nothing lost
    const npi = await wh.query(`SELECT count(*) AS n FROM raw.providers WHERE npi IS NOT NULL`);
    const expected = await oltp.admin.query(`SELECT count(*) AS n FROM oltp.providers WHERE practice_id = $1`, [tenants[0]!]);
    expect(Number(npi.rows[0]!.n)).toBe(Number(expected.rows[0]!.n));
    const rawCount = await wh.query('SELECT count(*) AS n FROM raw.providers');
    const oltpCount = await oltp.admin.query('SELECT count(*) AS n FROM oltp.providers WHERE practice_id = ANY($1::text[])', [tenants]);
    expect(Number(rawCount.rows[0]!.n)).toBe(Number(oltpCount.rows[0]!.n));

    await oltp.admin.query('ALTER TABLE oltp.providers ALTER COLUMN lat TYPE text');
    const err = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsformError);
    expect((err as TsformError).code).toBe(Codes.schemaChanged);
    expect((err as Error).message).toMatch(/oltp\.providers: column "lat" changed type/);

    await oltp.admin.query('ALTER TABLE oltp.providers ALTER COLUMN lat TYPE double precision USING lat::double precision');
    await oltp.admin.query('ALTER TABLE oltp.providers DROP COLUMN zip');
    const dropped = await captureTenantSlice(wh, oltp.source, spec('providers'), tenants).catch((e: unknown) => e);
    expect((dropped as TsformError).code).toBe(Codes.schemaChanged);
    expect((dropped as Error).message).toMatch(/oltp\.providers: column "zip" exists in raw but no longer in the source/);
  });
});

