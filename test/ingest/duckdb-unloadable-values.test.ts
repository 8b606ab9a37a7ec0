import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { createPostgresAdapter, type PostgresAdapter } from '../../src/adapters/postgres/postgres-adapter.ts';
import { PgOltpSource } from '../../src/adapters/postgres/pg-oltp-source.ts';
import { captureTenantSlice } from '../../src/ingest/capture.ts';
import { resolveSpec } from '../../src/ingest/capture-spec.ts';
import { LogicalCapture } from '../../src/ingest/logical/logical-capture.ts';
import { logicalObjectName } from '../../src/ingest/logical/slot-setup.ts';
import { openDuckdb, tempDuckdbPath } from './support/capture-fixture.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/postgres.ts';

// Red-team 2026-12-07, findings 2 and 3: values DuckDB cannot hold exactly (a BC date became AD,
// a BC or far-future timestamptz became NULL, NaN in numeric(p,s) failed naming no column) now
// fail that practice's table with TSF422 naming table and column, never the value; values DuckDB
// does hold (infinity, an LMT offset, +14) still load exactly, and the other practices go on.
const BAD: [string, string, string][] = [
  ['d', `'1961-07-04 BC'`, '1961'],
  ['tstz', `'0044-03-15 10:11:12+00 BC'`, '0044'],
  ['tstz', `'294276-12-31 23:59:59.999999+00'`, '294276'],
  ['ts', `'0044-03-15 00:00:00 BC'`, '0044'],
  ['ts', `'294276-12-31 23:59:59'`, '294276'],
  ['n', `'NaN'`, '"NaN"'],
];
const GOOD: [string, string][] = [
  ['d', `'infinity'`], ['d', `'0001-01-01'`], ['ts', `'-infinity'`],
  ['tstz', `'1883-11-18 12:00:00-04:56:02'`], ['tstz', `'1970-01-01 00:00:00.000001+14'`], ['n', `12.50`],
];
const DDL = `CREATE SCHEMA oltp;
CREATE TABLE oltp.edge (practice_id text NOT NULL, id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz,
  ts timestamp, tstz timestamptz, d date, n numeric(12,2), PRIMARY KEY (practice_id, id));
ALTER TABLE oltp.edge REPLICA IDENTITY FULL;
CREATE INDEX ON oltp.edge (updated_at)`;

describe('captured values DuckDB cannot hold exactly', () => {
  let server: ThrowawayPostgres;
  let admin: PostgresAdapter;
  let source: PgOltpSource;
  let wh: Adapter;
  let remove: () => Promise<void> = async () => undefined;
  const bad = BAD.map((_, i) => `pb${i}`);
  const good = GOOD.map((_, i) => `pg${i}`);
  const tenants = [...bad, ...good];
  beforeAll(async () => {
    server = await startThrowawayPostgres({ logical: {} });
    admin = await createPostgresAdapter({ url: server.url });
    for (const s of DDL.split(';').filter((x) => x.trim())) await admin.query(s);
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

  const insertAll = async () => {
    for (const [i, [c, v]] of BAD.entries()) await admin.query(`INSERT INTO oltp.edge (practice_id, id, ${c}) VALUES ('${bad[i]}', 'k', ${v}), ('${bad[i]}', 'plain', NULL)`);
    for (const [i, [c, v]] of GOOD.entries()) await admin.query(`INSERT INTO oltp.edge (practice_id, id, ${c}) VALUES ('${good[i]}', 'k', ${v}), ('${good[i]}', 'plain', NULL)`);
  };
  const expectRefused = (failures: { tenant: string; code?: string; message: string }[]) => {
    expect(failures.map((f) => f.tenant).sort()).toEqual([...bad].sort());
    for (const f of failures) {
      const [col, , value] = BAD[bad.indexOf(f.tenant)]!;
      expect(f.code, f.message).toBe('TSF422');
      expect(f.message).toContain('oltp.edge');
      expect(f.message).toContain(`column "${col}"`);
      expect(f.message).not.toContain(value);
      expect(f.message).not.toMatch(/convert|withheld\)$/i);
    }
  };
  const expectGoodExact = async () => {
    for (const [i, [c]] of GOOD.entries()) {
      const o = (await admin.query(`SELECT id, ${c}::text AS v FROM oltp.edge WHERE practice_id = $1 ORDER BY id`, [good[i]!])).rows.map((r) => `${r.id}=${r.v}`);
      const w = (await wh.query(`SELECT id, CAST(${c} AS VARCHAR) AS v FROM raw.edge WHERE practice_id = $1 ORDER BY id`, [good[i]!])).rows.map((r) => `${r.id}=${r.v}`);
      // DuckDB prints timestamptz in UTC: compare instants for it
      if (c === 'tstz') {
        const oi = (await admin.query(`SELECT extract(epoch FROM tstz)::text AS e FROM oltp.edge WHERE practice_id = $1 AND id = 'k'`, [good[i]!])).rows[0]!.e;
        const wi = (await wh.query(`SELECT CAST(epoch_us(tstz) AS VARCHAR) AS e FROM raw.edge WHERE practice_id = $1 AND id = 'k'`, [good[i]!])).rows[0]!.e;
        expect(Number(wi) / 1e6).toBeCloseTo(Number(oi), 6);
        expect(w).toHaveLength(2);
      } else {
        expect(w, `${good[i]} ${c}`).toEqual(o);
      }
    }
  };

  it('watermark: each practice with such a value fails with TSF422 naming table and column; the others load exactly', async () => {
    await insertAll();
    await new Promise((r) => setTimeout(r, 1100));
    const res = await captureTenantSlice(wh, source, { table: 'edge', key: ['id'], tenantColumn: 'practice_id' }, tenants, { chunkRows: 100 });
    expectRefused(res.failures);
    await expectGoodExact();
    // nothing of a refused practice's chunk reached raw (no silently changed or NULL value)
    const held = await wh.query(`SELECT count(*) AS n FROM raw.edge WHERE practice_id = ANY($1::VARCHAR[])`, [bad]);
    expect(Number(held.rows[0]!.n)).toBe(0);
  }, 180_000);

  it('logical: the apply of each such practice fails with TSF422 naming table and column', async () => {
    await wh.query(`DROP TABLE IF EXISTS raw.edge`);
    await admin.query(`DELETE FROM oltp.edge`);
    const spec = resolveSpec({ table: 'edge', key: ['id'], tenantColumn: 'practice_id' });
    const lc = new LogicalCapture({ wh, oltp: source, metaSchema: 'tsform_meta', name: logicalObjectName('unloadable', 'TSFORM_OLTP_URL'), tables: [{ spec }], known: tenants });
    const round = async () => {
      const setup = await lc.setUp(tenants);
      await lc.stream(setup.lsn, { untilNow: true });
      const failures: { tenant: string; code?: string; message: string }[] = [];
      for (const s of lc.specs) {
        for (const t of tenants) {
          try {
            await lc.apply(s, t);
          } catch (e) {
            failures.push({ tenant: t, code: (e as { code?: string }).code, message: (e as Error).message });
          }
        }
      }
      return failures;
    };
    expect(await round()).toEqual([]);
    await insertAll();
    expectRefused(await round());
    await expectGoodExact();
  }, 180_000);
});
